// Package cuda is the CUDA backend (build tag cuda): backend.Backend over our own
// kernels, reached through package cgo and libvireo_kernels.so. Build it with
// `make cuda`; without the tag this package is empty.
//
// Tensors live in device memory. Activations are 16-bit, fp16 by default (or bf16, see
// Options.Activations), with fp32 accumulation inside every kernel; the KV cache has the
// same type. The model allocates its activations as backend.F32 and moves f32 bytes
// through Upload and Download: Alloc(F32) returns a tensor of the activation type, and
// Upload/Download accept either bytes of the tensor's own type or f32 bytes, converted
// on the device, so the model's f32 host view works unchanged. Norm weights, allocated
// the same way, are held in the activation type too (the kernels read them into fp32).
// Each op runs in the type its operands are stored in (f16 or bf16 tensors may be
// allocated explicitly); operands of mixed types are "not supported".
//
// Weights: int8 rows with fp32 per-row scales stay int8 (W8A16 for few rows, W8A8 with
// per-token activation quantization from Options.W8A8Rows rows on); float weights become
// 16-bit. Upload and Download take no stream; they move bytes through pinned staging on
// the backend's own transfer stream and wait only for the stream of the last op that
// wrote the buffer (never for the whole device, which would serialize the prefill
// lanes); Upload returns once its bytes have landed, so any op issued after it, on any
// stream, reads them (backend.go, "Upload and Download").
// Index inputs (ids, positions, slots, block tables) are copied per op through a pinned
// staging arena of the stream, asynchronously. Every CUDA failure comes back as an error
// naming the op and the shapes.
//
// Decode on the device (decode.go, never run on a GPU yet): backend.IndexedOps take
// their ids, positions and block tables as device I32 tensors and derive the kernels'
// index metadata on the device, so a decode step built from them can be captured as a
// graph (graph.go); backend.DecodeLooper replays such a step K times per host round
// trip, sampling on the device (vireo_sample) between replays and copying the tokens
// back into pinned memory once.
//
// Device discovery and properties use the kernel library's own ABI (cudaGetDeviceProperties
// inside libvireo_kernels.so) rather than gorgonia.org/cu: that package's init calls
// cuInit and exits the process when it fails and links libcuda at load time, which would
// stop a cuda-tagged binary (or test binary) from even starting on a machine without a
// driver, where ours reports "no device" as an ordinary error.
package cuda
