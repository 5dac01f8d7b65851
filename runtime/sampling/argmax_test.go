package sampling

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArgmaxLogits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for n := 1; n <= 200; n++ {
		for trial := 0; trial < 20; trial++ {
			x := make([]float32, n)
			for i := range x {
				switch rng.IntN(12) {
				case 0:
					x[i] = nan
				case 1:
					x[i] = -inf
				case 2:
					x[i] = 3 // ties
				default:
					x[i] = float32(rng.NormFloat64())
				}
			}
			if trial == 0 {
				for i := range x {
					x[i] = nan
				}
			}
			if trial == 1 {
				for i := range x {
					x[i] = -inf
				}
				x[n-1] = nan
			}
			if trial == 2 {
				x[n-1] = inf
			}
			// The reference: prepare's NaN mapping, then the sampler's argmax.
			ref := append([]float32(nil), x...)
			for i, v := range ref {
				if v != v {
					ref[i] = -inf
				}
			}
			require.Equal(t, argmax(ref), argmaxLogits(x), "n=%d trial=%d", n, trial)
			require.Equal(t, argmaxGeneric(x), argmaxLogits(x), "n=%d trial=%d", n, trial)
		}
	}
	big := make([]float32, 128256)
	for i := range big {
		big[i] = float32(rng.NormFloat64())
	}
	big[77777] = 50
	require.Equal(t, 77777, argmaxLogits(big))
}

func BenchmarkArgmaxLogits(b *testing.B) {
	x := make([]float32, 32000)
	for i := range x {
		x[i] = float32(i % 977)
	}
	for i := 0; i < b.N; i++ {
		argmaxLogits(x)
	}
}
