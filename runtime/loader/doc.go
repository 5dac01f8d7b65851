// Package loader opens model checkpoints — GGUF v2/v3 files and legacy llama2.c .bin
// files with their tokenizer.bin — and exposes them as a Checkpoint: a Llama Config,
// tensors under canonical GGUF names whose bytes alias a read-only memory mapping of
// the file, and the vocabulary as a tokenizer.Vocab.
//
// Every parser works on a []byte (ParseGGUF, LoadGGUF, LoadLlama2C), so tests and
// fuzzers can feed bytes directly; Open maps the file and delegates to them. Malformed
// input is reported as an error naming the file and the problem, never a panic, and
// no length read from a file is trusted before it is checked against the bytes that
// remain.
//
// Tensor elements are F32, F16, BF16 or Q8_0; Tensor.Float32 converts any of them to
// float32 (aliasing the mapping for aligned F32 data). WriteGGUF and NewTensor build
// small GGUF files for tests.
package loader
