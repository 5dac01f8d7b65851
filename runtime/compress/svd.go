package compress

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// RankRule chooses the rank of a factorization; exactly one field is set.
type RankRule struct {
	// Fraction keeps round(Fraction·min(Out, In)) singular directions.
	Fraction float64
	// Budget keeps the largest rank whose two factors hold at most Budget of the dense
	// matrix's weights: ⌊Budget·Out·In/(Out+In)⌋ (Budget 1 is the break-even rank).
	Budget float64
	// Energy keeps the smallest rank whose singular values hold at least this fraction
	// of ‖W‖²_F (of ‖W·S‖²_F when whitened).
	Energy float64
	// Rank keeps exactly this many (tests; capped at min(Out, In)).
	Rank int
}

func (r RankRule) String() string {
	switch {
	case r.Fraction > 0:
		return fmt.Sprintf("rank fraction %g", r.Fraction)
	case r.Budget > 0:
		return fmt.Sprintf("parameter budget %g", r.Budget)
	case r.Energy > 0:
		return fmt.Sprintf("energy %g", r.Energy)
	case r.Rank > 0:
		return fmt.Sprintf("rank %d", r.Rank)
	}
	return "no rank rule"
}

func (r RankRule) validate() error {
	n := 0
	for _, set := range []bool{r.Fraction != 0, r.Budget != 0, r.Energy != 0, r.Rank != 0} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("low-rank: give exactly one of a rank fraction, a parameter budget, an energy threshold or a rank")
	case r.Fraction < 0 || r.Fraction > 1 || math.IsNaN(r.Fraction):
		return fmt.Errorf("low-rank: rank fraction %g outside (0, 1]", r.Fraction)
	case r.Budget < 0 || r.Budget > 1 || math.IsNaN(r.Budget):
		return fmt.Errorf("low-rank: parameter budget %g outside (0, 1] (above 1 the factors outweigh the matrix)", r.Budget)
	case r.Energy < 0 || r.Energy > 1 || math.IsNaN(r.Energy):
		return fmt.Errorf("low-rank: energy threshold %g outside (0, 1]", r.Energy)
	case r.Rank < 0:
		return fmt.Errorf("low-rank: rank %d", r.Rank)
	}
	return nil
}

// BreakEvenRank is the largest rank whose factors hold no more weights than the dense
// [out][in] matrix: ⌊out·in/(out+in)⌋.
func BreakEvenRank(out, in int) int { return out * in / (out + in) }

// SVDOptions tune the randomized SVD.
type SVDOptions struct {
	Oversample int    // extra sketch directions beyond the rank (default 8)
	PowerIters int    // power iterations (default 2; 0 is allowed)
	Seed       uint64 // the Gaussian test matrix's seed
	// Whiten, when set, is the lower-triangular S [In][In] with S·Sᵀ = XᵀX of the
	// layer's calibration inputs X (activation-aware, as SVD-LLM): the factorization
	// truncates W·S, whose singular values measure the output error on those inputs,
	// and A is then multiplied by S⁻¹.
	Whiten []float64
}

// LowRank is a factorization W ≈ B·A of a matrix [Out][In].
type LowRank struct {
	Rank int
	A    []float32 // [Rank][In]
	B    []float32 // [Out][Rank]
	// Sigma are the singular values the sketch found, decreasing (of W·S when
	// whitened); Total is ‖W‖²_F (‖W·S‖²_F) and Energy the fraction of it the kept
	// rank holds.
	Sigma         []float64
	Total, Energy float64
	// Reached is false when an energy threshold was asked but the sketch (capped at the
	// break-even rank plus the oversampling) could not reach it: Rank is then the whole
	// sketch, and a caller should keep the matrix dense.
	Reached bool
}

