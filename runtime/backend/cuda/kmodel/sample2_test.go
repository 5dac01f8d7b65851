package kmodel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// sampleRows draws rows the sampler finds hard: exact ties (16-bit logits are full of
// them), nearly flat rows where top-p keeps most of the vocabulary, masked tokens, +Inf,
// all -Inf, and every filter and penalty combination.
func sampleRow(r *rand.Rand, V int) ([]float32, sampling.Params, []int32) {
	x := make([]float32, V)
	scale := []float64{1e-3, 0.05, 1, 3, 10}[r.IntN(5)]
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	switch r.IntN(7) {
	case 0: // 16-bit-like: few distinct values, many exact ties
		for i := range x {
			x[i] = float32(math.Round(float64(x[i])*8) / 8)
		}
	case 1:
		for i := range x {
			if r.IntN(5) == 0 {
				x[i] = []float32{float32(math.Inf(-1)), float32(math.NaN())}[r.IntN(2)]
			}
		}
	case 2:
		x[r.IntN(V)] = float32(math.Inf(1))
		if r.IntN(2) == 0 {
			x[r.IntN(V)] = float32(math.Inf(1))
		}
	case 3:
		if r.IntN(4) == 0 {
			for i := range x {
				x[i] = float32(math.Inf(-1))
			}
		}
	case 4: // all equal
		for i := range x {
			x[i] = 0.25
		}
	}
	p := sampling.Params{
		Temperature:       []float32{0, 0.3, 0.8, 1, 1.7, 100}[r.IntN(6)],
		TopP:              []float32{1, 1, 0.5, 0.9, 0.95, 0.999, 1e-6}[r.IntN(7)],
		TopK:              []int{0, 0, 0, 1, 2, 40, V - 1, V, V + 5}[r.IntN(9)],
		RepetitionPenalty: []float32{1, 1, 1.3}[r.IntN(3)],
		Seed:              r.Uint64(),
	}
	if r.IntN(3) == 0 {
		p.MinP = []float32{0.01, 0.1, 0.5, 1}[r.IntN(4)]
	}
	if r.IntN(4) == 0 {
		p.PresencePenalty, p.FrequencyPenalty = 0.4, -0.2
	}
	var hist []int32
	for i := r.IntN(40); i > 0; i-- {
		hist = append(hist, int32(r.IntN(V+4)-2))
	}
	return x, p, hist
}

func TestSample2MatchesSampler(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var ref sampling.Sampler
	cfgs := []Sample2Config{{Threads: 64, Chunk: 256}, {Threads: 256, Chunk: 1024}, {Threads: 128, Chunk: 512}}
	iters := 600
	if testing.Short() {
		iters = 150
	}
	for iter := 0; iter < iters; iter++ {
		V := []int{1, 2, 7, 255, 256, 257, 1000, 3001, 5000}[iter%9]
		x, p, hist := sampleRow(r, V)
		require.NoError(t, p.Validate())
		cfg := cfgs[iter%len(cfgs)]
		m := &Sample2{Cfg: cfg, Vocab: V, ElemBytes: []int{4, 2}[iter%2], Aligned: iter%3 != 0}
		for ti := uint64(0); ti < 4; ti++ {
			want := ref.Sample(x, &p, ti, hist)
			got := m.Row(0, x, &p, ti, hist)
			require.Equal(t, want, got, "iter %d V %d cfg %+v ti %d params %+v", iter, V, cfg, ti, p)
		}
	}
}

// A large vocabulary (Llama 3's) with the sampler's default configuration.
func TestSample2LargeVocab(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var ref sampling.Sampler
	const V = 128256
	for iter := 0; iter < 12; iter++ {
		x, p, hist := sampleRow(r, V)
		if p.Temperature == 0 {
			p.Temperature = 1
		}
		cfg := Sample2Choose(1+iter%3*31, V, 132)
		require.NoError(t, cfg.Validate())
		m := &Sample2{Cfg: cfg, Vocab: V, ElemBytes: 2, Aligned: true}
		for ti := uint64(0); ti < 3; ti++ {
			require.Equal(t, ref.Sample(x, &p, ti, hist), m.Row(0, x, &p, ti, hist), "iter %d cfg %+v params %+v", iter, cfg, p)
		}
	}
}

