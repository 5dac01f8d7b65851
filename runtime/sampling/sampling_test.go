package sampling

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	inf    = float32(math.Inf(1))
	negInf = float32(math.Inf(-1))
	nan    = float32(math.NaN())
)

func TestPhiloxKnownAnswers(t *testing.T) {
	// Random123 kat_vectors, philox4x32_10.
	tests := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0},
			[4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Philox4x32(tc.ctr, tc.key), "ctr %08x key %08x", tc.ctr, tc.key)
	}
}

func TestUniform(t *testing.T) {
	const seed = 0x0123456789abcdef
	// The documented definition, spelled out.
	for _, ti := range []uint64{0, 1, 2, 1 << 32, math.MaxUint64} {
		for _, stream := range []uint32{0, 1, 7} {
			out := Philox4x32([4]uint32{uint32(ti), uint32(ti >> 32), stream, 0},
				[2]uint32{0x89abcdef, 0x01234567})
			u := Uniform(seed, ti, stream)
			assert.Equal(t, float64(out[0]>>8)/16777216, float64(u), "ti %d stream %d", ti, stream)
			assert.Equal(t, u, Uniform(seed, ti, stream), "deterministic")
		}
	}
	// Counter 0, key 0 → word 0 = 0x6627e8d5 (KAT).
	assert.Equal(t, float32(0x6627e8)/16777216, Uniform(0, 0, 0))

	var sum float64
	seen := map[float32]bool{}
	const n = 100000
	for i := uint64(0); i < n; i++ {
		u := Uniform(seed, i, 0)
		require.GreaterOrEqual(t, u, float32(0))
		require.Less(t, u, float32(1))
		sum += float64(u)
		seen[u] = true
	}
	assert.InDelta(t, 0.5, sum/n, 0.005, "mean")
	// 24-bit values: about n²/2^25 ≈ 300 birthday collisions are expected.
	assert.Greater(t, len(seen), n-600, "draws for different token indices are distinct")
	assert.NotEqual(t, Uniform(seed, 5, 0), Uniform(seed, 5, 1), "streams differ")
	assert.NotEqual(t, Uniform(seed, 5, 0), Uniform(seed+1, 5, 0), "seeds differ")
	assert.NotEqual(t, Uniform(seed, 5, 0), Uniform(seed^(1<<40), 5, 0), "seed high word matters")
}

func TestGreedy(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"argmax", []float32{0.1, 3, -2, 2.9}, 1},
		{"tie lowest id", []float32{1, 5, 2, 5, 5}, 1},
		{"negative", []float32{-3, -1, -2}, 1},
		{"NaN ignored", []float32{nan, 1, nan, 2}, 3},
		{"+Inf wins", []float32{1, inf, 3, inf}, 1},
		{"-Inf ignored", []float32{negInf, -100, negInf}, 1},
		{"all -Inf", []float32{negInf, negInf, negInf}, 0},
		{"all NaN", []float32{nan, nan}, 0},
		{"signed zeros tie", []float32{-1, float32(math.Copysign(0, -1)), 0}, 1},
		{"single", []float32{7}, 0},
		{"empty", nil, 0},
	}
	var s Sampler
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			p.Temperature = 0
			assert.True(t, p.Greedy())
			assert.Equal(t, tc.want, s.Sample(tc.logits, &p, 3, nil))
			assert.Equal(t, tc.want, refSample(tc.logits, &p, 3, nil))
		})
	}
}

func TestNonFiniteSampling(t *testing.T) {
	var s Sampler
	p := DefaultParams()
	for ti := uint64(0); ti < 200; ti++ {
		p.Seed = ti
		assert.Equal(t, int32(0), s.Sample([]float32{negInf, nan, negInf}, &p, ti, nil), "all -Inf/NaN → 0")
		got := s.Sample([]float32{1, inf, 3, inf, nan}, &p, ti, nil)
		assert.Contains(t, []int32{1, 3}, got, "+Inf logits share all mass")
		got = s.Sample([]float32{nan, 0, negInf, 0}, &p, ti, nil)
		assert.Contains(t, []int32{1, 3}, got, "NaN/-Inf never drawn")
	}
}

