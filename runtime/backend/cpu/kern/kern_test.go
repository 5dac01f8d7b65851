package kern

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// testSizes: every n up to 70 plus sizes around the vector/unroll boundaries and real
// model widths.
func testSizes() []int {
	var ns []int
	for n := 0; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 95, 96, 97, 127, 128, 129, 172, 191, 192, 193, 255, 256, 257, 2048, 5632)
}

// setLevel switches the implementation for a test and restores it afterwards.
func setLevel(t testing.TB, l int) {
	old := level
	level = l
	t.Cleanup(func() { level = old })
}

// forEachLevel runs f once per implementation this CPU supports.
func forEachLevel(t *testing.T, f func(t *testing.T)) {
	for _, l := range availableLevels() {
		t.Run(levelName(l), func(t *testing.T) {
			setLevel(t, l)
			f(t)
		})
	}
}

func randF32(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func randI8(r *rand.Rand, n int) []int8 {
	s := make([]int8, n)
	for i := range s {
		s[i] = int8(r.IntN(256) - 128)
	}
	return s
}

// ref returns the float64 dot and sum|x*w| (the error scale).
func ref(x []float32, w func(i int) float64) (dot, mag float64) {
	for i, xv := range x {
		p := float64(xv) * w(i)
		dot += p
		mag += math.Abs(p)
	}
	return
}

func requireClose(t *testing.T, got float32, want, mag float64, msg string) {
	t.Helper()
	tol := 1e-5*mag + 1e-30
	require.InDelta(t, want, float64(got), tol, msg)
}

func TestLevels(t *testing.T) {
	t.Logf("features %+v, levels %v, selected %s", Features, availableLevels(), levelName(level))
	if runtime.GOARCH == "amd64" && Features.AVX512 && Features.FMA {
		require.Equal(t, levelAVX512, level)
	}
}

func TestDotAccuracy(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, n := range testSizes() {
			x, w := randF32(r, n), randF32(r, n)
			wq := randI8(r, n)
			want, mag := ref(x, func(i int) float64 { return float64(w[i]) })
			requireClose(t, Dot(x, w), want, mag, fmt.Sprintf("Dot n=%d", n))
			want, mag = ref(x, func(i int) float64 { return float64(wq[i]) })
			requireClose(t, DotQ8(x, wq), want, mag, fmt.Sprintf("DotQ8 n=%d", n))
		}
	})
}

func TestDotSpecialValues(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		require.Equal(t, float32(0), Dot(nil, nil))
		require.Equal(t, float32(0), DotQ8(nil, nil))
		require.Equal(t, float32(6), Dot([]float32{1, 2, 3}, []float32{1, 1, 1, 9}))
		require.Equal(t, float32(-384), DotQ8([]float32{1, 2}, []int8{-128, -128}))
		require.Panics(t, func() { Dot([]float32{1, 2}, []float32{1}) })
		require.Panics(t, func() { DotQ8([]float32{1, 2}, []int8{1}) })
		var out [4]float32
		require.Panics(t, func() { Dot4(&out, make([]float32, 10), 3, 2, make([]float32, 2)) })
		require.Panics(t, func() { Dot4(&out, make([]float32, 11), 3, 2, make([]float32, 1)) })
		// Exact small-integer sums for every n: all lanes and tails contribute.
		for _, n := range testSizes() {
			x := make([]float32, n)
			w := make([]float32, n)
			wq := make([]int8, n)
			want := 0
			for i := range x {
				x[i] = float32(i%7 - 3)
				w[i] = float32(i%5 - 2)
				wq[i] = int8(i%5 - 2)
				want += (i%7 - 3) * (i%5 - 2)
			}
			require.Equal(t, float32(want), Dot(x, w), "n=%d", n)
			require.Equal(t, float32(want), DotQ8(x, wq), "n=%d", n)
		}
	})
}

