package grammar

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// benchSchemas are the constraints the mask benchmark replays: realistic structured
// outputs (OpenAI's examples, pydantic models, tool arguments) and free JSON.
var benchSchemas = []string{
	`{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location","unit"],"additionalProperties":false}`,
	`{"type":"object","properties":{"steps":{"type":"array","items":{"type":"object","properties":{"explanation":{"type":"string"},"output":{"type":"string"}},"required":["explanation","output"],"additionalProperties":false}},"final_answer":{"type":"string"}},"required":["steps","final_answer"],"additionalProperties":false}`,
	`{"$defs":{"Address":{"properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string","pattern":"^\\d{5}$"}},"required":["street","city","zip"],"type":"object"}},"properties":{"name":{"type":"string","maxLength":40},"age":{"anyOf":[{"type":"integer","minimum":0,"maximum":130},{"type":"null"}]},"email":{"type":"string","format":"email"},"address":{"$ref":"#/$defs/Address"},"tags":{"type":"array","items":{"type":"string"},"maxItems":5}},"required":["name","age","address"],"type":"object"}`,
	`{"type":"object","properties":{"id":{"type":"string","format":"uuid"},"created":{"type":"string","format":"date-time"},"score":{"type":"number","minimum":0,"maximum":1},"labels":{"type":"array","items":{"enum":["spam","ham","unsure"]}}},"required":["id","created","score","labels"]}`,
	`{"type":"object"}`,
}

// maskDocs builds, for each schema, documents the grammar accepts (random walks) and
// their token sequences in the tokenizer's own encoding — the path a model's output
// takes through the automaton.
func maskDocs(b *testing.B, tok *tokenizer.Tokenizer, v *Vocab) (gs []*Grammar, seqs [][][]int32) {
	_, sv := storiesVocab(b)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, s := range benchSchemas {
		g, err := JSONSchema([]byte(s), Options{})
		if err != nil {
			b.Fatal(err)
		}
		var docs [][]int32
		for len(docs) < 8 {
			text, walked, ended := randomWalkIDs(b, g, sv, rng, 400, 0.2)
			if !ended || len(text) < 20 {
				continue
			}
			seq := walked[:len(walked)-1] // without end-of-sequence
			if v != sv {
				ids := tok.Encode(text, tokenizer.EncodeOptions{})
				seq = make([]int32, len(ids))
				for i, id := range ids {
					seq[i] = int32(id)
				}
			}
			// The tokenizer's split must be accepted (any split of an accepted text is).
			m := g.NewMatcher(v)
			for _, id := range seq {
				if err := m.Accept(id); err != nil {
					b.Fatalf("replaying %q: %v", text, err)
				}
			}
			docs = append(docs, seq)
		}
		gs = append(gs, g)
		seqs = append(seqs, docs)
	}
	return gs, seqs
}

// BenchmarkMask measures what a constrained row costs per decode step, replaying
// documents tokenized as a model would emit them: FillMask, the allowed-token bitmap
// with the budget (fill-p50/p99), and the whole row (p50/p99/mean/max): FillMask plus
// what the engine does with it — Gather when at most half the vocabulary is
// allowed, else ApplyMask on a row of logits the size of the vocabulary. It also
// reports the time to build a grammar's tables for the vocabulary (once per schema
// and vocabulary, on the submitting goroutine, cached after).
//
//	go test ./runtime/grammar/ -run '^$' -bench Mask -benchtime 3x
func BenchmarkMask(b *testing.B) {
	for _, name := range []string{"stories260K-512", "llama3-128k"} {
		b.Run(name, func(b *testing.B) {
			var tok *tokenizer.Tokenizer
			var v *Vocab
			if name == "llama3-128k" {
				tok, v = llama3Vocab(b)
			} else {
				tok, v = storiesVocab(b)
			}
			gs, seqs := maskDocs(b, tok, v)
			var bind time.Duration
			for _, s := range benchSchemas {
				g, _ := JSONSchema([]byte(s), Options{}) // a fresh copy: no tables yet
				start := time.Now()
				g.bind(v)
				bind += time.Since(start)
			}
			logits := make([]float32, v.n)
			bits := make([]uint64, (v.n+63)/64)
			var steps, fills, cpus []time.Duration
			runtime.LockOSThread() // thread CPU time below is this goroutine's
			defer runtime.UnlockOSThread()
			var ids []int32
			var vals []float32
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for gi, g := range gs {
					for _, seq := range seqs[gi] {
						m := g.NewMatcher(v)
						for k, id := range seq {
							for j := range logits {
								logits[j] = 0
							}
							cpu0 := threadCPU()
							start := time.Now()
							n := m.FillMask(bits, len(seq)+8-k)
							mid := time.Now()
							// What the engine does with the mask: few allowed tokens are
							// gathered for the sampler, else the row is masked in place.
							if n*2 <= len(logits) {
								ids, vals = Gather(logits, bits, ids[:0], vals[:0])
							} else {
								ApplyMask(logits, bits)
							}
							end := time.Now()
							cpus = append(cpus, threadCPU()-cpu0)
							steps = append(steps, end.Sub(start))
							fills = append(fills, mid.Sub(start))
							if err := m.Accept(id); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
			}
			b.StopTimer()
			slices.Sort(steps)
			slices.Sort(fills)
			slices.Sort(cpus)
			us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
			var sum time.Duration
			for _, d := range steps {
				sum += d
			}
			b.ReportMetric(us(steps[len(steps)/2]), "p50-µs/step")
			b.ReportMetric(us(steps[len(steps)*99/100]), "p99-µs/step")
			b.ReportMetric(us(sum)/float64(len(steps)), "mean-µs/step")
			b.ReportMetric(us(steps[len(steps)-1]), "max-µs/step")
			// On a shared machine the wall-clock tail is the scheduler's (a step that
			// loses the core waits milliseconds); the thread's CPU time is the work.
			b.ReportMetric(us(cpus[len(cpus)/2]), "cpu-p50-µs/step")
			b.ReportMetric(us(cpus[len(cpus)*99/100]), "cpu-p99-µs/step")
			b.ReportMetric(us(fills[len(fills)/2]), "fill-p50-µs")
			b.ReportMetric(us(fills[len(fills)*99/100]), "fill-p99-µs")
			b.ReportMetric(float64(bind.Microseconds())/1e3/float64(len(gs)), "bind-ms/schema")
			b.ReportMetric(float64(len(steps))/float64(b.N), "steps/op")
		})
	}
}

// threadCPU is the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