func randLogits(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

func TestTopK1EqualsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s Sampler
	for iter := 0; iter < 300; iter++ {
		n := 1 + r.IntN(3000)
		x := randLogits(r, n, 3)
		if iter%3 == 0 { // quantize to create exact ties
			for i := range x {
				x[i] = float32(math.Round(float64(x[i])))
			}
		}
		if iter%5 == 0 { // tiny differences that large temperatures round away
			for i := range x {
				x[i] = 10 + float32(i%7)*1e-6
			}
		}
		g := DefaultParams()
		g.Temperature = 0
		want := s.Sample(x, &g, 0, nil)
		for _, T := range []float32{1e-4, 0.3, 1, 7, 1e4} {
			p := DefaultParams()
			p.Temperature, p.TopK, p.Seed = T, 1, uint64(iter)
			assert.Equal(t, want, s.Sample(x, &p, uint64(iter), nil), "iter %d T %v", iter, T)
		}
	}
}

func TestSeedDeterminism(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	x := randLogits(r, 1000, 0.5) // flat: many plausible tokens
	configs := map[string]Params{
		"plain": {Temperature: 1, TopP: 1, RepetitionPenalty: 1, Seed: 42},
		"top-p": {Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1, Seed: 42},
		"top-k": {Temperature: 0.8, TopK: 40, TopP: 1, RepetitionPenalty: 1, Seed: 42},
	}
	for name, p := range configs {
		t.Run(name, func(t *testing.T) {
			var s1, s2 Sampler
			distinct := map[int32]bool{}
			for ti := uint64(0); ti < 200; ti++ {
				a := s1.Sample(x, &p, ti, nil)
				for rep := 0; rep < 3; rep++ {
					require.Equal(t, a, s2.Sample(x, &p, ti, nil), "same seed and index → same token")
				}
				distinct[a] = true
			}
			assert.Greater(t, len(distinct), 20, "different token indices give different draws")
			q := p
			q.Seed++
			differ := 0
			for ti := uint64(0); ti < 200; ti++ {
				if s1.Sample(x, &p, ti, nil) != s1.Sample(x, &q, ti, nil) {
					differ++
				}
			}
			assert.Greater(t, differ, 100, "another seed gives other draws")
		})
	}
}

// chi2Crit999 are the 99.9% quantiles of the chi-square distribution, df 1…5.
var chi2Crit999 = []float64{10.828, 13.816, 16.266, 18.467, 20.515}