// Factorize computes a truncated SVD of w [out][in] by randomized range finding with
// power iterations (Halko, Martinsson and Tropp, 2011) — or exactly, from the matrix's
// own rows or columns, when the sketch would span min(out, in) directions — and splits
// each singular value evenly between the factors: B = U·Σ^½, A = Σ^½·Vᵀ (then ·S⁻¹
// when whitened), so both factors have rows of similar scale, which int8 rows need.
func Factorize(w []float32, out, in int, rule RankRule, o SVDOptions) (*LowRank, error) {
	if err := rule.validate(); err != nil {
		return nil, err
	}
	if out <= 0 || in <= 0 || len(w) < out*in {
		return nil, fmt.Errorf("low-rank: %d values for [%d][%d]", len(w), out, in)
	}
	if o.Oversample <= 0 {
		o.Oversample = 8
	}
	if o.PowerIters < 0 {
		return nil, fmt.Errorf("low-rank: %d power iterations", o.PowerIters)
	}
	if o.Whiten != nil && len(o.Whiten) != in*in {
		return nil, fmt.Errorf("low-rank: whitening matrix has %d values for [%d][%d]", len(o.Whiten), in, in)
	}
	wd := to64(w[:out*in])
	for _, v := range wd {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("low-rank: the matrix holds a non-finite value")
		}
	}
	if o.Whiten != nil {
		wd = mulT(wd, out, in, transpose(o.Whiten, in, in), in) // W·S
	}
	total := dot64(wd, wd)
	mn := min(out, in)
	target := 0
	switch {
	case rule.Fraction > 0:
		target = max(1, int(math.Round(rule.Fraction*float64(mn))))
	case rule.Budget > 0:
		target = max(1, int(rule.Budget*float64(out)*float64(in)/float64(out+in)))
	case rule.Rank > 0:
		target = rule.Rank
	}
	target = min(target, mn)
	l := min(mn, target+o.Oversample)
	if rule.Energy > 0 {
		l = mn
		if out*in*mn > 1<<30 { // large: the sketch stops past the break-even rank
			l = min(mn, BreakEvenRank(out, in)+o.Oversample)
		}
	}
	qt, lq, err := rangeBasis(wd, out, in, l, o)
	if err != nil {
		return nil, err
	}
	wt := transpose(wd, out, in)
	bs := mulT(qt, lq, out, wt, in) // Qᵀ·W [lq][in]
	lam, u, err := symEig(mulT(bs, lq, in, bs, lq), lq)
	if err != nil {
		return nil, err
	}
	f := &LowRank{Total: total, Sigma: make([]float64, lq), Reached: true}
	nonzero := 0
	for c, v := range lam {
		f.Sigma[c] = math.Sqrt(max(v, 0))
		if f.Sigma[c] > 1e-7*f.Sigma[0] {
			nonzero = c + 1
		}
	}
	r := target
	if rule.Energy > 0 {
		r, f.Reached = lq, false
		var acc float64
		for c := 0; c < lq; c++ {
			acc += lam[c]
			if acc >= rule.Energy*total {
				r, f.Reached = c+1, true
				break
			}
		}
	}
	r = max(1, min(r, nonzero, lq))
	if nonzero == 0 { // the zero matrix
		f.Rank, f.A, f.B = 1, make([]float32, in), make([]float32, out)
		return f, nil
	}
	f.Rank = r
	coefB := make([]float64, r*lq) // U_r·Σ^½ as rows
	coefA := make([]float64, r*lq) // U_r·Σ^-½
	for c := 0; c < r; c++ {
		s := math.Sqrt(f.Sigma[c])
		for j := 0; j < lq; j++ {
			coefB[c*lq+j] = u[c*lq+j] * s
			coefA[c*lq+j] = u[c*lq+j] / s
		}
		f.Energy += lam[c]
	}
	if total > 0 {
		f.Energy /= total
	}
	b := mulT(transpose(qt, lq, out), out, lq, coefB, r) // Q·U_r·Σ^½ [out][r]
	a := mulT(coefA, r, lq, transpose(bs, lq, in), in)   // Σ^-½·U_rᵀ·Qᵀ·W = Σ^½·V_rᵀ [r][in]
	if o.Whiten != nil {
		solveRightLower(a, r, o.Whiten, in)
	}
	f.A, f.B = to32(a), to32(b)
	for _, v := range f.A {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errors.New("low-rank: the factorization overflowed (an ill-conditioned whitening matrix?)")
		}
	}
	return f, nil
}

// rangeBasis returns an orthonormal basis Qᵀ [lq][out] (rows) of (an approximation of)
// the span of w's columns by l directions.
func rangeBasis(wd []float64, out, in, l int, o SVDOptions) ([]float64, int, error) {
	mn := min(out, in)
	if l >= mn {
		if out <= in { // the whole output space
			q := make([]float64, out*out)
			for i := 0; i < out; i++ {
				q[i*out+i] = 1
			}
			return q, out, nil
		}
		return orthonormalize(transpose(wd, out, in), in, out) // the columns of W
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5bd1e995))
	omega := make([]float64, l*in)
	for i := range omega {
		omega[i] = r.NormFloat64()
	}
	yt := mulT(omega, l, in, wd, out) // (W·Ω)ᵀ [l][out]
	qt, lq, err := orthonormalize(yt, l, out)
	if err != nil {
		return nil, 0, err
	}
	if o.PowerIters > 0 {
		wt := transpose(wd, out, in)
		for it := 0; it < o.PowerIters; it++ {
			zt := mulT(qt, lq, out, wt, in) // (Wᵀ·Q)ᵀ [lq][in]
			zt, lz, err := orthonormalize(zt, lq, in)
			if err != nil {
				return nil, 0, err
			}
			yt = mulT(zt, lz, in, wd, out) // (W·Z)ᵀ [lz][out]
			if qt, lq, err = orthonormalize(yt, lz, out); err != nil {
				return nil, 0, err
			}
		}
	}
	return qt, lq, nil
}
