// Package loader opens model checkpoints — GGUF v2/v3 files, legacy llama2.c .bin files
// with their tokenizer.bin, and Hugging Face model directories (config.json, safetensors
// weights, tokenizer.json) — and exposes them as a Checkpoint: a Llama Config, tensors
// under canonical GGUF names whose bytes alias a read-only memory mapping of the file,
// and the vocabulary as a tokenizer.Vocab (or, for HF directories, a ready
// tokenizer.Tokenizer).
//
// Every parser works on a []byte (ParseGGUF, LoadGGUF, LoadLlama2C, ParseSafetensors),
// so tests and fuzzers can feed bytes directly; Open maps the file and delegates to them.
// Malformed input is reported as an error naming the file and the problem, never a
// panic, and no length read from a file is trusted before it is checked against the
// bytes that remain.
//
// RoPE layouts: GGUF and llama2.c files store q/k rows for adjacent-pair RoPE
// (RopePairs); HF checkpoints store them permuted by HF's converter for rotate-half RoPE
// (RopeRotateHalf), and the loader keeps them as stored, setting Config.RopeStyle
// instead. Llama 3 RoPE scaling arrives as HF's rope_scaling (Config.RopeScaling) or as
// GGUF's rope_freqs tensor (Config.RopeFreqFactors); other scalings, sliding-window
// attention, mixtures of experts, biases and other architectures are refused by name.
//
// Tensor elements are F32, F16, BF16, or one of GGUF's block-quantized types (Q8_0,
// Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; layouts and codecs in
// runtime/quant/ggml); other GGML types are refused at load naming the tensor and the
// type. Tensor.Float32 converts any of them to float32, bit-exact to ggml's
// dequantization (aliasing the mapping for aligned F32 data). WriteGGUF,
// WriteSafetensors and NewTensor build files (WriteFile puts one in place atomically);
// NewTensor quantizes with ggml's reference quantizers.
package loader
