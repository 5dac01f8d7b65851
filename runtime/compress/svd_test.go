package compress

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func randMatrix(r *rand.Rand, out, in int) []float32 {
	w := make([]float32, out*in)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	return w
}

// product returns B·A [out][in] in float64.
func product(f *LowRank, out, in int) []float64 {
	p := make([]float64, out*in)
	for i := 0; i < out; i++ {
		for k := 0; k < in; k++ {
			var s float64
			for c := 0; c < f.Rank; c++ {
				s += float64(f.B[i*f.Rank+c]) * float64(f.A[c*in+k])
			}
			p[i*in+k] = s
		}
	}
	return p
}

func maxAbsDiff(w []float32, p []float64) (d, scale float64) {
	for i, v := range w {
		d = math.Max(d, math.Abs(float64(v)-p[i]))
		scale = math.Max(scale, math.Abs(float64(v)))
	}
	return
}

// At full rank the factors reproduce the matrix to float32 rounding, for wide, tall and
// square matrices, exactly factored or through the randomized sketch.
func TestFactorizeFullRank(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range [][2]int{{1, 1}, {1, 7}, {7, 1}, {48, 80}, {80, 48}, {64, 64}, {172, 64}, {64, 172}} {
		out, in := s[0], s[1]
		w := randMatrix(r, out, in)
		f, err := Factorize(w, out, in, RankRule{Rank: min(out, in)}, SVDOptions{Seed: 3})
		require.NoError(t, err)
		require.Equal(t, min(out, in), f.Rank)
		d, scale := maxAbsDiff(w, product(f, out, in))
		require.Less(t, d, 2e-6*scale*math.Sqrt(float64(min(out, in))), "[%d][%d]", out, in)
		require.InDelta(t, 1, f.Energy, 1e-9)
	}
}

// A matrix of exact rank k is recovered by a rank-k randomized factorization, and the
// singular values match those of its construction.
func TestFactorizeLowRankMatrix(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const out, in, k = 150, 120, 9
	u, v := randMatrix(r, out, k), randMatrix(r, k, in)
	w := make([]float32, out*in)
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			var s float64
			for c := 0; c < k; c++ {
				s += float64(u[i*k+c]) * float64(v[c*in+j])
			}
			w[i*in+j] = float32(s)
		}
	}
	for _, pi := range []int{0, 1, 2} {
		f, err := Factorize(w, out, in, RankRule{Rank: k}, SVDOptions{Seed: 5, PowerIters: pi})
		require.NoError(t, err)
		d, scale := maxAbsDiff(w, product(f, out, in))
		require.Less(t, d, 1e-5*scale, "power iterations %d", pi)
		require.InDelta(t, 1, f.Energy, 1e-6)
		// Energy rule: rank 9 holds everything, 8 does not.
		fe, err := Factorize(w, out, in, RankRule{Energy: 0.999999}, SVDOptions{Seed: 5, PowerIters: pi})
		require.NoError(t, err)
		require.Equal(t, k, fe.Rank)
		require.True(t, fe.Reached)
	}
}

// A truncated factorization is as good as the best rank-r approximation (Eckart-Young):
// its error is the energy of the dropped singular values, which the exact path gives.
func TestFactorizeTruncationOptimal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const out, in = 96, 64
	// A decaying spectrum, as trained weights have.
	w := randMatrix(r, out, in)
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			w[i*in+j] *= float32(math.Exp(-float64(j) / 10))
		}
	}
	exact, err := Factorize(w, out, in, RankRule{Rank: in}, SVDOptions{})
	require.NoError(t, err)
	for _, rank := range []int{4, 16, 32} {
		f, err := Factorize(w, out, in, RankRule{Rank: rank}, SVDOptions{Seed: 7, PowerIters: 2})
		require.NoError(t, err)
		p := product(f, out, in)
		var errF float64
		for i, v := range w {
			d := float64(v) - p[i]
			errF += d * d
		}
		var tail float64
		for _, s := range exact.Sigma[rank:] {
			tail += s * s
		}
		require.InDelta(t, tail, errF, 0.02*tail+1e-9, "rank %d: error %g, optimum %g", rank, errF, tail)
		require.InDelta(t, 1-tail/exact.Total, f.Energy, 0.01)
	}
}

