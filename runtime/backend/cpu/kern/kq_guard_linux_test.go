package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQGuardPage: the block kernels read nothing past the last weight row or the last
// activation record (both end where an inaccessible page begins).
func TestQGuardPage(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, f := range QFormats {
		for _, nb := range []int{1, 3} {
			rb, n := nb*f.BlockBytes, nb*f.Block
			w := guarded(t, 4*rb)
			copy(w, randBlocks(r, f, 4, nb))
			lda := f.ActBytes(n)
			act := guarded(t, 4*lda)
			for tk := 0; tk < 4; tk++ {
				f.Quantize(act[tk*lda:], randActivations(r, n))
			}
			forEachLevel(t, func(t *testing.T) {
				var tile [16]float32
				f.Tile4x4(&tile, w, rb, nb, act, lda)
				var r4 [4]float32
				f.Rows4(&r4, w, rb, nb, act[3*lda:])
				for row := 0; row < 4; row++ {
					want := f.dot(w[row*rb:], nb, act[3*lda:])
					require.Equal(t, math.Float32bits(want), math.Float32bits(r4[row]), "%s nb=%d", f.Name, nb)
					require.Equal(t, math.Float32bits(want), math.Float32bits(tile[12+row]), "%s nb=%d", f.Name, nb)
				}
			})
			x := guardedF32(t, n)
			copy(x, randActivations(r, n))
			f.Quantize(act[3*lda:], x)
		}
	}
}
