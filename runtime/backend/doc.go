// Package backend defines the small interface the model is written against: layer-sized
// operations over backend-owned tensors, issued on streams. The CPU backend
// (backend/cpu) is the reference; the CUDA backend (backend/cuda) implements the same
// ops with our kernels, and backendtest checks every op of one against the other.
// Abilities only some backends have are optional interfaces found by type assertion:
// GraphCapturer (record a stream's ops as a Graph), DecodeLooper (replay a captured
// decode step K times with sampling on the device), RandomWeightLoader.
//
// # One op set
//
// Embed, RMSNorm, MatMul, RoPE, WriteKV, Attention, SiLUMul and GatherRows serve every
// pass: eager prefill chunks and decode tokens mixed, and decode steps captured as
// graphs. Their index inputs — token ids, positions, the sequence each row belongs to,
// block tables, the rows to gather — are I32 tensors of the backend, never host
// slices:
//
//   - an eager pass lays its host index data out in one []int32 and calls Stage once:
//     the CPU reads the slice in place, a device backend copies it into the stream's
//     staging arena, asynchronously, in stream order; the pass takes views of the
//     staged tensor (Tensor.View);
//   - a captured step reads fixed device buffers (DecodeIO), which DecodeLoop rewrites
//     between replays, so nothing it does depends on host memory.
//
// KVIndex says where each row of a pass sits in the paged cache (position, sequence,
// the sequences' block tables); WriteKV and Attention take it, RoPE takes its Pos.
// Because a backend cannot check device data on the host, an op never fails on index
// values: it leaves idle rows (Pos < 0) and rows whose index data is out of range as
// KVIndex, Embed and GatherRows document (skipped, zero, or untouched). Whoever builds
// an index from user data validates it first (model.Forward does). Shapes and dtypes,
// which the host knows, are checked: a mismatch is an error wrapping ErrShape, and a
// dtype or shape a backend lacks is an error saying "not supported".
//
// # Types at the device boundary
//
// Tensors are row-major 2-D views of a backend Buffer, of the type they were allocated
// with. Activations() is the type the ops take activations and the KV cache in (F32 on
// the CPU, F16 or BF16 on a GPU); the model allocates its activations in it. Upload and
// Download name the host data's type: the tensor's own, or F32 for a 16-bit tensor
// (converted by the backend); any other pair is not supported. Weights arrive as
// HostWeight (f32, or int8 rows with f32 scales) and the backend keeps them in its own
// layout (LoadWeight). Bytes views a host slice as the bytes Upload and Download move.
//
// # Streams, events and ordering
//
// Ops are issued on a Stream and may run later, in that stream's order (the CPU runs
// them before returning). Record, Wait and Sync order streams with one another and with
// the host. Upload returns once its bytes have landed, so ops issued afterwards on any
// stream read them; it and Download wait only for the work that last wrote the buffer.
// A staged tensor is valid for the ops issued on its stream until the next Stage or
// Sync there; between BeginCapture and EndCapture nothing may make the host wait
// (Upload, Download, Sync, Stage, a buffer that must grow), so a step is issued once
// before it is captured.
//
// # Epilogues
//
// MatMul fuses an Epilogue: Accumulate (out += x·Wᵀ, the residual add) or SiLUGLU (one
// weight of gate rows then up rows, out = silu(x·Wgᵀ)·(x·Wuᵀ)). The CPU's SiLUGLU is the
// plain product followed by SiLUMul, bit for bit. Its Prompt flag is the rows' role
// (prompt or generated), from which a backend picks the activation precision of an
// int8 product (W8A8 for prompt rows, W8A16 for generated ones), never from the number
// of rows: the model issues a step's prompt rows and generated rows as separate calls.
package backend