// TestBatchInvariance is the contract: Dot4 row r is bit-identical to Dot on that row,
// for every n and independent of the rows' alignment and of ldx.
func TestBatchInvariance(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, n := range testSizes() {
			for _, pad := range []int{0, 1, 5, 16} {
				ldx := n + pad
				x := randF32(r, 3*ldx+n)
				w := randF32(r, n)
				wq := randI8(r, n)
				var o, oq [4]float32
				Dot4(&o, x, ldx, n, w)
				Dot4Q8(&oq, x, ldx, n, wq)
				for row := 0; row < 4; row++ {
					xr := x[row*ldx : row*ldx+n]
					require.Equal(t, math.Float32bits(Dot(xr, w)), math.Float32bits(o[row]), "Dot4 n=%d ldx=%d row=%d", n, ldx, row)
					require.Equal(t, math.Float32bits(DotQ8(xr, wq)), math.Float32bits(oq[row]), "Dot4Q8 n=%d ldx=%d row=%d", n, ldx, row)
				}
			}
		}
	})
}

// TestAlignmentInvariance: misaligned operands give the same bits as aligned copies.
func TestAlignmentInvariance(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, n := range testSizes() {
			x, w, wq := randF32(r, n), randF32(r, n), randI8(r, n)
			d, dq := Dot(x, w), DotQ8(x, wq)
			for _, off := range []int{1, 3, 7, 13} {
				xb := make([]float32, n+off)
				wb := make([]float32, n+off+2)
				qb := make([]int8, n+off+5)
				xs, ws, qs := xb[1:1+n], wb[off:off+n], qb[off+2:off+2+n]
				copy(xs, x)
				copy(ws, w)
				copy(qs, wq)
				require.Equal(t, math.Float32bits(d), math.Float32bits(Dot(xs, ws)), "n=%d off=%d", n, off)
				require.Equal(t, math.Float32bits(dq), math.Float32bits(DotQ8(xs, qs)), "n=%d off=%d", n, off)
				// Four misaligned rows packed at an odd stride.
				ldx := n + off
				x4 := make([]float32, 1+3*ldx+n)[1:]
				for row := 0; row < 4; row++ {
					copy(x4[row*ldx:], x)
				}
				var o, oq [4]float32
				Dot4(&o, x4, ldx, n, ws)
				Dot4Q8(&oq, x4, ldx, n, qs)
				for row := 0; row < 4; row++ {
					require.Equal(t, math.Float32bits(d), math.Float32bits(o[row]), "Dot4 n=%d off=%d row=%d", n, off, row)
					require.Equal(t, math.Float32bits(dq), math.Float32bits(oq[row]), "Dot4Q8 n=%d off=%d row=%d", n, off, row)
				}
			}
		}
	})
}

// TestNoReadPastN: NaN after element n must not reach the result.
func TestNoReadPastN(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		nan := float32(math.NaN())
		for _, n := range testSizes() {
			x := append(randF32(r, n), nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
			w := append(randF32(r, n), nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan)
			wq := append(randI8(r, n), 127, 127, 127)
			require.False(t, isBad(Dot(x[:n], w)), "Dot n=%d", n)
			require.False(t, isBad(DotQ8(x[:n], wq)), "DotQ8 n=%d", n)
			// Rows separated by NaN padding; the last row is followed by NaN too.
			ldx := n + 3
			x4 := make([]float32, 3*ldx+n+16)
			for i := range x4 {
				x4[i] = nan
			}
			for row := 0; row < 4; row++ {
				copy(x4[row*ldx:], x[:n])
			}
			var o, oq [4]float32
			Dot4(&o, x4, ldx, n, w)
			Dot4Q8(&oq, x4, ldx, n, wq)
			for row := 0; row < 4; row++ {
				require.False(t, isBad(o[row]), "Dot4 n=%d row=%d", n, row)
				require.False(t, isBad(oq[row]), "Dot4Q8 n=%d row=%d", n, row)
			}
		}
	})
}

func isBad(f float32) bool { return math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) }

// TestLevelsAgree: every level is within float error of every other.
func TestLevelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, n := range testSizes() {
		x, w, wq := randF32(r, n), randF32(r, n), randI8(r, n)
		_, mag := ref(x, func(i int) float64 { return float64(w[i]) })
		_, magq := ref(x, func(i int) float64 { return float64(wq[i]) })
		var base, baseq float32
		for i, l := range availableLevels() {
			setLevel(t, l)
			d, dq := Dot(x, w), DotQ8(x, wq)
			if i == 0 {
				base, baseq = d, dq
				continue
			}
			requireClose(t, d, float64(base), mag, fmt.Sprintf("%s n=%d", levelName(l), n))
			requireClose(t, dq, float64(baseq), magq, fmt.Sprintf("%s q8 n=%d", levelName(l), n))
		}
	}
}
