package engine

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// TestCompactSamplingMatchesMasked: sampling over the gathered allowed tokens (what a
// constrained row with few allowed tokens does) draws exactly the token the sampler
// draws from the full row masked to -Inf — greedy, temperature, top-p, min-p and
// penalties (top-k at least the allowed count orders the draw differently; it is
// checked for the same support instead).
func TestCompactSamplingMatchesMasked(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	var l lane
	var s sampling.Sampler
	const V = 5000
	for trial := 0; trial < 400; trial++ {
		logits := make([]float32, V)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * 3)
		}
		mask := make([]uint64, (V+63)/64)
		n := 1 + rng.IntN(V/compactDiv)
		for k := 0; k < n; k++ {
			id := rng.IntN(V)
			mask[id>>6] |= 1 << (id & 63)
		}
		hist := make([]int32, rng.IntN(40))
		for i := range hist {
			hist[i] = int32(rng.IntN(V))
		}
		p := []sampling.Params{
			{TopP: 1, RepetitionPenalty: 1},
			{Temperature: 0.7, TopP: 1, RepetitionPenalty: 1},
			{Temperature: 1.2, TopP: 0.8, RepetitionPenalty: 1},
			{Temperature: 1, MinP: 0.05, TopP: 1, RepetitionPenalty: 1.3, PresencePenalty: 0.4, FrequencyPenalty: 0.2},
			{Temperature: 0.9, TopK: 3, TopP: 0.95, RepetitionPenalty: 1.1},
			{Temperature: 1, TopK: 10000, TopP: 1, RepetitionPenalty: 1},
		}[trial%6]
		p.Seed = uint64(trial)
		full := append([]float32(nil), logits...)
		grammar.ApplyMask(full, mask)
		want := int32(s.Sample(full, &p, uint64(trial), hist))
		ids, vals := grammar.Gather(logits, mask, nil, nil)
		h := hist
		if !p.Penalizes() {
			h = nil
		} else {
			h = l.remapHistory(hist, ids, V)
		}
		got := ids[s.Sample(vals, &p, uint64(trial), h)]
		require.True(t, mask[got>>6]&(1<<(got&63)) != 0)
		if p.TopK >= len(ids) {
			continue
		}
		require.Equal(t, want, got, "trial %d params %+v (%d allowed)", trial, p, len(ids))
	}
}
