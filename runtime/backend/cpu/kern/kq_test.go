package kern

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	f16 "github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// TestFmaF32: the portable single-rounding FMA is exact, checked against big.Float on
// random operands, cancelling sums and ties.
func TestFmaF32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(300).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(300).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(300).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	for i := 0; i < 200000; i++ {
		a := float32(r.NormFloat64() * math.Exp(r.NormFloat64()*3))
		b := float32(r.NormFloat64() * math.Exp(r.NormFloat64()*3))
		c := float32(r.NormFloat64() * math.Exp(r.NormFloat64()*3))
		switch i % 4 {
		case 1:
			c = -a * b // near cancellation
		case 2:
			c = float32(int32(r.IntN(1<<20))) * 0.5 // ties arise with small integers
			a, b = float32(r.IntN(1<<12))+0.5, float32(int(1)<<r.IntN(20))
		}
		want := exact(a, b, c)
		got := fmaF32(a, b, c)
		if math.Float32bits(want) != math.Float32bits(got) && !(want == 0 && got == 0) {
			t.Fatalf("fma(%g, %g, %g) = %g, want %g", a, b, c, got, want)
		}
	}
}

// randActivations draws a token's activations with an outlier channel now and then, a
// zero run and an all-zero super-block when long enough.
func randActivations(r *rand.Rand, n int) []float32 {
	x := randF32(r, n)
	for i := range x {
		if r.IntN(40) == 0 {
			x[i] *= 25
		}
	}
	if n >= 512 {
		clear(x[256:512])
	}
	if n >= 64 {
		clear(x[32:40])
	}
	return x
}

// randBlocks draws nb*rows blocks of type f: half of them ggml's quantization of random
// floats, half random bytes with finite fp16 fields (every level and scale pattern).
func randBlocks(r *rand.Rand, f *QFormat, rows, nb int) []byte {
	w := make([]byte, rows*nb*f.BlockBytes)
	x := randF32(r, f.Block)
	for b := 0; b < rows*nb; b++ {
		blk := w[b*f.BlockBytes : (b+1)*f.BlockBytes]
		if b%2 == 0 {
			for i := range x {
				x[i] = float32(r.NormFloat64()*0.05) + float32(b%3)*0.01
			}
			if err := ggml.Quantize(f.typ, blk, x); err != nil {
				panic(err)
			}
			continue
		}
		for i := range blk {
			blk[i] = byte(r.IntN(256))
		}
		put := func(off int) {
			h := f32ToF16(float32(r.NormFloat64() * 0.01))
			binary.LittleEndian.PutUint16(blk[off:], h)
		}
		switch f {
		case QQ4_0, QQ5_0:
			put(0)
		case QQ4_1, QQ5_1, QQ4_K, QQ5_K:
			put(0)
			put(2)
		case QQ2_K:
			put(80)
			put(82)
		case QQ3_K:
			put(108)
		case QQ6_K:
			put(208)
		}
	}
	return w
}

// deqAct returns the activations the records stand for, in natural order.
func deqAct(f *QFormat, act []byte, n int) []float64 {
	y := make([]float64, n)
	for i := range y {
		if f.ActBlock == 32 {
			rec := act[i/32*qlActRecord:]
			y[i] = float64(f32at(rec, 64)) * float64(int8(rec[i%32]))
			continue
		}
		rec := act[i/256*qkActRecord:]
		pos := i % 256
		if f == QQ4_K || f == QQ5_K {
			pos = 32*q4kChunk[pos/32] + pos%32
		}
		y[i] = float64(f32at(rec, 256)) * float64(int8(rec[pos]))
	}
	return y
}

// TestQuantizeQ8_0: the legacy types' activation records hold llama.cpp's x86 Q8_0 and
// Q8_1 (d = fp16(max/127), q = nearest-even(x·(127/max)), s = fp16(max/127·Σq)) and the
// lane terms.
func TestQuantizeQ8_0(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := randActivations(r, 256)
	x[70] = 127 / 3.0 // a value landing on a tie: 127·x/max exact halves
	x[71] = -127 / 6.0
	clear(x[96:128]) // an all-zero block
	forEachLevel(t, func(t *testing.T) { testQuantizeQ8_0(t, x) })
}

