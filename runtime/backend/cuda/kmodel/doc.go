// Package kmodel holds Go models of the CUDA kernels v2. For the matrix products
// (cuda/kernels/matmul2*.cu; config.go, plan.go, emulate.go): the table of tile
// configurations, the dispatch policy that picks a configuration and a split-K for a
// product, the workspace it needs, and an emulator of each kernel's thread → element
// mapping. Attention and sampling have their own models (attn2*.go, sample2.go).
//
// CUDA cannot run in CI, so the emulator is how a layout bug is caught before a card:
// Emulate replays a launch block by block with the kernel's own index arithmetic —
// mirrored function for function from matmul2.cuh (blockTile, loadStage, the
// ldmatrix/lds fragment loads, the mma.sync fragment layouts of the PTX ISA, the split-K
// fixup, the epilogue) — on symbolic values: every shared-memory byte remembers which
// element of x or W the cp.async that wrote it copied, and in which commit group. It
// then checks that
//   - every product the tensor cores form pairs x[row][k] with W[wrow][k] for the row and
//     weight row the epilogue will store that accumulator to, and every k of the row's
//     dot product is formed exactly once (across split-K slices too);
//   - shared memory is read only after its copy group was waited for and a barrier
//     passed, and never overwritten in the barrier interval that reads it;
//   - every output element in [n][n_out] is stored exactly once and nothing else is;
//   - global reads stay inside x, W and the scales, workspace accesses inside the
//     workspace;
//   - W4A16 (4-bit weights, runtime/quant/w4): every register pair the dequantization
//     makes holds the two levels the format puts in those nibbles (checked against
//     w4.Pos), each 32-k group's products are summed apart and multiplied by that
//     group's scale of that weight row, and, for Q4_K-derived weights, the group's
//     offset by an activation sum over exactly the k its products covered.
//
// The package needs no cgo and no GPU; the CUDA backend uses Plan to dispatch, and a
// cuda-tagged test checks Configs against the library's own table.
package kmodel
