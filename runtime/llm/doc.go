// Package llm is a model ready to use, above the bare transformer of runtime/model:
// Open loads a checkpoint (GGUF, llama2.c .bin, a Hugging Face directory, or a
// synthetic shape) with its tokenizer, chat template, end-of-sequence ids and
// generation defaults; ChatPrompt renders and encodes a conversation; a Session runs
// one sequence with a private KV cache (the CLI, tests); a Scorer runs windows
// teacher-forced (perplexity, quality audits). Serving many sequences at once is
// runtime/engine's job.
package llm