func TestEmpiricalDistribution(t *testing.T) {
	logits := []float32{1.0, 2.0, 0.5, -1.0, 2.5, 0.0}
	tests := []struct {
		name string
		p    Params
		kept []int // expected kept set in canonical order (nil: all)
	}{
		{"T=1", Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}, nil},
		{"T=0.7", Params{Temperature: 0.7, TopP: 1, RepetitionPenalty: 1}, nil},
		{"T=2", Params{Temperature: 2, TopP: 1, RepetitionPenalty: 1}, nil},
		{"top-k 3", Params{Temperature: 1, TopK: 3, TopP: 1, RepetitionPenalty: 1}, []int{4, 1, 0}},
		// T=1 probabilities, canonical order 4,1,0,2,5,3: .4538 .2753 .1013 .0614 .0373 .0137
		{"top-p 0.7", Params{Temperature: 1, TopP: 0.7, RepetitionPenalty: 1}, []int{4, 1}},
		{"top-p 0.8", Params{Temperature: 1, TopP: 0.8, RepetitionPenalty: 1}, []int{4, 1, 0}},
		{"top-p 0.45", Params{Temperature: 1, TopP: 0.45, RepetitionPenalty: 1}, []int{4}},
		{"top-k 4 top-p 0.8", Params{Temperature: 1, TopK: 4, TopP: 0.8, RepetitionPenalty: 1}, []int{4, 1, 0}},
		{"top-k 2 top-p 0.8", Params{Temperature: 1, TopK: 2, TopP: 0.8, RepetitionPenalty: 1}, []int{4, 1}},
		// min_p 0.2: keep p >= 0.2*0.4538 = 0.0908
		{"min-p 0.2", Params{Temperature: 1, TopP: 1, MinP: 0.2, RepetitionPenalty: 1}, []int{4, 1, 0}},
		{"min-p 0.1 top-p 0.95", Params{Temperature: 1, TopP: 0.95, MinP: 0.1, RepetitionPenalty: 1}, []int{4, 1, 0, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.Seed = 20240601
			require.NoError(t, p.Validate())
			// Expected distribution in float64: softmax(logits/T) restricted to the
			// kept set and renormalized.
			kept := tc.kept
			if kept == nil {
				kept = []int{0, 1, 2, 3, 4, 5}
			}
			var s Sampler
			got := s.keptSet(logits, &p, nil)
			if tc.kept != nil {
				assert.Equal(t, tc.kept, got, "kept set")
			} else {
				assert.ElementsMatch(t, kept, got, "kept set")
			}
			want := make([]float64, len(logits))
			var z float64
			for _, id := range kept {
				want[id] = math.Exp(float64(logits[id]) / float64(p.Temperature))
				z += want[id]
			}
			const draws = 20000
			counts := make([]int, len(logits))
			for ti := uint64(0); ti < draws; ti++ {
				counts[s.Sample(logits, &p, ti, nil)]++
			}
			var chi2 float64
			for id := range logits {
				if want[id] == 0 {
					assert.Zero(t, counts[id], "token %d is outside the kept set", id)
					continue
				}
				exp := draws * want[id] / z
				d := float64(counts[id]) - exp
				chi2 += d * d / exp
			}
			if df := len(kept) - 1; df > 0 {
				assert.Less(t, chi2, chi2Crit999[df-1], "chi-square (df %d), counts %v", df, counts)
			} else {
				assert.Equal(t, draws, counts[kept[0]])
			}
		})
	}
}

func TestKeptSetAndDrawMatchReference(t *testing.T) {
	run := func(t *testing.T, seed uint64, scales []float64) {
		r := rand.New(rand.NewPCG(seed, 99))
		var s Sampler
		for iter := 0; iter < 300; iter++ {
			n := []int{2, 6, 50, 1000, 10000}[iter%5]
			x := randLogits(r, n, scales[r.IntN(len(scales))])
			switch r.IntN(5) {
			case 0: // exact ties
				for i := range x {
					x[i] = float32(math.Round(float64(x[i])))
				}
			case 1: // masked tokens
				for i := range x {
					if r.IntN(4) == 0 {
						x[i] = []float32{negInf, nan}[r.IntN(2)]
					}
				}
			}
			p := Params{
				Temperature:       []float32{0.2, 0.8, 1, 1.5}[r.IntN(4)],
				TopP:              []float32{1, 1, 0.5, 0.9, 0.95, 0.999}[r.IntN(6)],
				TopK:              []int{0, 0, 1, 5, 40, n, n + 3}[r.IntN(7)],
				RepetitionPenalty: []float32{1, 1.3}[r.IntN(2)],
				Seed:              r.Uint64(),
			}
			if r.IntN(3) == 0 {
				p.MinP = []float32{0.01, 0.1, 0.5, 1}[r.IntN(4)]
			}
			if r.IntN(3) == 0 {
				p.PresencePenalty, p.FrequencyPenalty = 0.4, 0.2
			}
			var hist []int32
			for i := r.IntN(30); i > 0; i-- {
				hist = append(hist, int32(r.IntN(n+2)-1))
			}
			require.NoError(t, p.Validate())
			xp := refPenalize(x, &p, hist)
			wantIDs, wantW := refKept(xp, &p)
			allMasked := slices.IndexFunc(xp, func(v float32) bool { return v > negInf }) < 0
			if allMasked {
				wantIDs = []int{0}
			}
			got := s.keptSet(x, &p, hist)
			// Unfiltered, both walk ascending ids; otherwise canonical order.
			require.Equal(t, wantIDs, got, "iter %d params %+v", iter, p)
			for ti := uint64(0); ti < 20; ti++ {
				want := int32(0)
				if !allMasked {
					want = int32(refDraw(wantIDs, wantW, Uniform(p.Seed, ti, 0)))
				}
				require.Equal(t, want, s.Sample(x, &p, ti, hist), "iter %d ti %d params %+v", iter, ti, p)
			}
		}
	}
	t.Run("pruned", func(t *testing.T) { run(t, 7, []float64{0.3, 2, 8}) })
	// Nearly flat logits: top-p keeps most of the vocabulary, and many weights share
	// an exponent bucket of the pre-filter.
	t.Run("flat", func(t *testing.T) { run(t, 8, []float64{1e-3, 0.02}) })
}

