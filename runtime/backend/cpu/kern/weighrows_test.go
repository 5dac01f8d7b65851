package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWeighRows: WeighRows is bit for bit the loop of Axpy calls it replaces, at every
// level, for head widths with and without a 64-value chunk and a masked tail, and it
// writes nothing past out.
func TestWeighRows(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, hd := range []int{1, 8, 16, 24, 63, 64, 80, 128, 200} {
			for _, n := range []int{1, 2, 5, 17, 100} {
				w, v := randF32(r, n), randF32(r, n*hd+hd) // slack after the rows: never read into out
				start := randF32(r, hd+16)
				want := append([]float32(nil), start...)
				for j := range n {
					Axpy(want[:hd], w[j], v[j*hd:(j+1)*hd])
				}
				got := append([]float32(nil), start...)
				WeighRows(got[:hd], w, v)
				for i := range got {
					require.Equal(t, math.Float32bits(want[i]), math.Float32bits(got[i]), "hd=%d n=%d element %d", hd, n, i)
				}
			}
		}
		require.Panics(t, func() { WeighRows(make([]float32, 4), make([]float32, 3), make([]float32, 11)) })
	})
}
