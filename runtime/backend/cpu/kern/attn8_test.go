package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestScores8(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for n := 0; n <= 40; n++ {
			q := randF32(r, 8)
			k := append(randF32(r, 8*n), float32(math.NaN())) // past the rows: never read
			dst := make([]float32, n+1)
			dst[n] = 42
			scale := float32(0.35)
			Scores8(dst[:n], q, k, scale)
			want := make([]float32, n)
			scores8Generic(want, q, k, scale)
			for j := 0; j < n; j++ {
				// Every level is bit-identical to the portable code ...
				require.Equal(t, math.Float32bits(want[j]), math.Float32bits(dst[j]), "n=%d j=%d", n, j)
				// ... which is the dot product to rounding.
				d, mag := ref(q, func(i int) float64 { return float64(k[8*j+i]) })
				requireClose(t, dst[j], d*float64(scale), mag*float64(scale), "score")
			}
			require.Equal(t, float32(42), dst[n], "wrote past n=%d", n)
		}
		Scores8(nil, nil, nil, 1)
		require.Panics(t, func() { Scores8(make([]float32, 2), make([]float32, 8), make([]float32, 15), 1) })
	})
}

func TestWeigh8(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for n := 0; n <= 40; n++ {
			w := randF32(r, n)
			v := append(randF32(r, 8*n), float32(math.NaN()))
			out0 := append(randF32(r, 8), 42)
			out := append([]float32(nil), out0...)
			Weigh8(out[:8], w, v)
			for d := 0; d < 8; d++ {
				want, mag := float64(out0[d]), math.Abs(float64(out0[d]))
				for j := range w {
					p := float64(w[j]) * float64(v[8*j+d])
					want += p
					mag += math.Abs(p)
				}
				requireClose(t, out[d], want, mag, "weigh")
			}
			require.Equal(t, float32(42), out[8], "wrote past the head")
		}
		require.Panics(t, func() { Weigh8(make([]float32, 8), make([]float32, 2), make([]float32, 15)) })
	})
}
