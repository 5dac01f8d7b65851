package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAxpy(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, n := range testSizes() {
			for _, off := range []int{0, 1, 3} {
				x := randF32(r, n+off+8)[off:]
				d0 := randF32(r, n+8)
				d := append([]float32(nil), d0...)
				nan := float32(math.NaN())
				x[n] = nan // past n: must not be read
				a := float32(r.NormFloat64())
				Axpy(d[:n], a, x)
				for i := 0; i < n; i++ {
					want := float64(d0[i]) + float64(a)*float64(x[i])
					tol := 1e-6 * (math.Abs(float64(d0[i])) + math.Abs(float64(a)*float64(x[i])))
					require.InDelta(t, want, float64(d[i]), tol, "n=%d i=%d", n, i)
				}
				require.Equal(t, d0[n:], d[n:], "wrote past n=%d", n)
			}
		}
		Axpy(nil, 1, nil)
		require.Panics(t, func() { Axpy(make([]float32, 3), 1, make([]float32, 2)) })
	})
}

func TestDotI8(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		sizes := append(testSizes(), 300, 1000, 4096+77)
		for _, n := range sizes {
			for _, off := range []int{0, 1, 7} {
				x := randI8(r, n+off+64)[off:]
				w := randI8(r, n+64)
				require.Equal(t, dotI8Generic(x[:n], w), DotI8(x[:n], w), "n=%d off=%d", n, off)
			}
			// Extremes: all -128 and +127 mixes.
			x := make([]int8, n)
			w := make([]int8, n)
			for i := range x {
				x[i], w[i] = -128, -128
				if i%3 == 1 {
					w[i] = 127
				}
			}
			require.Equal(t, dotI8Generic(x, w), DotI8(x, w), "extreme n=%d", n)
		}
		require.Equal(t, int32(0), DotI8(nil, nil))
		require.Panics(t, func() { DotI8(make([]int8, 3), make([]int8, 2)) })
	})
}
