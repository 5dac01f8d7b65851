// Package kern holds the CPU backend's hot loops: dot products of fp32 activations with
// fp32 or int8 weight rows. Each has a portable Go version and, where the CPU allows,
// an assembly one chosen once at start-up.
//
// Contract every implementation keeps: the result of a dot product depends only on its
// two operands, never on which entry point computed it (Dot vs Dot4) — that is what makes
// the CPU backend batch-invariant.
package kern
