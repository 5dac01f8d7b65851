// Package kern holds the CPU backend's hot loops: dot products of fp32 activations with
// fp32 or int8 weight rows. Each has a portable Go version and, where the CPU allows,
// an assembly one chosen once at start-up.
//
// Contract every implementation keeps: the result of a dot product depends only on its
// two operands, never on which entry point computed it (Dot vs Dot4) — that is what makes
// the CPU backend batch-invariant.
//
// Implementations (one is chosen per process from Features; tests switch between them):
//
//   - avx512 (AVX-512F/BW/VL + FMA + BMI2): per row 4 accumulators of 16 fp32 lanes,
//     64 elements per step; element i lands in accumulator (i/16)%4, lane i%16. The
//     ragged end is done in 16-element chunks with zero-masked loads (chunk j of the
//     tail into accumulator j), so a row of any length sums exactly like the row
//     zero-padded to a multiple of 64, and nothing past n is touched. Reduction:
//     (A0+A1)+(A2+A3), then the 512-bit vector folded in halves 256, 128, 64, 32.
//   - avx2 (AVX2 + FMA): per row 3 accumulators of 8 lanes, 24 elements per step; up
//     to two whole 8-element chunks of the tail into A0 then A1; reduction (A0+A1)+A2
//     folded 128, 64, 32; then the last n%8 products added in order with scalar FMA.
//   - go: the portable dotGeneric/dotQ8Generic (8 interleaved lanes); Dot4 is four
//     independent calls.
//
// Dot4/Dot4Q8 run the same per-row sequence of operations as Dot/DotQ8 (same lanes,
// same FMA order, same reduction instructions) on four rows at once, loading each
// weight vector once; so Dot4 is bit-identical to Dot on every level, independent of
// alignment. Different levels agree only to rounding error. int8 weights are widened
// in registers (VPMOVSXBD + VCVTDQ2PS, exact) and fused with VFMADD231PS; the scale is
// the caller's. DotI8 (int8 x int8 -> exact int32, VPDPBUSD with AVX512-VNNI) is a
// separate contract for int8-quantized activations.
package kern