func TestPenalties(t *testing.T) {
	logits := []float32{2, -2, 0.5, 1, 3, 0}
	tests := []struct {
		name string
		p    Params
		hist []int32
		want []float32
	}{
		{"none", Params{RepetitionPenalty: 1}, []int32{0, 1, 4}, logits},
		{"no history", Params{RepetitionPenalty: 2, PresencePenalty: 1, FrequencyPenalty: 1}, nil, logits},
		{"repetition once per distinct token", Params{RepetitionPenalty: 2}, []int32{0, 0, 0, 1, 1, 5},
			[]float32{1, -4, 0.5, 1, 3, 0}},
		{"repetition < 1 boosts", Params{RepetitionPenalty: 0.5}, []int32{0, 1},
			[]float32{4, -1, 0.5, 1, 3, 0}},
		{"presence once", Params{RepetitionPenalty: 1, PresencePenalty: 0.5}, []int32{4, 4, 4, 2},
			[]float32{2, -2, 0, 1, 2.5, 0}},
		{"frequency times count", Params{RepetitionPenalty: 1, FrequencyPenalty: 0.25}, []int32{4, 4, 4, 2},
			[]float32{2, -2, 0.25, 1, 2.25, 0}},
		{"all three, in order", Params{RepetitionPenalty: 2, PresencePenalty: 0.5, FrequencyPenalty: 0.25},
			[]int32{0, 0, 1, 4, 4, 4, 99, -1, 6},
			// 0: 2/2=1, -0.5, -0.5 → 0; 1: -2*2=-4, -0.5, -0.25 → -4.75; 4: 3/2=1.5, -0.5, -0.75 → 0.25
			[]float32{0, -4.75, 0.5, 1, 0.25, 0}},
		{"negative penalties", Params{RepetitionPenalty: 1, PresencePenalty: -1, FrequencyPenalty: -0.5}, []int32{3, 3},
			[]float32{2, -2, 0.5, 3, 3, 0}},
		{"zero logit: 0*r = 0", Params{RepetitionPenalty: 3, PresencePenalty: 1, FrequencyPenalty: 1}, []int32{5},
			[]float32{2, -2, 0.5, 1, 3, -2}},
	}
	var s Sampler
	s.Reserve(len(logits))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(logits)
			for rep := 0; rep < 2; rep++ { // counts scratch is reset between calls
				got := s.prepare(in, &tc.p, tc.hist)
				assert.Equal(t, tc.want, got)
			}
			assert.Equal(t, logits, in, "input not modified")
			assert.Equal(t, tc.want, refPenalize(logits, &tc.p, tc.hist))
		})
	}
	// Masked tokens stay masked whatever the penalties.
	x := []float32{negInf, 1}
	p := Params{RepetitionPenalty: 2, PresencePenalty: 1, FrequencyPenalty: -5}
	assert.Equal(t, []float32{negInf, 1}, s.prepare(x, &p, []int32{0, 0}))

	// Through Sample: greedy picks the next best once the best token is penalized.
	p = Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1, PresencePenalty: 1.5}
	assert.Equal(t, int32(0), s.Sample(logits, &p, 0, []int32{4}))
	p.PresencePenalty = 0.5
	assert.Equal(t, int32(4), s.Sample(logits, &p, 0, []int32{4}))
}