// Every pass reads every element of the row exactly once (K0 the history ids, F one
// chunk), by the thread the mapping names, through the vector path except where a
// vector straddles the row's end or the row is not aligned.
func TestSample2Coverage(t *testing.T) {
	for _, tc := range []struct {
		V, threads, chunk, elem int
		aligned                 bool
	}{
		{1, 64, 256, 4, true}, {255, 64, 256, 2, true}, {256, 64, 256, 2, true}, {257, 64, 256, 4, true},
		{1001, 128, 512, 2, true}, {1003, 128, 512, 2, false}, {4097, 256, 1024, 4, false}, {128256, 256, 4096, 2, true},
	} {
		t.Run(fmt.Sprintf("V=%d,T=%d,C=%d,elem=%d,aligned=%v", tc.V, tc.threads, tc.chunk, tc.elem, tc.aligned), func(t *testing.T) {
			type key struct {
				pass string
				i    int
			}
			seen := map[key]int{}
			paths := map[Sample2Path]int{}
			m := &Sample2{Cfg: Sample2Config{Threads: tc.threads, Chunk: tc.chunk}, Vocab: tc.V, ElemBytes: tc.elem, Aligned: tc.aligned}
			m.Visit = func(pass string, row, block, thread, i int, path Sample2Path) {
				if i < 0 || i >= tc.V || i/tc.chunk != block || thread >= tc.threads {
					t.Fatalf("pass %s: element %d read by block %d thread %d", pass, i, block, thread)
				}
				if pass != "F" && pass != "K0" {
					vec := 4
					if pass == "K1" {
						vec = 16 / tc.elem
					}
					if want := (i % tc.chunk / vec) % tc.threads; thread != want {
						t.Fatalf("pass %s: element %d read by thread %d, want %d", pass, i, thread, want)
					}
					straddles := (i/vec+1)*vec > tc.V
					wantVec := (pass != "K1" || tc.aligned) && !straddles
					if wantVec != (path == PathVector) {
						t.Fatalf("pass %s: element %d through path %d", pass, i, path)
					}
				}
				seen[key{pass, i}]++
				if pass == "K1" {
					paths[path]++
				}
			}
			x := make([]float32, tc.V)
			r := rand.New(rand.NewPCG(uint64(tc.V), 1))
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			x[tc.V/2] = x[0] // a tie, so that the id select runs when drawn
			p := sampling.Params{Temperature: 1, TopP: 0.9, TopK: max(1, tc.V/2), RepetitionPenalty: 1}
			m.Row(0, x, &p, 0, nil)
			for _, pass := range []string{"K1", "K2", "S0", "S1", "S2", "S3", "S4", "S5"} {
				for i := 0; i < tc.V; i++ {
					if tc.V > 1 || pass < "S" {
						require.Equal(t, 1, seen[key{pass, i}], "pass %s element %d", pass, i)
					}
				}
			}
			if tc.aligned && tc.V >= 16/tc.elem {
				require.Greater(t, paths[PathVector], 0)
			} else {
				require.Zero(t, paths[PathVector])
			}
		})
	}
}

// The broken variant (a digit one bucket late) is caught: it draws other tokens.
func TestSample2FaultCaught(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	var ref sampling.Sampler
	diff := 0
	for iter := 0; iter < 50; iter++ {
		V := 3001
		x := make([]float32, V)
		for i := range x {
			x[i] = float32(r.NormFloat64() * 2)
		}
		p := sampling.Params{Temperature: 1, TopP: 0.9, RepetitionPenalty: 1, Seed: uint64(iter)}
		m := &Sample2{Cfg: Sample2Config{Threads: 128, Chunk: 512, Fault: Sample2FaultDigit}, Vocab: V, ElemBytes: 4, Aligned: true}
		func() {
			defer func() {
				if recover() != nil {
					diff++
				}
			}()
			if m.Row(0, x, &p, 0, nil) != ref.Sample(x, &p, 0, nil) {
				diff++
			}
		}()
	}
	require.Greater(t, diff, 25, "the broken sampler agreed with the reference on %d of 50 rows", 50-diff)
}
