// Package backendtest checks a backend's ops against a reference backend (the CPU one)
// on random inputs: ggml's test-backend-ops idea, for the ops of backend.Backend. It is
// an ordinary package so that both tests and a command (the GPU check, which writes the
// report into gpu-check.json) can run it:
//
//	rep := backendtest.Run(t, cpu.New(cpu.Options{}), dev, backendtest.Options{Large: true})
//	rep.WriteJSON(w)
//	if rep.Failed() { ... }
//
// # Cases
//
// Cases generates, per op, odd shapes (1, 5, 7, 11, 13, 17 ...) and Llama-3-8B ones
// (dim 4096, FFN 14336, vocab 128256, 32 heads / 8 KV heads of 128, blocks of 16),
// with f32 and int8 weights, the accumulate and SiLU-GLU epilogues, both RoPE styles
// with plain and Llama-3-scaled frequencies, KV slots scattered over the cache through
// shuffled table rows, and attention batches mixing prefill chunks and decode tokens
// over shuffled, non-contiguous block tables with unused blocks, table entries past
// the context and a shared prefix. Every case comes in three activation dtypes, f32,
// f16 and bf16; a backend reports the ones it lacks as not supported (the CPU backend
// is f32-only, a GPU one 16-bit only). Cases marked Large (real shapes that take
// seconds on a CPU: the 128256-row int8 table and classifier, the FFN projections,
// attention over 2k-token contexts) run only with Options.Large; the default set has a
// few cheap real-shape cases (a 4096-wide RMSNorm, one decode row of a 4096×4096 int8
// matmul, RoPE and KV writes of Llama-3 heads, a short mixed attention batch).
//
// The default matmul set also reaches every kernel path of the CUDA backend at a real
// shape (the 4096 → 1024 k/v projection, PathCases): SIMT and tensor-core W8A16,
// W8A8 (the cases marked Prompt: int8 cases of 128 rows and more, and prompt chunks of
// 5 and 50 rows; a 130-row case of generated rows stays W8A16), 16-bit SIMT and MMA,
// each with a row tail in its tile, plus odd shapes with column tails past 128 rows;
// larger prefill chunks at the FFN shapes are Large.
//
// The ops read their index inputs (ids, positions, sequences, block tables, rows) from
// i32 tensors of the backend under test, and leave alone the rows whose index data
// says so (backend.KVIndex): cases named idle=, bad= mix in rows at negative positions
// and rows of out-of-range index data — ids outside the vocabulary, rows outside the
// source, block-table entries outside the cache, positions past the table or MaxCtx,
// sequences with no table row — beside junk in the table entries past each context.
// The reference runs the same op once per row the case means it to compute, each with
// a one-row index, and leaves the others zero (embed, gather, attention) or as they
// were (rope, the cache), so it does not rely on the rules it checks.
//
// # Checks
//
// Inputs are drawn from a per-case seed and rounded to the dtypes the backend under test
// allocates, so both backends see identical values. Each case then runs on both
// backends and fails on any of:
//
//   - nmse = mse(ref, b) / mse(ref, 0) above the op's tolerance (see Tolerance: fixed in
//     code, per op, for the f32, f16 and bf16 precision classes; a run's class is the
//     least precise float dtype the backend used for any operand);
//   - an output element left unwritten or non-finite: outputs start as NaN (int8
//     outputs, the quantized rows of rmsnorm_quant, as -128, which no quantizer writes);
//   - a stray write: every tensor view sits in the middle of a larger allocation, whose
//     guard elements must come back unchanged; in a KV cache, only the addressed slots
//     of the addressed layer may change;
//   - a modified input, including the cache for Attention and the index tensors;
//   - a stray read: input guards, unused cache blocks, slots past each sequence's
//     context and the other layer hold NaN, which would reach the output;
//   - an error from the backend, or a panic.
//
// A failing output also records Diags: the max abs and rel errors with their row and
// column, the count of elements over tolerance, an error map by position inside the
// kernel's output tile (the backend names its matmul kernel and tile through Kerneler)
// and by runs of rows and columns, and the first 8 bad elements with the expected and
// computed values: enough to debug a mismatch without a second run.
//
// An error wrapping ErrNotSupported, or whose text says "not supported", makes the case a
// SKIP with the backend's reason, never a pass; so does rmsnorm_quant on a backend
// without backend.RMSNormQuanter (its cases compare the int8 values, as numbers, and the
// row scales).
//
// A device backend may implement Freer, WeightFreer and KVFreer; Run then frees each
// case's memory when the case is done.
//
// The end-to-end comparison (stories260K greedy and teacher-forced on the CPU and the
// device) needs runtime/model, so it lives in the GPU check command, cmd/vireo-check e2e.
package backendtest
