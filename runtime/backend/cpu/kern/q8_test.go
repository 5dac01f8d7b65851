package kern

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	f16 "github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// fma32 is float32 a·b+c rounded once (to nearest even), computed exactly.
func fma32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// q8Contract is one (row, token) product exactly as q8.go states it.
func q8Contract(w []byte, nb int, qa []int8, da []float32) float32 {
	var l [8]float32
	for b := 0; b < nb; b++ {
		blk := w[b*Q8BlockBytes:]
		dw := f16.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		for j := 0; j < 8; j++ {
			var s int32
			for k := 4 * j; k < 4*j+4; k++ {
				s += int32(int8(blk[2+k])) * int32(qa[b*Q8Block+k])
			}
			l[j] = fma32(float32(s), dw*da[b], l[j])
		}
	}
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// randQ8Rows draws rows of nb Q8_0 blocks (stride ldw) with scales like a real
// matrix's, extremes (-128 can occur in a file, ±127) included.
func randQ8Rows(r *rand.Rand, rows, nb, ldw int) []byte {
	w := make([]byte, (rows-1)*ldw+nb*Q8BlockBytes)
	for i := range w {
		w[i] = byte(r.IntN(256))
	}
	for row := 0; row < rows; row++ {
		for b := 0; b < nb; b++ {
			p := w[row*ldw+b*Q8BlockBytes:]
			d := float32(math.Abs(r.NormFloat64())) * 0.01
			h := f16.F32ToF16(d)
			p[0], p[1] = byte(h), byte(h>>8)
		}
	}
	return w
}

func TestQ8Layout(t *testing.T) {
	require.Equal(t, ggml.Q8_0.BlockSize(), Q8Block)
	require.Equal(t, ggml.Q8_0.BlockBytes(), Q8BlockBytes)
}

func TestQuantizeQ8(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(31, 32))
		for _, nb := range []int{1, 2, 3, 64, 176} {
			x := randF32(r, nb*Q8Block)
			for i := 0; i < Q8Block; i++ {
				x[i] = 0 // an all-zero block
			}
			if nb > 1 {
				x[40] = 1e6 // a block with one huge value
			}
			qa, da, ca := make([]int8, len(x)+1), make([]float32, nb+1), make([]int32, 8*nb+1)
			qa[len(x)], da[nb], ca[8*nb] = 99, 99, 99
			QuantizeQ8(qa, da, ca, x)
			for i := 0; i < 8*nb; i++ {
				require.Equal(t, -128*(int32(qa[4*i])+int32(qa[4*i+1])+int32(qa[4*i+2])+int32(qa[4*i+3])), ca[i])
			}
			require.Equal(t, int32(99), ca[8*nb], "wrote past the corrections")
			wq, wd := make([]int8, len(x)), make([]float32, nb)
			quantizeQ8Generic(wq, wd, x)
			require.Equal(t, wd, da[:nb])
			require.Equal(t, wq, qa[:len(x)])
			require.Equal(t, int8(99), qa[len(x)], "wrote past the values")
			require.Equal(t, float32(99), da[nb], "wrote past the scales")
			for b := 0; b < nb; b++ {
				for i := b * Q8Block; i < (b+1)*Q8Block; i++ {
					// Rounding to a step of max|x|/127 (half a step), plus the scale's own
					// fp16 rounding times up to 127 steps (127·2^-11 < 0.07).
					require.InDelta(t, x[i], float32(qa[i])*da[b], float64(da[b])*0.57+1e-30, "value %d", i)
				}
			}
			require.Zero(t, da[0])
		}
		require.Panics(t, func() { QuantizeQ8(make([]int8, 40), make([]float32, 2), nil, make([]float32, 40)) })
		require.Panics(t, func() { QuantizeQ8(make([]int8, 64), make([]float32, 2), make([]int32, 15), make([]float32, 64)) })
	})
}

