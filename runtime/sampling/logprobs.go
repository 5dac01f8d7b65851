package sampling

import (
	"fmt"
	"math"
)

// TokenLogprob is a token id with its log-probability.
type TokenLogprob struct {
	Token   int32   `json:"token"`
	Logprob float32 `json:"logprob"`
}

// logNorm returns what LogSoftmax subtracts: the maximum logit m (NaN counting as
// -Inf) and log Σ exp(x_i - m) in float64. If m is +Inf, lse is log of the number of
// +Inf logits; if every logit is -Inf (or there are none), m is -Inf.
func logNorm(logits []float32) (m float32, lse float64) {
	m = float32(math.Inf(-1))
	for _, v := range logits {
		if v > m {
			m = v
		}
	}
	if m == float32(math.Inf(-1)) {
		return m, 0
	}
	var sum float64
	if m > math.MaxFloat32 {
		for _, v := range logits {
			if v == m {
				sum++
			}
		}
	} else {
		for _, v := range logits { // NaN and -Inf add exp(-Inf) = 0
			if v == v {
				sum += math.Exp(float64(v) - float64(m))
			}
		}
	}
	return m, math.Log(sum)
}

// logprob is float32((x - m) - lse) with the subtraction in float64; NaN is -Inf.
func logprob(v, m float32, lse float64) float32 {
	switch {
	case v != v || m == float32(math.Inf(-1)):
		return float32(math.Inf(-1))
	case m > math.MaxFloat32:
		if v == m {
			return float32(-lse)
		}
		return float32(math.Inf(-1))
	}
	return float32(float64(v) - float64(m) - lse)
}

// LogSoftmax writes log(softmax(logits)) to dst[:len(logits)], computed as
// (x_i - max) - log Σ_j exp(x_j - max) in float64 and rounded to float32. NaN logits
// count as -Inf. If every logit is -Inf the result is all -Inf; if some are +Inf they
// share the probability equally. dst may alias logits. It panics if dst is shorter
// than logits.
func LogSoftmax(dst, logits []float32) {
	if len(dst) < len(logits) {
		panic(fmt.Sprintf("sampling: LogSoftmax dst has %d elements, need %d", len(dst), len(logits)))
	}
	m, lse := logNorm(logits)
	for i, v := range logits {
		dst[i] = logprob(v, m, lse)
	}
}

// TopLogprobs returns the k most likely tokens of softmax(logits) with their
// log-probabilities (as LogSoftmax computes them), most likely first and the lower id
// first among equal logits. The result is appended to dst[:0], so passing a buffer
// with capacity >= k avoids allocation. k is clamped to len(logits); NaN logits count
// as -Inf. Selection is a bounded heap: O(V log k).
func TopLogprobs(logits []float32, k int, dst []TokenLogprob) []TokenLogprob {
	dst = dst[:0]
	k = min(k, len(logits))
	if k <= 0 {
		return dst
	}
	m, lse := logNorm(logits)
	clean := func(v float32) float32 {
		if v != v {
			return float32(math.Inf(-1))
		}
		return v
	}
	// better reports whether a ranks before b (logit descending, id ascending);
	// while selecting, Logprob holds the cleaned logit.
	better := func(a, b TokenLogprob) bool {
		return a.Logprob > b.Logprob || (a.Logprob == b.Logprob && a.Token < b.Token)
	}
	down := func(h []TokenLogprob, i int) { // min-heap on rank: root is the worst
		for {
			l := 2*i + 1
			if l >= len(h) {
				return
			}
			c := l
			if r := l + 1; r < len(h) && better(h[l], h[r]) {
				c = r
			}
			if !better(h[i], h[c]) {
				return
			}
			h[i], h[c] = h[c], h[i]
			i = c
		}
	}
	for i := 0; i < k; i++ {
		dst = append(dst, TokenLogprob{Token: int32(i), Logprob: clean(logits[i])})
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(dst, i)
	}
	for i := k; i < len(logits); i++ {
		if v := clean(logits[i]); v > dst[0].Logprob {
			dst[0] = TokenLogprob{Token: int32(i), Logprob: v}
			down(dst, 0)
		}
	}
	// Heap-sort in place: repeatedly move the worst to the end.
	for end := k - 1; end > 0; end-- {
		dst[0], dst[end] = dst[end], dst[0]
		down(dst[:end], 0)
	}
	for i := range dst {
		dst[i].Logprob = logprob(dst[i].Logprob, m, lse)
	}
	return dst
}
