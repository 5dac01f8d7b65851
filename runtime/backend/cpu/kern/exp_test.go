package kern

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExpShift(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, n := range append(seq(0, 70), 127, 128, 129, 1000, 2048) {
			w := make([]float32, n)
			for i := range w {
				w[i] = float32(rng.NormFloat64() * 30)
			}
			if n > 3 {
				w[1] = -200 // underflows to zero
				w[2] = float32(math.NaN())
			}
			mx := float32(-math.MaxFloat32)
			for _, v := range w {
				if v == v {
					mx = max(mx, v)
				}
			}
			orig := append([]float32(nil), w...)
			sum := ExpShift(w, mx)
			var want float64
			for i, v := range orig {
				x := float64(v - mx) // the kernel subtracts in float32
				e := math.Exp(x)
				if v != v || x < -87.33654 {
					require.Equal(t, float32(0), w[i], "n=%d i=%d x=%g", n, i, x)
					continue
				}
				want += e
				require.InEpsilon(t, e, float64(w[i]), 3e-7, "n=%d i=%d x=%g", n, i, x)
			}
			if n > 0 {
				require.InEpsilon(t, want, float64(sum), 1e-5, "n=%d", n)
			}
		}
	})
}

func TestExpShiftDeterministic(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		w := []float32{-1, -2, -3, 0, -0.5, -7, -9, -11, -13, -1, -2, -3, 0, -0.5, -7, -9, -11}
		a := append([]float32(nil), w...)
		b := append([]float32(nil), w...)
		require.Equal(t, math.Float32bits(ExpShift(a, 0)), math.Float32bits(ExpShift(b, 0)))
		require.Equal(t, a, b)
	})
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

func BenchmarkExpShift(b *testing.B) {
	w := make([]float32, 2048)
	for i := range w {
		w[i] = -float32(i%50) * 0.37
	}
	for _, l := range availableLevels() {
		b.Run(levelName(l), func(b *testing.B) {
			defer func(old int) { level = old }(level)
			level = l
			buf := make([]float32, len(w))
			for i := 0; i < b.N; i++ {
				copy(buf, w)
				ExpShift(buf, 0)
			}
			b.ReportMetric(float64(b.N*len(w))/b.Elapsed().Seconds()/1e9, "Gexp/s")
		})
	}
}

func TestSiLUMul(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 9))
		for _, n := range append(seq(0, 40), 172, 5632) {
			g := make([]float32, n+3)
			u := make([]float32, n+3)
			for i := range g {
				g[i] = float32(rng.NormFloat64() * 6)
				u[i] = float32(rng.NormFloat64())
			}
			if n > 4 {
				g[0], g[1], g[2], g[3] = 100, -100, 0, -88
			}
			out := make([]float32, n+1)
			out[n] = 42 // past the end: must stay
			SiLUMul(out[:n], g, u)
			require.Equal(t, float32(42), out[n])
			for i := 0; i < n; i++ {
				x, y := float64(g[i]), float64(u[i])
				want := x * y / (1 + math.Exp(-x))
				require.InDelta(t, want, float64(out[i]), 1e-6*math.Max(1, math.Abs(want)), "n=%d i=%d g=%g", n, i, x)
			}
		}
	})
}

// TestDot4SwappedRoles: four weight rows against one activation row give the bits of
// Dot(activation, row) — the CPU matmul relies on it for small matrices.
func TestDot4SwappedRoles(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 8))
		for _, n := range append(seq(1, 70), 172, 2048) {
			x := make([]float32, n)
			rows := make([]float32, 4*n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			for i := range rows {
				rows[i] = float32(rng.NormFloat64())
			}
			var out [4]float32
			Dot4(&out, rows, n, n, x)
			for r := 0; r < 4; r++ {
				require.Equal(t, math.Float32bits(Dot(x, rows[r*n:(r+1)*n])), math.Float32bits(out[r]), "n=%d row %d", n, r)
			}
		}
	})
}

func TestMax(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(27, 28))
		for n := 1; n <= 200; n++ {
			w := append(randF32(r, n), 1e30) // past n: never read
			want := w[0]
			for _, v := range w[:n] {
				want = max(want, v)
			}
			require.Equal(t, want, Max(w[:n]), "n=%d", n)
			// The maximum in every position.
			for _, at := range []int{0, n / 2, n - 1} {
				v := append([]float32(nil), w[:n]...)
				v[at] = 100
				require.Equal(t, float32(100), Max(v), "n=%d at %d", n, at)
			}
		}
		require.Panics(t, func() { Max(nil) })
	})
}
