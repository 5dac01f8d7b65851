package sampling

import "math"

// argmaxLogits is argmax over raw logits with NaN treated as -Inf: the lowest index of
// the largest value, 0 when every value is -Inf or NaN. It is what greedy sampling
// without penalties needs, without copying the row.
func argmaxLogits(x []float32) int {
	if len(x) == 0 {
		return 0
	}
	return argmaxImpl(x)
}

func argmaxGeneric(x []float32) int {
	best, bv := 0, float32(math.Inf(-1))
	for i, v := range x {
		if v > bv { // false for NaN
			best, bv = i, v
		}
	}
	return best
}