func testQuantizeQ8_0(t *testing.T, x []float32) {
	for _, f := range []*QFormat{QQ4_0, QQ5_0, QQ4_1} {
		act := make([]byte, f.ActBytes(len(x)))
		f.Quantize(act, x)
		for b := 0; b < len(x)/32; b++ {
			blk, rec := x[32*b:32*b+32], act[b*qlActRecord:]
			var amax float32
			for _, v := range blk {
				amax = max(amax, float32(math.Abs(float64(v))))
			}
			require.Equal(t, halfToF32(f16.F32ToF16(amax/127)), f32at(rec, 64))
			var sum int32
			for i, v := range blk {
				var q int32
				if amax != 0 {
					q = int32(math.RoundToEven(float64(float32(v * (127 / amax)))))
				}
				require.Equal(t, q, int32(int8(rec[i])), "block %d value %d", b, i)
				sum += q
			}
			for j := 0; j < 8; j++ {
				s4 := int32(int8(rec[4*j])) + int32(int8(rec[4*j+1])) + int32(int8(rec[4*j+2])) + int32(int8(rec[4*j+3]))
				switch f {
				case QQ4_0:
					require.Equal(t, -8*s4, i32at(rec, 32+4*j))
				case QQ5_0:
					require.Equal(t, -16*s4, i32at(rec, 32+4*j))
				default:
					want := float32(0)
					if j == 0 {
						want = halfToF32(f16.F32ToF16(amax / 127 * float32(sum)))
					}
					require.Equal(t, want, f32at(rec, 32+4*j))
				}
			}
		}
	}
}

// TestQuantizeQ8K: the K-quant activation records hold exactly ggml's Q8_K
// (quantize_row_q8_K_ref) quants, scale and sums, in each type's order, on every level:
// a zero super-block, a negative maximum, a maximum tied in magnitude with a later value
// of the other sign, a maximum in the last lane.
func TestQuantizeQ8K(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := randActivations(r, 1536)
	x[700] = -x[700] * 1000  // super-block 2: a negative maximum
	x[800], x[900] = 77, -77 // super-block 3: tied magnitudes, the first wins
	x[1279] = 500            // super-block 4: the maximum in the last lane
	x[1300] = 0.5            // super-block 5: ties to even at the rounding step
	for i := 1301; i < 1536; i++ {
		x[i] = float32(i%9) * 0.5 / 127 * 0.5
	}
	ref := make([]byte, 6*292)
	require.NoError(t, ggml.Quantize(ggml.Q8_K, ref, x))
	forEachLevel(t, func(t *testing.T) {
		for _, f := range []*QFormat{QQ6_K, QQ4_K} {
			act := make([]byte, f.ActBytes(len(x))+1)
			act[len(act)-1] = 0xAB
			f.Quantize(act, x)
			require.Equal(t, byte(0xAB), act[len(act)-1], "wrote past the records")
			for b := 0; b < 6; b++ {
				rb, rec := ref[b*292:], act[b*qkActRecord:]
				require.Equal(t, binary.LittleEndian.Uint32(rb), binary.LittleEndian.Uint32(rec[256:]), "block %d d", b)
				for i := 0; i < 256; i++ {
					pos := i
					if f == QQ4_K {
						pos = 32*q4kChunk[i/32] + i%32
					}
					require.Equal(t, rb[4+i], rec[pos], "%s block %d value %d", f.Name, b, i)
				}
				for g := 0; g < 16; g++ {
					want := int32(int16(binary.LittleEndian.Uint16(rb[260+2*g:])))
					if f == QQ4_K {
						if g%2 == 0 {
							want += int32(int16(binary.LittleEndian.Uint16(rb[262+2*g:])))
							require.Equal(t, want, i32at(rec, 288+2*g), "block %d sum32 %d", b, g/2)
						}
						continue
					}
					require.Equal(t, want, bsum16(rec, g), "block %d sum %d", b, g)
				}
			}
			require.Zero(t, f32at(act[qkActRecord:], 256), "the zero super-block has d = 0")
		}
	})
}