func TestValidate(t *testing.T) {
	ok := DefaultParams()
	require.NoError(t, ok.Validate())
	assert.False(t, ok.Greedy())
	tests := []struct {
		name string
		mod  func(*Params)
		want string // substring of the error; "" means valid
	}{
		{"greedy", func(p *Params) { p.Temperature = 0 }, ""},
		{"full", func(p *Params) {
			*p = Params{Temperature: 0.7, TopK: 40, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1.1,
				PresencePenalty: -2, FrequencyPenalty: 2, Seed: 1}
		}, ""},
		{"top_p 1", func(p *Params) { p.TopP = 1 }, ""},
		{"min_p 1", func(p *Params) { p.MinP = 1 }, ""},
		{"negative temperature", func(p *Params) { p.Temperature = -0.1 }, "temperature must be >= 0"},
		{"NaN temperature", func(p *Params) { p.Temperature = nan }, "temperature is NaN"},
		{"Inf temperature", func(p *Params) { p.Temperature = inf }, "temperature must be finite"},
		{"top_p 0", func(p *Params) { p.TopP = 0 }, "top_p must be in (0, 1]"},
		{"top_p > 1", func(p *Params) { p.TopP = 1.01 }, "top_p must be in (0, 1]"},
		{"top_p negative", func(p *Params) { p.TopP = -0.5 }, "top_p must be in (0, 1]"},
		{"top_p NaN", func(p *Params) { p.TopP = nan }, "top_p is NaN"},
		{"top_k negative", func(p *Params) { p.TopK = -1 }, "top_k must be >= 0"},
		{"min_p > 1", func(p *Params) { p.MinP = 2 }, "min_p must be in [0, 1]"},
		{"min_p NaN", func(p *Params) { p.MinP = nan }, "min_p is NaN"},
		{"repetition 0", func(p *Params) { p.RepetitionPenalty = 0 }, "repetition_penalty must be > 0"},
		{"repetition negative", func(p *Params) { p.RepetitionPenalty = -1 }, "repetition_penalty must be > 0"},
		{"repetition NaN", func(p *Params) { p.RepetitionPenalty = nan }, "repetition_penalty is NaN"},
		{"presence NaN", func(p *Params) { p.PresencePenalty = nan }, "presence_penalty is NaN"},
		{"frequency NaN", func(p *Params) { p.FrequencyPenalty = nan }, "frequency_penalty is NaN"},
		{"frequency Inf", func(p *Params) { p.FrequencyPenalty = negInf }, "frequency_penalty must be finite"},
		{"zero value", func(p *Params) { *p = Params{} }, "top_p must be in (0, 1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			tc.mod(&p)
			err := p.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "sampling: ")
		})
	}
	// Every problem is reported.
	p := Params{Temperature: -1, TopK: -1, TopP: 2, RepetitionPenalty: 0}
	msg := p.Validate().Error()
	for _, s := range []string{"temperature", "top_k", "top_p", "repetition_penalty"} {
		assert.Contains(t, msg, s)
	}
}

func TestSampleNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	x := randLogits(r, 32000, 2)
	hist := []int32{1, 2, 3, 3, 31999, 5000}
	modes := map[string]Params{
		"greedy":       {Temperature: 0, TopP: 1, RepetitionPenalty: 1.1},
		"plain":        {Temperature: 1, TopP: 1, RepetitionPenalty: 1},
		"top-p":        {Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1.1, PresencePenalty: 0.2},
		"top-k":        {Temperature: 0.8, TopK: 40, TopP: 1, RepetitionPenalty: 1, FrequencyPenalty: 0.1},
		"top-k top-p":  {Temperature: 0.8, TopK: 40, TopP: 0.9, RepetitionPenalty: 1},
		"min-p":        {Temperature: 1, TopP: 1, MinP: 0.05, RepetitionPenalty: 1},
		"top-p forced": {Temperature: 0.8, TopP: 0.999, RepetitionPenalty: 1},
	}
	for name, p := range modes {
		t.Run(name, func(t *testing.T) {
			var s Sampler
			s.Sample(x, &p, 0, hist) // warm-up
			ti := uint64(0)
			allocs := testing.AllocsPerRun(20, func() {
				ti++
				s.Sample(x, &p, ti, hist)
			})
			assert.Zero(t, allocs)
		})
	}
	t.Run("TopLogprobs", func(t *testing.T) {
		dst := make([]TokenLogprob, 0, 20)
		assert.Zero(t, testing.AllocsPerRun(10, func() { dst = TopLogprobs(x, 20, dst) }))
	})
}

