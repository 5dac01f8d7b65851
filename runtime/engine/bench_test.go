package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func benchModel(b *testing.B, shape string) *llm.Loaded {
	m, err := llm.Open(shape, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsInt8})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func prompt(n, salt int, vocab int) []int32 {
	p := make([]int32, n)
	p[0] = 1
	for i := 1; i < n; i++ {
		p[i] = int32(3 + (i*31+salt*17)%(vocab-3))
	}
	return p
}

// timing is one request's client-side view.
type timing struct {
	submit, first, last time.Time
	gaps                []time.Duration
	tokens              int
}

func drive(b *testing.B, e *Engine, reqs []*Request, at []time.Duration) []timing {
	out := make([]timing, len(reqs))
	var wg sync.WaitGroup
	start := time.Now()
	for i, r := range reqs {
		t := &out[i]
		t.submit = start
		if at != nil {
			t.submit = start.Add(at[i]) // open loop: the arrival time, whatever happens
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(t.submit))
			events, err := e.Submit(context.Background(), r)
			if err != nil {
				b.Error(err)
				return
			}
			for ev := range events {
				if ev.Err != nil {
					b.Error(ev.Err)
				}
				if !ev.HasToken {
					continue
				}
				now := time.Now()
				if t.tokens == 0 {
					t.first = now
				} else {
					t.gaps = append(t.gaps, now.Sub(t.last))
				}
				t.last = now
				t.tokens++
			}
		}()
	}
	wg.Wait()
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// BenchmarkConcurrency: aggregate decode throughput on the TinyLlama-1.1B shape (int8)
// with 1, 8 and 32 requests in flight (64-token prompts, 16 generated each).
func BenchmarkConcurrency(b *testing.B) {
	m := benchModel(b, "synthetic:tinyllama-1.1b")
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	for _, conc := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			e, err := New(m.Model, m.Tokenizer, Options{MaxNumSeqs: 64})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			var reqs []*Request
			for i := 0; i < conc; i++ {
				reqs = append(reqs, &Request{Prompt: prompt(64, i, m.Config.VocabSize), MaxTokens: 16, IgnoreEOS: true, Sampling: greedy})
			}
			b.ResetTimer()
			var decodeTime time.Duration
			tokens := 0
			for i := 0; i < b.N; i++ {
				ts := drive(b, e, reqs, nil)
				// Decode throughput: tokens after each request's first, over the
				// span from the last first-token to the last token.
				var firstMax, lastMax time.Time
				for _, t := range ts {
					if t.first.After(firstMax) {
						firstMax = t.first
					}
					if t.last.After(lastMax) {
						lastMax = t.last
					}
					tokens += t.tokens - 1
				}
				decodeTime += lastMax.Sub(firstMax)
			}
			b.ReportMetric(float64(tokens)/decodeTime.Seconds(), "decode-tokens/s")
		})
	}
}

// BenchmarkMixedWorkload is DESIGN.md's TTFT experiment on the CPU: one 2,000-token
// prompt arrives first, then 24 short prompts (32 tokens) arrive every 20 ms, each
// generating 32 tokens. Three configurations: one lane without chunking, one lane with
// chunked prefill, four lanes with chunking.
func BenchmarkMixedWorkload(b *testing.B) {
	m := benchModel(b, "synthetic:tiny")
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	const shorts = 24
	for _, cfg := range []struct {
		name string
		opt  Options
	}{
		{"1-lane-unchunked", Options{MaxNumBatchedTokens: 4096, PrefillChunk: 4096, PrefillStreams: 1}},
		{"1-lane-chunked", Options{MaxNumBatchedTokens: 512, PrefillChunk: 256, PrefillStreams: 1}},
		{"4-lanes-chunked", Options{MaxNumBatchedTokens: 512, PrefillChunk: 256, PrefillStreams: 4, MaxLongPrefills: 1}},
	} {
		b.Run(cfg.name, func(b *testing.B) {
			e, err := New(m.Model, m.Tokenizer, cfg.opt)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			reqs := []*Request{{Prompt: prompt(2000, 0, m.Config.VocabSize), MaxTokens: 32, IgnoreEOS: true, Sampling: greedy}}
			at := []time.Duration{0}
			for i := 0; i < shorts; i++ {
				reqs = append(reqs, &Request{Prompt: prompt(32, i+1, m.Config.VocabSize), MaxTokens: 32, IgnoreEOS: true, Sampling: greedy})
				at = append(at, time.Duration(i+1)*20*time.Millisecond)
			}
			var ttft, itl []time.Duration
			var longTTFT time.Duration
			tokens, wall := 0, time.Duration(0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				ts := drive(b, e, reqs, at)
				wall += time.Since(start)
				longTTFT += ts[0].first.Sub(ts[0].submit)
				for j, t := range ts {
					tokens += t.tokens
					itl = append(itl, t.gaps...)
					if j > 0 {
						ttft = append(ttft, t.first.Sub(t.submit))
					}
				}
			}
			b.ReportMetric(ms(pct(ttft, 0.5)), "short-TTFT-p50-ms")
			b.ReportMetric(ms(pct(ttft, 0.99)), "short-TTFT-p99-ms")
			b.ReportMetric(ms(longTTFT)/float64(b.N), "long-TTFT-ms")
			b.ReportMetric(ms(pct(itl, 0.5)), "ITL-p50-ms")
			b.ReportMetric(ms(pct(itl, 0.99)), "ITL-p99-ms")
			b.ReportMetric(float64(tokens)/wall.Seconds(), "gen-tokens/s")
		})
	}
}
