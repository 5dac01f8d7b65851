package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/specdec"
)

// openPair loads stories260K twice on one backend: the f32 target and its int8 copy,
// the draft (the pair the CPU benchmark measures).
func openPair(t testing.TB, be backend.Backend) (target, draft *llm.Loaded) {
	t.Helper()
	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	target, err := llm.Open(path, "", be, model.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { target.Close() })
	draft, err = llm.Open(path, "", be, model.Options{Weights: model.WeightsInt8})
	require.NoError(t, err)
	t.Cleanup(func() { draft.Close() })
	return target, draft
}

type specCase struct {
	name string
	cfg  specdec.Config
}

func specCases(ks ...int) []specCase {
	var cs []specCase
	for _, k := range ks {
		cs = append(cs,
			specCase{fmt.Sprintf("ngram-k%d", k), specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: k, PromptLookupMax: 3, PromptLookupMin: 1}},
			specCase{fmt.Sprintf("draft-k%d", k), specdec.Config{Method: specdec.MethodDraftModel, Model: "stories260K int8", NumSpeculativeTokens: k}})
	}
	return cs
}

func (c specCase) options(opt Options, draft *llm.Loaded) Options {
	opt.Speculative = c.cfg
	if c.cfg.Method == specdec.MethodDraftModel {
		opt.Draft = draft.Model
	}
	return opt
}

// checkSpecStats: the counters are consistent, and the run did speculate and accept.
func checkSpecStats(t *testing.T, e *Engine, k int) SpecStats {
	st := e.SpecStats()
	require.Len(t, st.AcceptedPerPos, k)
	var sum uint64
	for j, n := range st.AcceptedPerPos {
		sum += n
		if j > 0 {
			require.LessOrEqual(t, n, st.AcceptedPerPos[j-1], "position %d accepted more often than %d", j, j-1)
		}
	}
	require.Equal(t, st.AcceptedTokens, sum)
	require.LessOrEqual(t, st.AcceptedTokens, st.DraftTokens)
	require.LessOrEqual(t, st.DraftTokens, st.Drafts*uint64(k))
	require.Greater(t, st.Drafts, uint64(0), "nothing was drafted")
	require.Greater(t, st.AcceptedTokens, uint64(0), "no draft was ever accepted")
	return st
}

