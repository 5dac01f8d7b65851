package sampling

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// gammaQ is the regularized upper incomplete gamma function Q(a, x): a series below
// x = a+1, a continued fraction (modified Lentz) above.
func gammaQ(a, x float64) float64 {
	if x <= 0 {
		return 1
	}
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 10000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return 1 - sum*math.Exp(-x+a*math.Log(x)-lg)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c, d := 1/tiny, 1/b
	h := d
	for i := 1; i < 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return math.Exp(-x+a*math.Log(x)-lg) * h
}

// chiSquareP is the p-value of a chi-square statistic with df degrees of freedom.
func chiSquareP(chi2 float64, df int) float64 { return gammaQ(float64(df)/2, chi2/2) }

func TestChiSquarePValue(t *testing.T) {
	// Reference values (scipy.stats.chi2.sf).
	for _, c := range []struct {
		chi2 float64
		df   int
		p    float64
	}{
		{3.841458820694124, 1, 0.05},
		{30.57791416689249, 15, 0.01},
		{37.69764841, 15, 0.001},
		{10, 15, 0.8197399934},
		{293.2478, 255, 0.05},
		{100, 10, 5.4497019829205295e-17}, // closed form for even df: e^-50 Σ_{k<5} 50^k/k!
	} {
		got := chiSquareP(c.chi2, c.df)
		require.InEpsilon(t, c.p, got, 1e-3, "chi2 %g df %d", c.chi2, c.df)
	}
}

// TestProbsIsWhatSampleDraws: Probs is the distribution Sample draws from, under
// filters and penalties, checked by a chi-square goodness-of-fit test.
func TestProbsIsWhatSampleDraws(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	logits := randLogits(rng, 16, 2)
	hist := []int32{3, 5, 3}
	var s Sampler
	for _, p := range []Params{
		{Temperature: 0.8, TopP: 1, RepetitionPenalty: 1.3},
		{Temperature: 1.1, TopK: 9, TopP: 0.9, MinP: 0.02, RepetitionPenalty: 1, PresencePenalty: 0.5},
		{Temperature: 0, TopP: 1, RepetitionPenalty: 1.2},
	} {
		P := s.Probs(nil, logits, &p, hist)
		var sum float64
		for _, v := range P {
			sum += float64(v)
		}
		require.InDelta(t, 1, sum, 1e-5)
		const n = 50000
		counts := make([]float64, len(logits))
		for i := uint64(0); i < n; i++ {
			counts[s.Sample(logits, &p, i, hist)]++
		}
		var chi2 float64
		df := -1
		for id, v := range P {
			if v == 0 {
				require.Zero(t, counts[id], "token %d has probability 0 but was drawn", id)
				continue
			}
			e := n * float64(v)
			chi2 += (counts[id] - e) * (counts[id] - e) / e
			df++
		}
		if df == 0 {
			continue
		}
		require.Greater(t, chiSquareP(chi2, df), 1e-3, "params %+v: chi2 %.1f df %d", p, chi2, df)
	}
}

// markov is a toy language model over a 16-token vocabulary: the next token's logits
// depend on the previous token only. The draft model is the target plus noise, so its
// proposals are often, not always, right.
type markov [16][]float32

func newMarkov(rng *rand.Rand, scale float64) markov {
	var m markov
	for i := range m {
		m[i] = randLogits(rng, 16, scale)
	}
	return m
}

func (m markov) noisy(rng *rand.Rand, noise float64) markov {
	var d markov
	for i := range m {
		d[i] = make([]float32, 16)
		for j, v := range m[i] {
			d[i][j] = v + float32(rng.NormFloat64()*noise)
		}
	}
	return d
}

// genPlain draws n tokens after hist as decoding without speculation does.
func genPlain(s *Sampler, target markov, p *Params, hist []int32, n int) []int32 {
	h := append([]int32(nil), hist...)
	for i := 0; i < n; i++ {
		h = append(h, s.Sample(target[h[len(h)-1]], p, uint64(i), h))
	}
	return h[len(hist):]
}

// genSpec draws n tokens after hist by rounds of speculative decoding with k drafted
// tokens: the draft model proposes k tokens (DraftSample), the target verifies them in
// order (Verify), stopping at the first rejection, and adds a bonus token when all are
// accepted — the engine's loop, on the toy model. With greedyDraft the draft is its
// argmax (a deterministic proposal, q = nil).
func genSpec(s *Sampler, target, draft markov, p *Params, hist []int32, n, k int, qs [][]float32, greedyDraft bool) []int32 {
	h := append([]int32(nil), hist...)
	dp := *p
	if greedyDraft {
		dp.Temperature = 0
	}
	for len(h)-len(hist) < n {
		made := len(h) - len(hist)
		dh := append([]int32(nil), h...) // the draft's own context: h plus its proposals
		for j := 0; j < k; j++ {
			var d int32
			d, qs[j] = s.DraftSample(qs[j][:0], draft[dh[len(dh)-1]], &dp, uint64(made+j), dh)
			if greedyDraft {
				qs[j] = nil
			}
			dh = append(dh, d)
		}
		drafts := dh[len(h):]
		all := true
		for j := 0; j < k && len(h)-len(hist) < n; j++ {
			d := drafts[j]
			tok, ok := s.Verify(target[h[len(h)-1]], p, uint64(len(h)-len(hist)), h, d, qs[j])
			h = append(h, tok)
			if !ok {
				all = false
				break
			}
		}
		if all && len(h)-len(hist) < n {
			h = append(h, s.Sample(target[h[len(h)-1]], p, uint64(len(h)-len(hist)), h))
		}
	}
	return h[len(hist) : len(hist)+n]
}

