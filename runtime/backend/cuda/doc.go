// Package cuda is the CUDA backend (build tag cuda): backend.Backend over our own
// kernels, reached through package cgo and libvireo_kernels.so. Build it with
// `make cuda`; without the tag this package is empty.
//
// Tensors live in device memory, of the type they were allocated with. Activations are
// 16-bit, fp16 by default (or bf16, see Options.Activations; Activations() says which),
// with fp32 accumulation inside every kernel; the KV cache has the same type; f32
// activations are "not supported". Norm weights may be f32 or 16-bit (the kernels read
// them into fp32). Upload and Download take the host data's type: the tensor's own, or
// F32 for a 16-bit tensor, converted on the device. Each op runs in the type its
// operands are stored in (f16 or bf16); operands of mixed types are "not supported".
//
// Weights: int8 rows with fp32 per-row scales stay int8 (W8A16 for generated rows, W8A8
// with per-token activation quantization for prompt rows: backend.Epilogue.Prompt,
// Options.W8A8; never by row count); float weights become
// 16-bit; with Options.W4A16 (off until GPU run C verifies it) GGUF Q4_0 and Q4_K
// matrices stay 4-bit (w4a16.go: runtime/quant/w4's format, kernels v2's W4A16
// configurations), other block types become int8. Upload and Download take no stream; they move bytes through pinned staging on
// the backend's own transfer stream and wait only for the stream of the last op that
// wrote the buffer (never for the whole device, which would serialize the prefill
// lanes); Upload returns once its bytes have landed, so any op issued after it, on any
// stream, reads them (backend.go, "Upload and Download").
// Index inputs (ids, positions, sequences, block tables, rows) are device I32 tensors:
// an eager pass stages its host index data once through the stream's pinned arena
// (Stage, asynchronous); WriteKV and Attention derive the kernels' slots and sequence
// metadata from them on the device (vireo_kv_index), so the same ops, over a
// DecodeIO's fixed buffers, make a decode step that can be captured as a graph
// (graph.go). Every CUDA failure comes back as an error naming the op and the shapes.
//
// Decode on the device (decode.go, never run on a GPU yet): backend.DecodeLooper
// replays a captured step K times per host round trip, sampling on the device between
// replays and copying the tokens back into pinned memory once.
//
// Attention and sampling have two kernel generations (Options.Kernels, kernels2.go): v2,
// the default, runs vireo_attention2 (split-KV decode with GQA grouping, tensor-core
// prefill tiles) and vireo_sample2 (every row on the device, any candidate count); v1
// runs vireo_attention and vireo_sample (which hands rows of more than 4,096 candidates
// to the host: TokenHost). v1 stays selectable until GPU run C has verified v2. The same
// switch picks the int8-weight matmuls (ops.go): v2 runs vireo_matmul2 with the plan of
// kmodel.Policy (tile configuration per row count, split-K from the weight's shape);
// float weights and shapes v2 does not take run v1's kernels under either setting.
//
// Device discovery and properties use the kernel library's own ABI (cudaGetDeviceProperties
// inside libvireo_kernels.so) rather than gorgonia.org/cu: that package's init calls
// cuInit and exits the process when it fails and links libcuda at load time, which would
// stop a cuda-tagged binary (or test binary) from even starting on a machine without a
// driver, where ours reports "no device" as an ordinary error.
package cuda