// TestSpeculativeGolden: with speculation on — prompt lookup and the int8 draft, k = 1,
// 3 and 5 — the engine reproduces the golden greedy continuations token for token.
func TestSpeculativeGolden(t *testing.T) {
	var g struct {
		Cases []struct {
			PromptIDs []int32 `json:"prompt_ids"`
			GreedyIDs []int32 `json:"greedy_ids"`
		} `json:"cases"`
	}
	data, err := os.ReadFile(shared.Path(t, "golden", "stories260K.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &g))
	require.NotEmpty(t, g.Cases)
	target, draft := openPair(t, cpu.New(cpu.Options{}))
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	for _, sc := range specCases(1, 3, 5) {
		t.Run(sc.name, func(t *testing.T) {
			e := newEngine(t, target, sc.options(Options{}, draft))
			var reqs []*Request
			for _, c := range g.Cases {
				reqs = append(reqs, &Request{Prompt: c.PromptIDs, MaxTokens: len(c.GreedyIDs), IgnoreEOS: true, Sampling: greedy})
			}
			got := runAll(t, e, reqs)
			for i, c := range g.Cases {
				require.Equal(t, c.GreedyIDs, got[i][0].ids, "case %d", i)
			}
			st := checkSpecStats(t, e, sc.cfg.NumSpeculativeTokens)
			t.Logf("drafts %d, drafted %d, accepted %d (%.0f%%), per position %v", st.Drafts, st.DraftTokens, st.AcceptedTokens,
				100*float64(st.AcceptedTokens)/float64(st.DraftTokens), st.AcceptedPerPos)
		})
	}
}

// specWorkload is 40 mixed requests: greedy ones of different lengths (some past EOS),
// greedy with logprobs, with stop strings, with min_tokens, and seeded sampling with
// penalties and n = 2. exact marks the requests whose tokens speculation must leave
// unchanged whatever the proposer (greedy); with prompt lookup every request's must
// (its proposals are deterministic, so Verify is Sample's own draw).
func specWorkload(t *testing.T, m *llm.Loaded) (reqs []*Request, exact []bool) {
	reqs = workload(t, m, 26)
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	for _, r := range reqs {
		r.Sampling = greedy
		exact = append(exact, true)
	}
	for i := 0; i < 4; i++ {
		r := *reqs[i]
		r.Logprobs, r.TopLogprobs = true, 3
		reqs, exact = append(reqs, &r), append(exact, true)
	}
	for i, stop := range []string{"Lily", "park", ".", "ball"} {
		r := *reqs[4+i]
		r.Stop, r.MaxTokens = []string{stop}, 40
		reqs, exact = append(reqs, &r), append(exact, true)
	}
	for i := 0; i < 2; i++ {
		r := *reqs[8+i]
		r.MinTokens, r.StopTokenIDs = 6, []int32{m.Tokenizer.EOS()}
		reqs, exact = append(reqs, &r), append(exact, true)
	}
	for i := 0; i < 4; i++ {
		seed := uint64(100 + i)
		r := *reqs[10+i]
		r.Seed = &seed
		r.Sampling = sampling.Params{Temperature: 0.8, TopK: 40, TopP: 0.95, RepetitionPenalty: 1.1}
		r.N, r.Logprobs = 2, i%2 == 0
		reqs, exact = append(reqs, &r), append(exact, false)
	}
	require.Len(t, reqs, 40)
	return reqs, exact
}

// collectLogprobs is collect that also keeps each token's log-probability.
func runAllLogprobs(t *testing.T, e *Engine, reqs []*Request) ([][]result, [][][]float32) {
	out := make([][]result, len(reqs))
	lps := make([][][]float32, len(reqs))
	done := make(chan int)
	for i, r := range reqs {
		events, err := e.Submit(context.Background(), r)
		require.NoError(t, err)
		go func() {
			for ev := range events {
				for len(out[i]) <= ev.Index {
					out[i] = append(out[i], result{})
					lps[i] = append(lps[i], nil)
				}
				o := &out[i][ev.Index]
				if ev.HasToken {
					o.ids = append(o.ids, ev.Token)
					lps[i][ev.Index] = append(lps[i][ev.Index], ev.Logprob)
				}
				o.text += ev.Text
				if ev.Finish != "" {
					o.finish, o.usage = ev.Finish, ev.Usage
					if ev.Err != nil {
						o.text += "ERROR: " + ev.Err.Error()
					}
				}
			}
			done <- i
		}()
	}
	for range reqs {
		<-done
	}
	return out, lps
}

// TestSpeculationChangesNoGreedyToken: 40 concurrent mixed requests through engines
// that speculate — both proposers, k = 1, 3, 5, with continuous batching, chunked
// prefill on two lanes, the prefix cache and a pool small enough to preempt — give
// exactly the tokens, text, finish reasons and log-probabilities of each request run
// alone without speculation; with prompt lookup that holds for seeded sampling too.
func TestSpeculationChangesNoGreedyToken(t *testing.T) {
	be := cpu.New(cpu.Options{})
	target, draft := openPair(t, be)
	reqs, exact := specWorkload(t, target)
	alone := newEngine(t, target, Options{})
	want := make([][]result, len(reqs))
	wantLP := make([][][]float32, len(reqs))
	for i, r := range reqs {
		w, lp := runAllLogprobs(t, alone, []*Request{r})
		want[i], wantLP[i] = w[0], lp[0]
	}
	type cfg struct {
		name string
		opt  Options
		pre  bool
	}
	configs := []cfg{{"tiny-pool-prefix-2-lanes", Options{NumBlocks: 28, EnablePrefixCache: true, PrefillStreams: 2, PrefillChunk: 16, MaxNumBatchedTokens: 64}, true}}
	for _, sc := range specCases(1, 3, 5) {
		cs := configs
		if sc.cfg.NumSpeculativeTokens == 3 {
			cs = append(cs, cfg{"plain", Options{}, false}, cfg{"K8-budget-32", Options{DecodeSteps: 8, MaxNumBatchedTokens: 32}, false})
		}
		for _, c := range cs {
			t.Run(sc.name+"/"+c.name, func(t *testing.T) {
				e := newEngine(t, target, sc.options(c.opt, draft))
				got, gotLP := runAllLogprobs(t, e, reqs)
				for i := range reqs {
					if exact[i] || sc.cfg.Method == specdec.MethodNGram {
						require.Equal(t, want[i], got[i], "request %d", i)
						require.Equal(t, wantLP[i], gotLP[i], "request %d: logprobs", i)
						continue
					}
					// A sampling draft model changes which random numbers decide, not
					// the distribution (runtime/sampling's chi-square test): the
					// completions must still be whole.
					require.Len(t, got[i], reqs[i].N)
					for _, o := range got[i] {
						require.Contains(t, []FinishReason{FinishStop, FinishLength}, o.finish, "request %d: %s", i, o.text)
						require.Equal(t, len(o.ids), o.usage.CompletionTokens)
						require.LessOrEqual(t, len(o.ids), reqs[i].MaxTokens)
					}
				}
				// The last events reach the clients before the loop commits that step
				// and publishes its stats.
				require.Eventually(t, func() bool {
					st := e.Stats()
					return st.Running == 0 && st.NumBlocks == st.FreeBlocks
				}, 10*time.Second, time.Millisecond, "every block free after all requests ended")
				st := e.Stats()
				if c.pre {
					require.Greater(t, st.Scheduler.Preemptions, uint64(0), "the pool was meant to force preemption")
				}
				sp := checkSpecStats(t, e, sc.cfg.NumSpeculativeTokens)
				t.Logf("drafts %d, drafted %d, accepted %d (%.0f%%), per position %v; preemptions %d",
					sp.Drafts, sp.DraftTokens, sp.AcceptedTokens, 100*float64(sp.AcceptedTokens)/float64(sp.DraftTokens), sp.AcceptedPerPos, st.Scheduler.Preemptions)
			})
		}
	}
}

// TestSpeculativeConfigRefused: what build refuses, naming the problem.
func TestSpeculativeConfigRefused(t *testing.T) {
	be := cpu.New(cpu.Options{})
	target, draft := openPair(t, be)
	tiny, err := llm.Open("synthetic:tiny", "", be, model.Options{})
	require.NoError(t, err)
	other, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	defer other.Close()
	dm := specdec.Config{Method: specdec.MethodDraftModel, Model: "d", NumSpeculativeTokens: 3}
	for _, c := range []struct {
		opt  Options
		want string
	}{
		{Options{Speculative: dm, Draft: tiny.Model}, "its vocabulary has 259 tokens, the target's 512"},
		{Options{Speculative: dm}, "needs Options.Draft"},
		{Options{Speculative: dm, Draft: other.Model}, "both must share one backend"},
		{Options{Speculative: specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: 2}, Draft: draft.Model}, "takes no draft model"},
		{Options{Draft: draft.Model}, "no speculative method"},
		{Options{Speculative: specdec.Config{Method: specdec.MethodNGram}}, "num_speculative_tokens must be in [1, 16]"},
	} {
		_, err := New(target.Model, target.Tokenizer, c.opt)
		require.ErrorContains(t, err, c.want)
	}
}

// TestVerificationRowsAreDecodeNumerics: the logits of a verification pass (k+1
// positions of one sequence in one forward pass, batched with another sequence's
// prefill chunk and a third's decode token) are bit-identical to those of decode steps
// computing the same positions one at a time — for f32 and int8 weights — so
// speculation cannot change a greedy token.
func TestVerificationRowsAreDecodeNumerics(t *testing.T) {
	be := cpu.New(cpu.Options{})
	stories := shared.Path(t, "models", "stories260K", "stories260K.bin")
	for _, c := range []struct {
		path string
		w    model.WeightType
	}{
		{stories, model.WeightsF32}, {stories, model.WeightsInt8},
		// GGUF block types run natively (activations quantized per row, as llama.cpp).
		{shared.Path(t, "golden", "gguf-quants", "models", "synth256-Q4_0.gguf"), model.WeightsAuto},
		{shared.Path(t, "golden", "gguf-quants", "models", "synth256-Q8_0.gguf"), model.WeightsAuto},
	} {
		m, err := llm.Open(c.path, "", be, model.Options{Weights: c.w})
		require.NoError(t, err)
		defer m.Close()
		w := fmt.Sprintf("%s %s", c.path, c.w)
		kv, err := m.NewKVCache(16, 16)
		require.NoError(t, err)
		ws, err := m.NewWorkspace(64, 64)
		require.NoError(t, err)
		V := m.Config.VocabSize
		prompt := []int32{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338}
		next := []int32{401, 396, 267, 337, 410, 408} // the golden continuation
		a, b, other := []int32{0, 1}, []int32{2, 3}, []int32{4, 5}
		for _, blocks := range [][]int32{a, b, other} {
			_, err := m.Forward(ws, kv, []model.Seq{{Tokens: prompt, Pos: 0, Blocks: blocks}})
			require.NoError(t, err)
		}
		// Decode: one position per pass, each batched with another sequence's token.
		var want []float32
		for j, tok := range next {
			lg, err := m.Forward(ws, kv, []model.Seq{
				{Tokens: []int32{tok}, Pos: len(prompt) + j, Blocks: a, Logits: model.LogitsLast},
				{Tokens: []int32{tok}, Pos: len(prompt) + j, Blocks: other, Logits: model.LogitsLast},
			})
			require.NoError(t, err)
			want = append(want, lg[:V]...)
		}
		// Verification: all six positions of b in one sequence, among a prefill chunk
		// (of other's, rewritten with the same tokens) and a decode token.
		third := []int32{6}
		_, err = m.Forward(ws, kv, []model.Seq{{Tokens: prompt[:5], Pos: 0, Blocks: third}})
		require.NoError(t, err)
		got, err := m.Forward(ws, kv, []model.Seq{
			{Tokens: prompt[5:12], Pos: 5, Blocks: third, Logits: model.LogitsLast},
			{Tokens: next, Pos: len(prompt), Blocks: b, Logits: model.LogitsAll},
			{Tokens: next[:1], Pos: len(prompt), Blocks: other, Logits: model.LogitsLast},
		})
		require.NoError(t, err)
		require.Equal(t, want, got[V:V+len(next)*V], "%s weights", w)
		t.Logf("%s: %v", w, m.WeightTypes())
	}
}

// BenchmarkVerifyPass: what a verification pass of k+1 positions of one sequence costs
// against a decode step (one position), after a 32-token prompt. Where the weights'
// bytes bound a step (a large model, batch 1), k+1 positions cost about one step and
// speculation pays; where arithmetic does, they cost up to k+1 steps.
//
//	go test ./runtime/engine/ -run '^$' -bench VerifyPass -benchtime 4x
func BenchmarkVerifyPass(b *testing.B) {
	for _, shape := range []string{"synthetic:tinyllama-1.1b"} {
		m, err := llm.Open(shape, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsInt8})
		require.NoError(b, err)
		kv, err := m.NewKVCache(8, 16)
		require.NoError(b, err)
		ws, err := m.NewWorkspace(64, 64)
		require.NoError(b, err)
		blocks := []int32{0, 1, 2, 3, 4, 5, 6, 7}
		prompt := make([]int32, 32)
		for i := range prompt {
			prompt[i] = int32(3 + i)
		}
		_, err = m.Forward(ws, kv, []model.Seq{{Tokens: prompt, Pos: 0, Blocks: blocks}})
		require.NoError(b, err)
		// The sizes take turns in every iteration, so the machine's load falls on all.
		sizes := []int{1, 2, 4, 6}
		spent := make([]time.Duration, len(sizes))
		b.Run(shape+"/int8", func(b *testing.B) {
			for b.Loop() {
				for i, n := range sizes {
					start := time.Now()
					if _, err := m.Forward(ws, kv, []model.Seq{{Tokens: prompt[:n], Pos: 32, Blocks: blocks, Logits: model.LogitsAll}}); err != nil {
						b.Fatal(err)
					}
					spent[i] += time.Since(start)
				}
			}
			for i, n := range sizes {
				b.ReportMetric(float64(spent[i].Milliseconds())/float64(b.N), fmt.Sprintf("ms/pass-of-%d", n))
				if i > 0 {
					b.ReportMetric(float64(spent[i])/float64(spent[0]), fmt.Sprintf("x-step-for-%d", n))
				}
			}
		})
		m.Close()
	}
}