func TestLogSoftmax(t *testing.T) {
	tests := []struct {
		name   string
		logits []float32
	}{
		{"small", []float32{1, 2, 3, -1}},
		{"large offset", []float32{1000, 1001, 999}},
		{"with masked", []float32{0.5, negInf, nan, 2}},
		{"single", []float32{-7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, len(tc.logits))
			LogSoftmax(dst, tc.logits)
			// float64 reference
			m := math.Inf(-1)
			for _, v := range tc.logits {
				if !math.IsNaN(float64(v)) {
					m = math.Max(m, float64(v))
				}
			}
			var z float64
			for _, v := range tc.logits {
				if !math.IsNaN(float64(v)) {
					z += math.Exp(float64(v) - m)
				}
			}
			var psum float64
			for i, v := range tc.logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), -1) {
					assert.Equal(t, negInf, dst[i])
					continue
				}
				assert.InDelta(t, float64(v)-m-math.Log(z), float64(dst[i]), 1e-5)
				psum += math.Exp(float64(dst[i]))
			}
			assert.InDelta(t, 1, psum, 1e-5)
		})
	}
	dst := []float32{9, 9, 9}
	LogSoftmax(dst, []float32{negInf, nan, negInf})
	assert.Equal(t, []float32{negInf, negInf, negInf}, dst, "nothing possible")
	LogSoftmax(dst, []float32{inf, 1, inf})
	assert.Equal(t, []float32{float32(-math.Ln2), negInf, float32(-math.Ln2)}, dst, "+Inf share the mass")
	x := []float32{1, 2, 3}
	LogSoftmax(x, x) // in place
	assert.InDelta(t, -0.40760596, float64(x[2]), 1e-6)
	assert.Panics(t, func() { LogSoftmax(make([]float32, 2), []float32{1, 2, 3}) })
}

func TestTopLogprobs(t *testing.T) {
	logits := []float32{1, 3, nan, 3, -1, 2, negInf}
	full := make([]float32, len(logits))
	LogSoftmax(full, logits)
	tests := []struct {
		k    int
		want []int32
	}{
		{0, nil},
		{-1, nil},
		{1, []int32{1}},
		{2, []int32{1, 3}},
		{3, []int32{1, 3, 5}},
		{5, []int32{1, 3, 5, 0, 4}},
		{7, []int32{1, 3, 5, 0, 4, 2, 6}}, // NaN counts as -Inf; ties by id
		{100, []int32{1, 3, 5, 0, 4, 2, 6}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("k=", tc.k), func(t *testing.T) {
			got := TopLogprobs(logits, tc.k, nil)
			require.Len(t, got, len(tc.want))
			for j, tl := range got {
				assert.Equal(t, tc.want[j], tl.Token)
				assert.Equal(t, full[tl.Token], tl.Logprob, "same value as LogSoftmax")
			}
		})
	}
	// Against a full sort on a large random vector.
	r := rand.New(rand.NewPCG(11, 12))
	x := randLogits(r, 50000, 3)
	for i := 0; i < 2000; i++ { // ties
		x[r.IntN(len(x))] = x[r.IntN(len(x))]
	}
	ids := make([]int32, len(x))
	for i := range ids {
		ids[i] = int32(i)
	}
	slices.SortStableFunc(ids, func(a, b int32) int {
		switch {
		case x[a] > x[b]:
			return -1
		case x[a] < x[b]:
			return 1
		}
		return 0
	})
	got := TopLogprobs(x, 64, make([]TokenLogprob, 0, 64))
	for j, tl := range got {
		assert.Equal(t, ids[j], tl.Token, "rank %d", j)
	}
}

