package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLlama3RopeScaling checks the three frequency bands against values worked out
// from HF's _compute_llama3_parameters for Llama 3.1 8B (theta 500000, head dim 128,
// factor 8, low 1, high 4, original context 8192).
func TestLlama3RopeScaling(t *testing.T) {
	c := Config{HeadDim: 128, RopeTheta: 500000, RopeScaling: RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}}
	r := RoPEOf(&c)
	base := func(i int) float64 { return math.Pow(500000, -float64(2*i)/128) }
	// High frequencies (wavelength < 2048) are kept.
	require.InEpsilon(t, base(0), float64(r.InvFreq[0]), 1e-6)
	require.InEpsilon(t, base(10), float64(r.InvFreq[10]), 1e-6)
	// Low frequencies (wavelength > 8192) are divided by the factor.
	require.InEpsilon(t, base(63)/8, float64(r.InvFreq[63]), 1e-6)
	// In between they blend: check one pair by the formula.
	for i := 0; i < 64; i++ {
		w := 2 * math.Pi / base(i)
		if w > 2048 && w < 8192 {
			s := (8192/w - 1) / 3
			require.InEpsilon(t, (1-s)*base(i)/8+s*base(i), float64(r.InvFreq[i]), 1e-6, "pair %d", i)
		}
	}
	// GGUF's rope_freqs factors divide the frequencies.
	c.RopeScaling = RopeScaling{}
	c.RopeFreqFactors = make([]float32, 64)
	for i := range c.RopeFreqFactors {
		c.RopeFreqFactors[i] = float32(1 + i%3)
	}
	r = RoPEOf(&c)
	require.InEpsilon(t, base(5)/3, float64(r.InvFreq[5]), 1e-6)
	require.NoError(t, Validate(&Config{Dim: 8, HiddenDim: 8, Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 8, VocabSize: 4, MaxSeqLen: 4, RopeTheta: 1, NormEps: 1}))
	bad := Config{Dim: 8, HiddenDim: 8, Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 8, VocabSize: 4, MaxSeqLen: 4, RopeTheta: 1, NormEps: 1, RopeScaling: RopeScaling{Type: "yarn"}}
	require.ErrorContains(t, Validate(&bad), `rope scaling type "yarn" is not supported`)
}