// TestSpeculationSkipsConstrainedRows: a constrained request (structured output) on a
// speculating engine is decoded one token at a time through its constraint — its
// output is the non-speculating engine's, and it drafts nothing — while an
// unconstrained request beside it speculates.
func TestSpeculationSkipsConstrainedRows(t *testing.T) {
	target, draft := openPair(t, cpu.New(cpu.Options{}))
	g, err := grammar.Regex(`(yes|no)(, because [a-z ]{1,30})?\.`, grammar.Options{})
	require.NoError(t, err)
	prompt := workload(t, target, 1)[0].Prompt
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	constrained := &Request{Prompt: prompt, MaxTokens: 48, Sampling: greedy, Constraint: g}
	want := collect(t, mustSubmit(t, newEngine(t, target, Options{}), constrained))
	for _, sc := range specCases(3) {
		e := newEngine(t, target, sc.options(Options{}, draft))
		require.Equal(t, want, collect(t, mustSubmit(t, e, constrained)), sc.name)
		require.Zero(t, e.SpecStats().Drafts, "%s: a constrained row drafted", sc.name)
		got := runAll(t, e, []*Request{constrained, {Prompt: prompt, MaxTokens: 48, Sampling: greedy, IgnoreEOS: true}})
		require.Equal(t, want, got[0], sc.name)
		require.Greater(t, e.SpecStats().Drafts, uint64(0), "%s: the unconstrained row beside it speculates", sc.name)
	}
}
