package kern

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// sparse24Sizes are row lengths (multiples of 4) around the step (32) and unroll (128)
// boundaries, stories260K's FFN width (172) and real model widths.
func sparse24Sizes() []int {
	var ns []int
	for n := 0; n <= 140; n += 4 {
		ns = append(ns, n)
	}
	return append(ns, 172, 252, 256, 260, 508, 512, 516, 2048, 5632)
}

// codes24 are the six valid group codes (two increasing columns).
var codes24 = []byte{0x4, 0x8, 0xC, 0x9, 0xD, 0xE}

// randSparse24 draws a 2:4 row of n inputs: its kept values (float and int8), metadata,
// and the dense rows they stand for.
func randSparse24(r *rand.Rand, n int) (v []float32, vq []int8, meta []byte, dense []float32, denseQ []int8) {
	v, vq = randF32(r, n/2), randI8(r, n/2)
	meta = make([]byte, (n/4+1)/2)
	dense, denseQ = make([]float32, n), make([]int8, n)
	for g := 0; g < n/4; g++ {
		c := codes24[r.IntN(len(codes24))]
		meta[g/2] |= c << (4 * (g % 2))
		i0, i1 := int(c&3), int(c>>2)
		dense[4*g+i0], dense[4*g+i1] = v[2*g], v[2*g+1]
		denseQ[4*g+i0], denseQ[4*g+i1] = vq[2*g], vq[2*g+1]
	}
	return
}

// The 2:4 dot equals the dense dot of the masked row to float rounding, on every level.
func TestDot24MatchesDense(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, n := range sparse24Sizes() {
			x := randF32(r, n)
			v, vq, meta, dense, denseQ := randSparse24(r, n)
			want, mag := ref(x, func(i int) float64 { return float64(dense[i]) })
			got := Dot24(x, v, meta)
			requireClose(t, got, want, mag, fmt.Sprintf("Dot24 n=%d", n))
			requireClose(t, got, float64(Dot(x, dense)), mag, fmt.Sprintf("Dot24 vs Dot n=%d", n))
			want, mag = ref(x, func(i int) float64 { return float64(denseQ[i]) })
			got = Dot24Q8(x, vq, meta)
			requireClose(t, got, want, mag, fmt.Sprintf("Dot24Q8 n=%d", n))
			requireClose(t, got, float64(DotQ8(x, denseQ)), mag, fmt.Sprintf("Dot24Q8 vs DotQ8 n=%d", n))
		}
	})
}

// Small integers make every sum exact: each lane, step, unrolled step and tail group
// must contribute, once, the product of the right activation.
func TestDot24Exact(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(23, 24))
		for _, n := range sparse24Sizes() {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%13 - 6)
			}
			_, _, meta, _, _ := randSparse24(r, n)
			v := make([]float32, n/2)
			vq := make([]int8, n/2)
			dense := make([]float32, n)
			want := 0
			for g := 0; g < n/4; g++ {
				c := meta[g/2] >> (4 * (g % 2))
				for k, col := range []int{int(c & 3), int(c >> 2 & 3)} {
					val := (2*g+k)%7 - 3
					v[2*g+k], vq[2*g+k] = float32(val), int8(val)
					dense[4*g+col] = float32(val)
					want += val * ((4*g+col)%13 - 6)
				}
			}
			require.Equal(t, float32(want), Dot24(x, v, meta), "n=%d", n)
			require.Equal(t, float32(want), Dot24Q8(x, vq, meta), "n=%d", n)
			require.Equal(t, float32(want), Dot(x, dense), "n=%d (dense)", n)
		}
	})
}

// Dot24x4 row r is bit-identical to Dot24 on that row (batch invariance), whatever ldx.
func TestDot24BatchInvariance(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, n := range sparse24Sizes() {
			for _, pad := range []int{0, 1, 5} {
				ldx := n + pad
				x := randF32(r, 3*ldx+n)
				v, vq, meta, _, _ := randSparse24(r, n)
				var o, oq [4]float32
				Dot24x4(&o, x, ldx, n, v, meta)
				Dot24x4Q8(&oq, x, ldx, n, vq, meta)
				for row := 0; row < 4; row++ {
					xr := x[row*ldx : row*ldx+n]
					require.Equal(t, math.Float32bits(Dot24(xr, v, meta)), math.Float32bits(o[row]), "Dot24x4 n=%d ldx=%d row=%d", n, ldx, row)
					require.Equal(t, math.Float32bits(Dot24Q8(xr, vq, meta)), math.Float32bits(oq[row]), "Dot24x4Q8 n=%d ldx=%d row=%d", n, ldx, row)
				}
			}
		}
	})
}

// The levels agree to rounding.
func TestDot24LevelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, n := range sparse24Sizes() {
		x := randF32(r, n)
		v, vq, meta, dense, denseQ := randSparse24(r, n)
		_, mag := ref(x, func(i int) float64 { return float64(dense[i]) })
		_, magq := ref(x, func(i int) float64 { return float64(denseQ[i]) })
		var base, baseq float32
		for i, l := range availableLevels() {
			setLevel(t, l)
			d, dq := Dot24(x, v, meta), Dot24Q8(x, vq, meta)
			if i == 0 {
				base, baseq = d, dq
				continue
			}
			requireClose(t, d, float64(base), mag, fmt.Sprintf("%s n=%d", levelName(l), n))
			requireClose(t, dq, float64(baseq), magq, fmt.Sprintf("%s q8 n=%d", levelName(l), n))
		}
	}
}

// Operands ending at an unmapped page do not fault: the kernels read exactly n inputs,
// n/2 values and ceil(n/8) metadata bytes.
func TestDot24GuardPage(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(29, 30))
		for _, n := range sparse24Sizes() {
			if n == 0 {
				continue
			}
			v0, vq0, meta0, _, _ := randSparse24(r, n)
			x := guardedF32(t, n)
			copy(x, randF32(r, n))
			v, vq := guardedF32(t, n/2), guardedI8(t, n/2)
			copy(v, v0)
			copy(vq, vq0)
			mb := guarded(t, len(meta0))
			copy(mb, meta0)
			d, dq := Dot24(x, v, mb), Dot24Q8(x, vq, mb)
			ldx := n + 1
			x4 := guardedF32(t, 3*ldx+n)
			for row := 0; row < 4; row++ {
				copy(x4[row*ldx:], x)
			}
			var o, oq [4]float32
			Dot24x4(&o, x4, ldx, n, v, mb)
			Dot24x4Q8(&oq, x4, ldx, n, vq, mb)
			require.Equal(t, [4]float32{d, d, d, d}, o, "n=%d", n)
			require.Equal(t, [4]float32{dq, dq, dq, dq}, oq, "n=%d", n)
		}
	})
}

func TestDot24BadOperands(t *testing.T) {
	var o [4]float32
	require.Panics(t, func() { Dot24(make([]float32, 6), make([]float32, 3), make([]byte, 1)) }, "n % 4 != 0")
	require.Panics(t, func() { Dot24(make([]float32, 8), make([]float32, 3), make([]byte, 1)) }, "short values")
	require.Panics(t, func() { Dot24Q8(make([]float32, 40), make([]int8, 20), make([]byte, 4)) }, "short metadata")
	require.Panics(t, func() { Dot24x4(&o, make([]float32, 10), 3, 4, make([]float32, 2), make([]byte, 1)) }, "rows past x")
	require.Equal(t, float32(0), Dot24(nil, nil, nil))
}
