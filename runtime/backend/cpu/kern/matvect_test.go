package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMatVecT(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, m := range []int{1, 5, 15, 16, 17, 31, 32, 63, 64, 65, 100, 128, 172, 200} {
			for _, in := range []int{1, 2, 3, 8, 64, 65, 172} {
				ld := m + r.IntN(3)
				wt := append(randF32(r, (in-1)*ld+m), float32(math.NaN())) // past the matrix: never read
				x := randF32(r, in)
				for _, acc := range []bool{false, true} {
					dst0 := append(randF32(r, m), 42)
					dst := append([]float32(nil), dst0...)
					MatVecT(dst[:m], x, wt, ld, acc)
					for j := 0; j < m; j++ {
						want, mag := ref(x, func(k int) float64 { return float64(wt[k*ld+j]) })
						if acc {
							want += float64(dst0[j])
							mag += math.Abs(float64(dst0[j]))
						}
						requireClose(t, dst[j], want, mag, "matvect")
					}
					require.Equal(t, float32(42), dst[m], "wrote past m=%d", m)
					// A column's result does not depend on the columns computed with it.
					for _, j0 := range []int{1, m / 2, m - 1} {
						part := append([]float32(nil), dst0[j0:m]...)
						MatVecT(part, x, wt[j0:], ld, acc)
						for j := j0; j < m; j++ {
							require.Equal(t, math.Float32bits(dst[j]), math.Float32bits(part[j-j0]), "m=%d in=%d column %d from %d", m, in, j, j0)
						}
					}
				}
			}
		}
		MatVecT(nil, nil, nil, 0, false)
		d := []float32{1, 2}
		MatVecT(d, nil, nil, 2, false)
		require.Equal(t, []float32{0, 0}, d)
		require.Panics(t, func() { MatVecT(make([]float32, 4), make([]float32, 2), make([]float32, 7), 4, false) })
		require.Panics(t, func() { MatVecT(make([]float32, 4), make([]float32, 2), make([]float32, 8), 3, false) })
	})
}

func TestMatVecT4(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(27, 28))
		for _, m := range []int{1, 15, 16, 17, 32, 33, 48, 63, 64, 65, 100, 172} {
			for _, in := range []int{1, 2, 3, 64, 65, 172} {
				ld := m + r.IntN(3)
				wt := append(randF32(r, (in-1)*ld+m), float32(math.NaN()))
				ldx, ldd := in+r.IntN(5), m+r.IntN(5)
				x := randF32(r, 3*ldx+in)
				for _, acc := range []bool{false, true} {
					dst0 := append(randF32(r, 3*ldd+m), 42)
					dst := append([]float32(nil), dst0...)
					MatVecT4(dst, ldd, x, ldx, in, wt, ld, m, acc)
					require.Equal(t, float32(42), dst[3*ldd+m], "wrote past the last row")
					for tk := 0; tk < 4; tk++ {
						want := append([]float32(nil), dst0[tk*ldd:tk*ldd+m]...)
						MatVecT(want, x[tk*ldx:tk*ldx+in], wt, ld, acc)
						for j := 0; j < m; j++ {
							require.Equal(t, math.Float32bits(want[j]), math.Float32bits(dst[tk*ldd+j]), "m=%d in=%d row %d column %d", m, in, tk, j)
						}
						if tk < 3 {
							require.Equal(t, dst0[tk*ldd+m:(tk+1)*ldd], dst[tk*ldd+m:(tk+1)*ldd], "wrote between rows")
						}
					}
				}
			}
		}
	})
}
