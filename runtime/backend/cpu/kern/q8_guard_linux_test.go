package kern

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// TestQ8GuardPage: every Q8_0 operand placed to end where an unmapped page begins, at
// exactly the length the kernels check for, must not fault (the tile's scale-product
// pass reads 16 bytes of scales per block, never more) and gives the same bits as
// operands in ordinary memory.
func TestQ8GuardPage(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(37, 38))
		for _, nb := range []int{1, 3, 33} {
			ldw := nb * Q8BlockBytes
			w0 := randQ8Rows(r, 4, nb, ldw)
			w := guarded(t, len(w0))
			copy(w, w0)
			x := randF32(r, 4*nb*Q8Block)
			lda, ldc := nb*Q8Block, 8*nb
			qa, da, ca := guardedI8(t, 4*lda), guardedF32(t, 4*nb), guardedI32(t, 4*ldc)
			for tk := 0; tk < 4; tk++ {
				QuantizeQ8(qa[tk*lda:], da[tk*nb:(tk+1)*nb], ca[tk*ldc:(tk+1)*ldc], x[tk*lda:(tk+1)*lda])
			}
			pw, pd, da4 := guarded(t, 4*nb*Q8Block), guardedF32(t, 4*nb), guardedF32(t, 4*nb)
			Q8Pack4(pw, pd, w, ldw, nb)
			Q8Interleave4(da4, da, nb, nb)
			var tile [16]float32
			Q8Tile4x4(&tile, pw, pd, nb, qa, lda, da4, ca, ldc)
			for tk := 0; tk < 4; tk++ {
				var rows [4]float32
				Q8Rows4(&rows, w, ldw, nb, qa[tk*lda:(tk+1)*lda], da[tk*nb:(tk+1)*nb])
				for row := range rows {
					require.Equal(t, math.Float32bits(rows[row]), math.Float32bits(tile[4*tk+row]), "nb=%d token %d row %d", nb, tk, row)
				}
			}
		}
	})
}

func guardedI32(t *testing.T, n int) []int32 {
	b := guarded(t, 4*n)
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), n)
}