func BenchmarkSample(b *testing.B) {
	modes := []struct {
		name string
		p    Params
	}{
		{"greedy", Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}},
		{"top-p0.9_T0.8", Params{Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1}},
		{"top-k40_T0.8", Params{Temperature: 0.8, TopK: 40, TopP: 1, RepetitionPenalty: 1}},
	}
	for _, vocab := range []int{32000, 128256} {
		for _, dist := range []string{"flat", "peaked"} {
			r := rand.New(rand.NewPCG(uint64(vocab), 1))
			x := randLogits(r, vocab, 2)
			if dist == "peaked" { // a confident model: a handful of tokens far above the rest
				for i := 0; i < 8; i++ {
					x[r.IntN(vocab)] += float32(12 - i)
				}
			}
			hist := make([]int32, 256)
			for i := range hist {
				hist[i] = int32(r.IntN(vocab))
			}
			for _, m := range modes {
				b.Run(fmt.Sprintf("V=%d/%s/%s", vocab, dist, m.name), func(b *testing.B) {
					var s Sampler
					p := m.p
					p.RepetitionPenalty = 1.1
					s.Sample(x, &p, 0, hist)
					b.ReportAllocs()
					ti := uint64(0)
					for b.Loop() {
						ti++
						s.Sample(x, &p, ti, hist)
					}
				})
			}
		}
	}
}

// The exact integer arithmetic of steps 4-6 against big.Rat.
func TestMassArithmetic(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	floorRat := func(q *big.Rat) uint64 { return new(big.Int).Quo(q.Num(), q.Denom()).Uint64() }
	ceilRat := func(q *big.Rat) uint64 {
		f := new(big.Int).Quo(q.Num(), q.Denom())
		if new(big.Rat).SetInt(f).Cmp(q) != 0 {
			f.Add(f, big.NewInt(1))
		}
		return f.Uint64()
	}
	rat := func(v float32) *big.Rat { return new(big.Rat).SetFloat64(float64(v)) }
	u64 := func(v uint64) *big.Rat { return new(big.Rat).SetInt(new(big.Int).SetUint64(v)) }
	es := []float32{0, 1, 0.5, math.SmallestNonzeroFloat32, 0x1p-40, 0x1.fffffep-41, 0x1p-39 * 1.5, 0.1, 0.99999994}
	for i := 0; i < 2000; i++ {
		es = append(es, r.Float32(), float32(math.Exp(-50*r.Float64())))
	}
	for _, e := range es {
		want := floorRat(new(big.Rat).Mul(rat(e), u64(1<<40)))
		require.Equal(t, want, Mass(e), "Mass(%g)", e)
	}
	ps := []float32{0.5, 0.9, 0.95, 0.99999994, 1e-30, math.SmallestNonzeroFloat32, 0x1p-126, 0.1}
	zs := []uint64{1 << 40, 1<<63 - 1, 3, 1<<40 + 12345, 128256 << 40}
	for i := 0; i < 2000; i++ {
		ps = append(ps, r.Float32())
		zs = append(zs, r.Uint64()>>1)
	}
	for i, p := range ps {
		if !(p > 0 && p < 1) {
			continue
		}
		z := zs[i%len(zs)]
		want := ceilRat(new(big.Rat).Mul(rat(p), u64(z)))
		require.Equal(t, want, TopPThreshold(p, z), "TopPThreshold(%g, %d)", p, z)
	}
	for i := 0; i < 5000; i++ {
		rb := r.Uint32() >> 8
		total := r.Uint64() >> 1
		if i%7 == 0 {
			rb = 1<<24 - 1
		}
		want := floorRat(new(big.Rat).Mul(new(big.Rat).SetFrac64(int64(rb), 1<<24), u64(total)))
		require.Equal(t, want, DrawTarget(rb, total), "DrawTarget(%d, %d)", rb, total)
	}
	assert.Equal(t, float32(UniformBits(5, 6, 0))/(1<<24), Uniform(5, 6, 0))
}

// A token whose weight is below 2^-40 has mass 0 and is never drawn, whatever u.
func TestZeroMassNeverDrawn(t *testing.T) {
	x := []float32{0, -40, -20, -40, 0} // e^-40 < 2^-40 < e^-20
	p := Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
	var s Sampler
	seen := map[int32]int{}
	for ti := uint64(0); ti < 20000; ti++ {
		seen[s.Sample(x, &p, ti, nil)]++
	}
	assert.Zero(t, seen[1]+seen[3], "zero-mass tokens drawn: %v", seen)
	assert.Greater(t, seen[0], 9000)
	assert.Greater(t, seen[4], 9000)
}