// Whitening: at full rank W·S·S⁻¹ is W again; truncated, the whitened factorization has
// a smaller output error on the calibration inputs than the plain one.
func TestFactorizeWhitened(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const out, in, n = 40, 32, 400
	w := randMatrix(r, out, in)
	// Inputs with very unequal channel scales.
	x := make([]float64, n*in)
	for i := range x {
		x[i] = r.NormFloat64() * math.Exp(float64(i%in)/6)
	}
	g := mulT(transpose(x, n, in), in, n, transpose(x, n, in), in) // XᵀX
	s, ok := cholesky(g, in)
	require.True(t, ok)
	full, err := Factorize(w, out, in, RankRule{Rank: in}, SVDOptions{Whiten: s})
	require.NoError(t, err)
	d, scale := maxAbsDiff(w, product(full, out, in))
	require.Less(t, d, 1e-4*scale)
	outErr := func(f *LowRank) float64 {
		p := product(f, out, in)
		var e float64
		for i := 0; i < n; i++ {
			for j := 0; j < out; j++ {
				var dv float64
				for k := 0; k < in; k++ {
					dv += (float64(w[j*in+k]) - p[j*in+k]) * x[i*in+k]
				}
				e += dv * dv
			}
		}
		return e
	}
	for _, rank := range []int{4, 12} {
		plain, err := Factorize(w, out, in, RankRule{Rank: rank}, SVDOptions{})
		require.NoError(t, err)
		white, err := Factorize(w, out, in, RankRule{Rank: rank}, SVDOptions{Whiten: s})
		require.NoError(t, err)
		require.Less(t, outErr(white), 0.7*outErr(plain), "rank %d", rank)
	}
}

func TestFactorizeRules(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	w := randMatrix(r, 30, 20)
	for _, c := range []struct {
		rule RankRule
		rank int
	}{
		{RankRule{Fraction: 0.5}, 10},
		{RankRule{Budget: 1}, 12}, // 30·20/50
		{RankRule{Budget: 0.5}, 6},
		{RankRule{Rank: 99}, 20},
	} {
		f, err := Factorize(w, 30, 20, c.rule, SVDOptions{})
		require.NoError(t, err, "%v", c.rule)
		require.Equal(t, c.rank, f.Rank, "%v", c.rule)
		require.Len(t, f.A, f.Rank*20)
		require.Len(t, f.B, 30*f.Rank)
	}
	for _, bad := range []RankRule{{}, {Fraction: 0.5, Budget: 0.5}, {Fraction: 1.5}, {Budget: 2}, {Energy: -1}, {Energy: math.NaN()}} {
		_, err := Factorize(w, 30, 20, bad, SVDOptions{})
		require.Error(t, err, "%+v", bad)
	}
	_, err := Factorize([]float32{1, float32(math.Inf(1))}, 1, 2, RankRule{Rank: 1}, SVDOptions{})
	require.ErrorContains(t, err, "non-finite")
	// The zero matrix factors as rank 1 of zeros.
	f, err := Factorize(make([]float32, 12), 3, 4, RankRule{Fraction: 1}, SVDOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, f.Rank)
	require.Equal(t, make([]float32, 4), f.A)
}

// The float32 product path (large matrices) keeps the truncation near-optimal.
func TestFactorizeLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large factorization: skipped with -short")
	}
	old := fastProductMACs
	fastProductMACs = 1 << 20 // every product through the float32 kernels
	t.Cleanup(func() { fastProductMACs = old })
	r := rand.New(rand.NewPCG(11, 12))
	const out, in = 1024, 768
	w := randMatrix(r, out, in)
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			w[i*in+j] *= float32(math.Exp(-float64(j) / 50))
		}
	}
	f, err := Factorize(w, out, in, RankRule{Rank: 64}, SVDOptions{Seed: 1, PowerIters: 2})
	require.NoError(t, err)
	p := product(f, out, in)
	var errF, norm float64
	for i, v := range w {
		d := float64(v) - p[i]
		errF += d * d
		norm += float64(v) * float64(v)
	}
	require.InDelta(t, 1-errF/norm, f.Energy, 1e-3, fmt.Sprintf("energy %g vs measured %g", f.Energy, 1-errF/norm))
	// And at full rank (through the float32 path) the matrix comes back to float32
	// rounding of its products.
	const sq = 200
	ws := randMatrix(r, sq, sq)
	full, err := Factorize(ws, sq, sq, RankRule{Rank: sq}, SVDOptions{})
	require.NoError(t, err)
	d, scale := maxAbsDiff(ws, product(full, sq, sq))
	require.Less(t, d, 1e-4*scale)
}