// speculationChi2 compares the joint distribution of the first two generated tokens
// (256 cells) with and without speculation, each from `samples` independent seeds,
// by a two-sample chi-square test, and returns its p-value.
func speculationChi2(t *testing.T, samples int, k int, greedyDraft bool) float64 {
	rng := rand.New(rand.NewPCG(20260101, 7))
	target := newMarkov(rng, 1.5)
	draft := target.noisy(rng, 1.5)
	p := Params{Temperature: 0.9, TopK: 12, TopP: 0.97, RepetitionPenalty: 1.3}
	hist := []int32{3, 5}
	var s Sampler
	qs := make([][]float32, k)
	var plain, spec [256]float64
	for i := 0; i < samples; i++ {
		p.Seed = uint64(i)
		a := genPlain(&s, target, &p, hist, 2)
		plain[a[0]*16+a[1]]++
		p.Seed = uint64(i) + 1<<40
		b := genSpec(&s, target, draft, &p, hist, 2, k, qs, greedyDraft)
		spec[b[0]*16+b[1]]++
	}
	var chi2 float64
	df := -1
	for c := range plain {
		if n := plain[c] + spec[c]; n > 0 {
			d := plain[c] - spec[c]
			chi2 += d * d / n
			df++
		}
	}
	pv := chiSquareP(chi2, df)
	t.Logf("k %d greedy draft %v broken %v: chi2 %.1f, df %d, p = %.3g", k, greedyDraft, verifyBroken, chi2, df, pv)
	return pv
}

// TestSpeculativeSamplingDistribution: draws with speculative decoding (rejection
// sampling against a noisy draft model) are indistinguishable from draws without, and
// a broken acceptance rule is caught by the same test.
func TestSpeculativeSamplingDistribution(t *testing.T) {
	samples := 200000
	if testing.Short() {
		samples = 50000
	}
	require.Greater(t, speculationChi2(t, samples, 3, false), 1e-3, "sampled draft, k=3")
	require.Greater(t, speculationChi2(t, samples/8, 1, false), 1e-3, "sampled draft, k=1")
	require.Greater(t, speculationChi2(t, samples/8, 2, true), 1e-3, "greedy draft, k=2")
	verifyBroken = true
	defer func() { verifyBroken = false }()
	// A quarter of the samples already puts the broken rule beyond any doubt.
	require.Less(t, speculationChi2(t, samples/4, 3, false), 1e-6, "a residual drawn from the target instead of max(0, P-q) must be detected")
}

// TestVerifyDeterministicIsSample: for a deterministic proposal (and for any greedy
// request) Verify returns exactly Sample's token, so speculation changes no token of a
// seeded or greedy request.
func TestVerifyDeterministicIsSample(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	var s Sampler
	q := make([]float32, 32)
	for i := range q {
		q[i] = 1.0 / 32
	}
	for i := 0; i < 2000; i++ {
		logits := randLogits(rng, 32, 3)
		p := Params{Temperature: float32(rng.IntN(3)) * 0.6, TopK: rng.IntN(5), TopP: 1, RepetitionPenalty: 1.1, Seed: rng.Uint64()}
		hist := []int32{int32(rng.IntN(32)), int32(rng.IntN(32))}
		want := s.Sample(logits, &p, uint64(i), hist)
		draft := int32(rng.IntN(32))
		if i%3 == 0 {
			draft = want
		}
		var qq []float32
		if p.Temperature == 0 {
			qq = q // a sampled draft's q is ignored by a greedy target
		}
		tok, ok := s.Verify(logits, &p, uint64(i), hist, draft, qq)
		require.Equal(t, want, tok)
		require.Equal(t, draft == want, ok)
	}
}

func TestVerifyNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := randLogits(rng, 512, 2)
	p := Params{Temperature: 0.8, TopP: 0.95, RepetitionPenalty: 1, Seed: 3}
	var s Sampler
	q := s.Probs(nil, randLogits(rng, 512, 2), &p, nil)
	s.Verify(logits, &p, 0, nil, 7, q)
	allocs := testing.AllocsPerRun(100, func() { s.Verify(logits, &p, 1, nil, 7, q) })
	require.Zero(t, allocs)
}