// TestQ8Kernels checks the tile and the decode kernel against each other and the
// contract bit for bit: odd block counts, one block, and counts around the tile's
// 32-block chunks of scale products (32, 33, 97: a chunk and one more, three and one),
// tokens at strides wider than a row, an all-zero activation block, NaN-poisoned outputs.
func TestQ8Kernels(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(33, 34))
		for _, nb := range []int{1, 2, 7, 32, 33, 64, 97} {
			ldw := nb*Q8BlockBytes + r.IntN(3)*Q8BlockBytes
			w := randQ8Rows(r, 4, nb, ldw)
			lda, ldd, ldc := nb*Q8Block+32, nb+1, 8*nb+8
			qa := make([]int8, 3*lda+nb*Q8Block)
			da := make([]float32, 3*ldd+nb)
			ca := make([]int32, 3*ldc+8*nb)
			for tk := 0; tk < 4; tk++ {
				x := randF32(r, nb*Q8Block)
				for i := range x {
					if r.IntN(50) == 0 {
						x[i] *= 30
					}
				}
				if tk == 2 {
					clear(x[(nb-1)*Q8Block:]) // an all-zero block: scale 0
				}
				QuantizeQ8(qa[tk*lda:], da[tk*ldd:], ca[tk*ldc:], x)
			}
			pw, pd := make([]byte, 4*nb*Q8Block), make([]float32, 4*nb)
			Q8Pack4(pw, pd, w, ldw, nb)
			var tile [16]float32
			for i := range tile {
				tile[i] = float32(math.NaN()) // every output must be written
			}
			da4 := make([]float32, 4*nb)
			Q8Interleave4(da4, da, ldd, nb)
			Q8Tile4x4(&tile, pw, pd, nb, qa, lda, da4, ca, ldc)
			for tk := 0; tk < 4; tk++ {
				var rows [4]float32
				Q8Rows4(&rows, w, ldw, nb, qa[tk*lda:], da[tk*ldd:])
				for row := 0; row < 4; row++ {
					got := tile[4*tk+row]
					// The tile and the decode kernel agree bit for bit ...
					require.Equal(t, math.Float32bits(rows[row]), math.Float32bits(got), "nb=%d token %d row %d", nb, tk, row)
					want := q8Contract(w[row*ldw:], nb, qa[tk*lda:], da[tk*ldd:])
					if HasQ8() && level == levelAVX512 {
						// ... and the assembly follows the contract bit for bit.
						require.Equal(t, math.Float32bits(want), math.Float32bits(got), "nb=%d token %d row %d: %g vs %g", nb, tk, row, got, want)
					} else {
						require.InDelta(t, want, got, 1e-5*math.Abs(float64(want))+1e-6)
					}
				}
			}
		}
		require.Panics(t, func() {
			var o [4]float32
			Q8Rows4(&o, make([]byte, 4*34-1), 34, 1, make([]int8, 32), make([]float32, 1))
		})
		require.Panics(t, func() {
			var o [16]float32
			Q8Tile4x4(&o, make([]byte, 128), make([]float32, 4), 1, make([]int8, 4*32), 32, make([]float32, 3), make([]int32, 32), 8)
		})
	})
}

// f32ToF16 rounds to the nearest half (ggml's conversion).
func f32ToF16(f float32) uint16 { return f16.F32ToF16(f) }

func TestQ8Pack4(t *testing.T) {
	r := rand.New(rand.NewPCG(35, 36))
	for _, nb := range []int{1, 3, 64} {
		ldw := nb*Q8BlockBytes + 34
		w := randQ8Rows(r, 4, nb, ldw)
		var pws [][]byte
		var pds [][]float32
		for _, l := range availableLevels() {
			func() {
				setLevel(t, l)
				pw, pd := make([]byte, 4*nb*Q8Block+1), make([]float32, 4*nb+1)
				pw[4*nb*Q8Block], pd[4*nb] = 7, 7
				Q8Pack4(pw, pd, w, ldw, nb)
				require.Equal(t, byte(7), pw[4*nb*Q8Block], "wrote past the quants")
				require.Equal(t, float32(7), pd[4*nb], "wrote past the scales")
				pws, pds = append(pws, pw), append(pds, pd)
			}()
		}
		for i := range pws {
			require.Equal(t, pws[0], pws[i], "level %d", i)
			require.Equal(t, pds[0], pds[i], "level %d", i)
		}
		for row := 0; row < 4; row++ {
			for b := 0; b < nb; b++ {
				blk := w[row*ldw+b*Q8BlockBytes:]
				require.Equal(t, f16.F16ToF32(uint16(blk[0])|uint16(blk[1])<<8), pds[0][4*b+row])
				for i := 0; i < Q8Block; i++ {
					require.Equal(t, blk[2+i]^0x80, pws[0][(4*b+row)*Q8Block+i])
				}
			}
		}
	}
}