// TestQDotMeaning: every format's product is the dot product of ggml's dequantized
// weights with the quantized activations, to float32 rounding.
func TestQDotMeaning(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, f := range QFormats {
		t.Run(f.Name, func(t *testing.T) {
			for _, nb := range []int{1, 2, 3, 8} {
				n := nb * f.Block
				w := randBlocks(r, f, 1, nb)
				deq := make([]float32, n)
				f.DequantizeRow(deq, w)
				x := randActivations(r, n)
				act := make([]byte, f.ActBytes(n))
				f.Quantize(act, x)
				a := deqAct(f, act, n)
				var want, mag float64
				for i := range deq {
					wi := float64(deq[i])
					if f == QQ4_1 || f == QQ5_1 {
						// Q8_1: the min meets the block's rounded sum s, not Σ d·q.
						m := float64(half(w[i/32*f.BlockBytes+2:]))
						wi -= m
						if i%32 == 0 {
							s := float64(f32at(act[i/32*qlActRecord:], 32))
							want += m * s
							mag += math.Abs(m * s)
						}
					}
					want += wi * a[i]
					mag += math.Abs(wi * a[i])
				}
				// The types with a min sum the min's share separately: bound it too.
				for b := 0; b < nb; b++ {
					var dmin float64
					switch f {
					case QQ4_K, QQ5_K:
						dmin = 63 * math.Abs(float64(half(w[b*f.BlockBytes+2:])))
					case QQ2_K:
						dmin = 15 * math.Abs(float64(half(w[b*f.BlockBytes+82:])))
					}
					for i := b * f.Block; i < (b+1)*f.Block; i++ {
						mag += dmin * math.Abs(a[i])
					}
				}
				got := f.Dot(w, nb, act)
				require.InDelta(t, want, float64(got), 4e-6*mag*float64(nb+2)+1e-30, "nb=%d", nb)
			}
		})
	}
}

// TestQKernelsAgree: the decode kernel and the tile, on every level, give the portable
// contract's result bit for bit, for rows at any stride and a ragged number of blocks
// (1, 2, 3, 5 and 8), every (row, token) position of the tile checked. The sixteen
// results of a case all differ, and the random blocks carry nonzero mins and scales of
// both signs, so a tile that swaps two tokens' activations or drops a min term fails
// (tried: the Q5_K tile with two tokens' accumulators swapped or no min term, the Q3_K
// tile with the wrong offset shift and the Q2_K tile with no min term all fail here).
func TestQKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, f := range QFormats {
		t.Run(f.Name, func(t *testing.T) {
			nbs := []int{1, 2, 3, 5, 8, 17}
			if f.Block == 32 { // the legacy tiles work in chunks of 32 blocks
				nbs = append(nbs, 32, 33, 70)
			}
			for _, nb := range nbs {
				rb := nb * f.BlockBytes
				ldw := rb + r.IntN(3)*f.BlockBytes + r.IntN(2)
				w := make([]byte, 3*ldw+rb)
				rows := randBlocks(r, f, 4, nb)
				for i := 0; i < 4; i++ {
					copy(w[i*ldw:], rows[i*rb:(i+1)*rb])
				}
				n := nb * f.Block
				lda := f.ActBytes(n) + 64*r.IntN(2) + 4*r.IntN(2)
				act := make([]byte, 3*lda+f.ActBytes(n))
				for tk := 0; tk < 4; tk++ {
					f.Quantize(act[tk*lda:], randActivations(r, n))
				}
				var want [16]float32
				for tk := 0; tk < 4; tk++ {
					for row := 0; row < 4; row++ {
						want[4*tk+row] = f.dot(w[row*ldw:], nb, act[tk*lda:])
					}
				}
				// Sixteen different results, so a tile that mixes up rows or tokens
				// (or writes one position twice) cannot pass.
				seen := map[uint32]int{}
				for i, v := range want {
					j, dup := seen[math.Float32bits(v)]
					require.False(t, dup, "nb=%d: positions %d and %d have the same result %g", nb, j, i, v)
					seen[math.Float32bits(v)] = i
				}
				forEachLevel(t, func(t *testing.T) {
					var tile [16]float32
					f.Tile4x4(&tile, w, ldw, nb, act, lda)
					for tk := 0; tk < 4; tk++ {
						var r4 [4]float32
						f.Rows4(&r4, w, ldw, nb, act[tk*lda:])
						for row := 0; row < 4; row++ {
							msg := fmt.Sprintf("%s nb=%d token %d row %d", QLevel(), nb, tk, row)
							require.Equal(t, math.Float32bits(want[4*tk+row]), math.Float32bits(r4[row]), "rows4 %s: %g vs %g", msg, r4[row], want[4*tk+row])
							require.Equal(t, math.Float32bits(want[4*tk+row]), math.Float32bits(tile[4*tk+row]), "tile %s: %g vs %g", msg, tile[4*tk+row], want[4*tk+row])
						}
					}
				})
			}
			require.Panics(t, func() {
				var o [4]float32
				f.Rows4(&o, make([]byte, 4*f.BlockBytes-1), f.BlockBytes, 1, make([]byte, f.ActBytes(f.Block)))
			})
			require.Panics(t, func() {
				var o [4]float32
				f.Rows4(&o, make([]byte, 4*f.BlockBytes), f.BlockBytes, 1, make([]byte, f.ActBytes(f.Block)-1))
			})
		})
	}
}
