package specdec

// Propose is prompt lookup: it finds the longest n-gram, minN <= n <= maxN, that ends
// the history and also occurs earlier in it, takes its most recent earlier
// occurrence, and appends to dst the up to k tokens that followed that occurrence.
// It appends nothing when no such n-gram exists.
func Propose(dst, history []int32, minN, maxN, k int) []int32 {
	L := len(history)
	if k <= 0 || minN < 1 {
		return dst
	}
	for n := min(maxN, L-1); n >= minN; n-- {
		suffix := history[L-n:]
		last := suffix[n-1]
		// Candidate ends e (exclusive) of an earlier occurrence: e <= L-1.
		for e := L - 1; e >= n; e-- {
			if history[e-1] != last {
				continue
			}
			match := true
			for j := 2; j <= n; j++ {
				if history[e-j] != suffix[n-j] {
					match = false
					break
				}
			}
			if match {
				return append(dst, history[e:min(e+k, L)]...)
			}
		}
	}
	return dst
}
