package scheduler

import (
	"fmt"
	"testing"
)

// BenchmarkStep256Decode measures one Schedule+Commit with 256 running decode
// sequences (block size 16, prefix cache on, one token per sequence per step).
// Requests that reach their max tokens are replaced, so the batch stays full.
func BenchmarkStep256Decode(b *testing.B) {
	for _, k := range []int{1, 8} {
		b.Run(fmt.Sprintf("K%d", k), func(b *testing.B) {
			const n = 256
			s, err := New(Config{NumBlocks: n * 80, BlockSize: 16, MaxNumSeqs: n, MaxNumBatchedTokens: 8192,
				EnablePrefixCache: true, DecodeSteps: k})
			if err != nil {
				b.Fatal(err)
			}
			next := 0
			addOne := func() {
				prompt := seqTokens(next*1000, 128)
				if _, err := s.Add(NewRequest{ID: fmt.Sprint(next), Prompt: prompt, MaxNewTokens: 1024}); err != nil {
					b.Fatal(err)
				}
				next++
			}
			for i := 0; i < n; i++ {
				addOne()
			}
			res := make([]Result, 0, n)
			tok := make([]int32, k)
			var fin []*Request
			run := func() {
				p, err := s.Schedule()
				if err != nil {
					b.Fatal(err)
				}
				res = res[:0]
				for _, d := range p.Decode {
					res = append(res, Result{Req: d.Req, Tokens: tok[:d.NumSteps]})
				}
				for _, g := range p.Prefill {
					for _, it := range g.Items {
						if it.Complete() {
							res = append(res, Result{Req: it.Req, Tokens: tok[:1]})
						}
					}
				}
				if err := s.Commit(p, res); err != nil {
					b.Fatal(err)
				}
				fin = s.TakeFinished(fin[:0])
				for range fin {
					addOne()
				}
			}
			for s.NumRunning() < n || s.NumWaiting() > 0 {
				run()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/step")
			b.ReportMetric(float64(n*k)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
