package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/specdec"
)

// asyncRun is one engine on the asynchronous fake, with the checker wired into the
// loop and, optionally, cancellations of requests whose group's event is pending.
type asyncRun struct {
	f      *asyncBackend
	e      *Engine
	cancel map[string]context.CancelFunc // cancellable requests by id

	cancelled         map[string]bool // cancelled while their group's event was pending
	preemptedInFlight int             // steps that preempted while blocks were held by pending events
	maxHeld           int
}

func newAsyncRun(t *testing.T, seed uint64, opt Options, gate bool, cancelRate, refuse float64) *asyncRun {
	t.Helper()
	return newAsyncRunOn(t, newAsyncBackend(seed, 0.25), seed, opt, gate, cancelRate, refuse)
}

// newAsyncRunOn is newAsyncRun on a given fake (e.g. one with unorderedUploads).
func newAsyncRunOn(t *testing.T, f *asyncBackend, seed uint64, opt Options, gate bool, cancelRate, refuse float64) *asyncRun {
	t.Helper()
	f.refuse = refuse
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", f, model.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	if opt.Speculative.Method == specdec.MethodDraftModel {
		d, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", f, model.Options{Weights: model.WeightsInt8})
		require.NoError(t, err)
		t.Cleanup(func() { d.Close() })
		opt.Draft = d.Model
	}
	e, err := build(m.Model, m.Tokenizer, opt)
	require.NoError(t, err)
	r := &asyncRun{f: f, e: e, cancel: map[string]context.CancelFunc{}, cancelled: map[string]bool{}}
	e.fences.gate = gate
	pool := e.sched.Pool()
	rng := rand.New(rand.NewPCG(seed, 99))
	var preempts uint64
	e.hook = func(stage string) { // the loop goroutine: the scheduler and pool are quiet
		f.checkPool(stage, pool)
		r.maxHeld = max(r.maxHeld, pool.NumPending())
		switch stage {
		case "step":
			if p := e.sched.Stats().Preemptions; p > preempts {
				preempts = p
				if pool.NumPending() > 0 {
					r.preemptedInFlight++
				}
			}
		case "commit":
			for _, g := range e.groups {
				if g.ev == nil || !f.pendingEvent(g.ev) {
					continue
				}
				var ids []string
				for _, it := range g.items {
					ids = append(ids, it.Req.ID())
				}
				for _, it := range g.dec {
					ids = append(ids, it.Req.ID())
				}
				for _, id := range ids {
					if c := r.cancel[id]; c != nil && rng.Float64() < cancelRate {
						c() // seen by the loop at its next turn, with this event still pending
						delete(r.cancel, id)
						r.cancelled[id] = true
					}
				}
			}
		}
	}
	go e.loop()
	t.Cleanup(func() { e.Close() })
	return r
}

// submitAll runs reqs to the end; every other request is cancellable.
func (r *asyncRun) submitAll(t *testing.T, reqs []*Request) [][]result {
	out := make([][]result, len(reqs))
	var wg sync.WaitGroup
	ctxs := make([]context.Context, len(reqs))
	for i := range reqs { // all before the first Submit: the hook reads r.cancel on the loop goroutine
		var cancel context.CancelFunc
		ctxs[i], cancel = context.WithCancel(context.Background())
		defer cancel()
		if i%2 == 1 {
			r.cancel[fmt.Sprintf("r%d", i)] = cancel
		}
	}
	for i, q := range reqs {
		qc := *q
		qc.ID = fmt.Sprintf("r%d", i)
		events, err := r.e.Submit(ctxs[i], &qc)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range events {
				for len(out[i]) <= ev.Index {
					out[i] = append(out[i], result{})
				}
				o := &out[i][ev.Index]
				if ev.HasToken {
					o.ids = append(o.ids, ev.Token)
				}
				o.text += ev.Text
				if ev.Finish != "" {
					o.finish, o.usage = ev.Finish, ev.Usage
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// asyncWorkload: prompts long enough to take several chunks, some sharing a prefix,
// greedy and seeded sampling.
func asyncWorkload(t *testing.T) []*Request {
	m := openStories(t)
	reqs := workload(t, m, 24)
	prefix := []int32{1, 403, 407, 261, 378, 29892, 727, 471, 263, 2217, 7826, 4257, 365, 2354, 29889, 2296, 12355}
	for i := range prefix {
		prefix[i] %= int32(m.Config.VocabSize)
	}
	seed := uint64(7)
	for i := 0; i < 6; i++ {
		r := *reqs[i]
		r.Prompt = append(append([]int32(nil), prefix...), r.Prompt[1:]...)
		r.Sampling = sampling.Params{Temperature: 0.8, TopP: 0.9, TopK: 40, RepetitionPenalty: 1.1}
		r.Seed = &seed
		reqs = append(reqs, &r)
	}
	for _, r := range reqs {
		if r.Sampling.TopP == 0 {
			r.Sampling = sampling.Params{TopP: 1, RepetitionPenalty: 1}
		}
	}
	return reqs
}

// asyncConfigs: decode graphs replayed through the fake's device loop (its sampler
// refusing some rows, so the host fallback runs too) and, for comparison, disabled.
var asyncConfigs = []struct {
	name   string
	opt    Options
	refuse float64 // chance the fake's device sampler gives a row back to the host
}{
	{"3-streams-chunked-prefix", Options{PrefillStreams: 3, PrefillChunk: 8, MaxNumBatchedTokens: 48, EnablePrefixCache: true}, 0.05},
	{"tiny-pool-3-streams-K4", Options{NumBlocks: 24, PrefillStreams: 3, PrefillChunk: 16, MaxNumBatchedTokens: 64, DecodeSteps: 4, EnablePrefixCache: true}, 0.05},
	{"tiny-pool-3-streams-K4-eager", Options{NumBlocks: 24, PrefillStreams: 3, PrefillChunk: 16, MaxNumBatchedTokens: 64, DecodeSteps: 4, EnablePrefixCache: true, DisableCUDAGraphs: true}, 0},
	// Speculation: verification passes run eagerly, other decode groups replay graphs.
	{"spec-ngram-k3-tiny-pool-3-streams-K4", Options{NumBlocks: 28, PrefillStreams: 3, PrefillChunk: 16, MaxNumBatchedTokens: 64, DecodeSteps: 4, EnablePrefixCache: true,
		Speculative: specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: 3, PromptLookupMax: 3, PromptLookupMin: 1}}, 0.05},
	{"spec-draft-k3-tiny-pool-3-streams-eager", Options{NumBlocks: 28, PrefillStreams: 3, PrefillChunk: 16, MaxNumBatchedTokens: 64, EnablePrefixCache: true, DisableCUDAGraphs: true,
		Speculative: specdec.Config{Method: specdec.MethodDraftModel, Model: "stories260K int8", NumSpeculativeTokens: 3}}, 0},
}

// TestAsyncBackendOrdering drives the engine through the asynchronous fake: every
// configuration gives exactly the CPU engine's tokens, the checker sees no block
// touched out of order and no block back in the pool while work on it is pending —
// with requests cancelled while their group's event is pending, and preemption forced
// by a small pool.
func TestAsyncBackendOrdering(t *testing.T) {
	reqs := asyncWorkload(t)
	m := openStories(t)
	want := runAll(t, newEngine(t, m, Options{}), reqs)
	for ci, cfg := range asyncConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			r := newAsyncRun(t, uint64(ci+1), cfg.opt, true, 0.3, cfg.refuse)
			got := r.submitAll(t, reqs)
			r.e.Close() // the loop's hook and event polls stop: their counters are safe to read
			require.Empty(t, r.f.Violations(), "trace tail:\n%s", strings.Join(tail(r.f.trace, 40), "\n"))
			for i := range reqs {
				if r.cancelled[fmt.Sprintf("r%d", i)] {
					continue // aborted, or finished before the loop saw the cancellation
				}
				if cfg.opt.Speculative.Method == specdec.MethodDraftModel && !reqs[i].Sampling.Greedy() {
					// A sampling draft draws other random numbers (same distribution).
					require.Equal(t, FinishLength, got[i][0].finish, "request %d", i)
					continue
				}
				require.Equal(t, want[i], got[i], "request %d", i)
			}
			n := r.f.n
			mode, why := r.e.Graphs()
			t.Logf("launches %d, events %d, waits %d (%d across streams), polls of pending events %d; "+
				"cancelled in flight %d, preemptions with held blocks %d, most blocks held %d; "+
				"decode %s (%s): %d graphs, %d device loops of %d steps in all, %d rows given back to the host",
				n.launches, n.records, n.waits, n.crossWaits, n.pendingPolls, len(r.cancelled), r.preemptedInFlight, r.maxHeld,
				mode, why, n.captures, n.loops, n.loopSteps, n.refused)
			if cfg.opt.DisableCUDAGraphs {
				require.Equal(t, GraphsEager, mode)
				require.Zero(t, n.loops)
			} else {
				require.Equal(t, GraphsReplay, mode, why)
				require.Greater(t, n.loops, 0, "no decode ran as a device loop")
				require.Greater(t, n.refused, 0, "the host fallback never ran")
				if cfg.opt.DecodeSteps > 1 {
					require.Greater(t, n.loopSteps, n.loops, "no device loop ran more than one step")
				}
			}
			require.NotEmpty(t, r.cancelled, "no request was cancelled while its group's event was pending")
			require.Greater(t, n.crossWaits, 0, "no stream ever waited for another: the test exercised no dependency")
			require.Greater(t, r.maxHeld, 0, "no block was ever held by a pending event")
			if cfg.opt.NumBlocks > 0 {
				require.Greater(t, r.preemptedInFlight, 0, "the pool was meant to force preemption while blocks were in flight")
			}
			st := r.e.Stats()
			require.Equal(t, 0, st.Running)
		})
	}
}

// TestAsyncCheckerCatchesUngated: the same runs with the engine's event gating turned
// off (no stream waits, no held blocks) make the checker report violations, so the
// test above can fail.
func TestAsyncCheckerCatchesUngated(t *testing.T) {
	reqs := asyncWorkload(t)
	for ci, cfg := range asyncConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			r := newAsyncRun(t, uint64(ci+1), cfg.opt, false, 0.3, cfg.refuse)
			r.submitAll(t, reqs)
			r.e.Close()
			v := r.f.Violations()
			require.NotEmpty(t, v, "ungated engine, yet the checker saw nothing")
			order, pool := 0, 0
			for _, s := range v {
				if strings.HasPrefix(s, "after ") {
					pool++
				} else {
					order++
				}
			}
			t.Logf("%d violations (%d out of order, %d blocks freed early), first: %s", len(v), order, pool, v[0])
			require.Greater(t, order, 0, "no op ran before the work it depends on")
		})
	}
}

func tail(s []string, n int) []string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestGraphModeSaysWhy(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	mode, why := e.Graphs()
	require.Equal(t, GraphsEager, mode)
	require.Contains(t, why, "does not capture graphs")
	e2 := newEngine(t, m, Options{DisableCUDAGraphs: true})
	_, why = e2.Graphs()
	require.Contains(t, why, "--cuda-graphs=false")

	// A backend that captures: one graph per bucket; a capture that fails midway leaves
	// the engine decoding eagerly, saying why, with the graphs captured before freed.
	r := newAsyncRun(t, 1, Options{MaxNumSeqs: 40}, true, 0, 0)
	mode, why = r.e.Graphs()
	require.Equal(t, GraphsReplay, mode)
	require.Contains(t, why, "7 buckets ([1 2 4 8 16 32 40] sequences, contexts up to 512)")
	f := newAsyncBackend(1, 0)
	f.failCapture = 3
	lm, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", f, model.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { lm.Close() })
	core, logs := observer.New(zap.InfoLevel)
	e3, err := New(lm.Model, lm.Tokenizer, Options{Logger: zap.New(core)})
	require.NoError(t, err)
	t.Cleanup(func() { e3.Close() })
	mode, why = e3.Graphs()
	require.Equal(t, GraphsEager, mode)
	require.Contains(t, why, "capturing the decode step failed, decoding eagerly: decode graph: fake: capture 3 refused")
	// Capture logs its progress, bucket by bucket, up to the one that failed.
	captures := logs.FilterMessage("capturing decode graph").All()
	require.Len(t, captures, 3)
	require.Equal(t, int64(3), captures[2].ContextMap()["bucket"])
	require.Equal(t, int64(4), captures[2].ContextMap()["sequences"])
	reqs := workload(t, m, 4)
	for _, q := range reqs {
		q.Sampling = sampling.Params{TopP: 1, RepetitionPenalty: 1}
	}
	want := runAll(t, newEngine(t, m, Options{}), reqs)
	require.Equal(t, want, runAll(t, e3, reqs))
}

// TestGraphReplayMatchesEager: decode graphs replayed through the fake's device loop
// give exactly the eager engine's tokens, texts and finish reasons for every kind of
// request — greedy and seeded sampling with penalties, stop strings (overshoot
// dropped), stop token ids, EOS ignored or not, min_tokens, logprobs and constraints
// (which need the host and fall back to eager steps), n > 1 — one step or K per round trip, with
// and without rows the device sampler gives back to the host.
func TestGraphReplayMatchesEager(t *testing.T) {
	m := openStories(t)
	reqs := workload(t, m, 16)
	seed := uint64(5)
	for i, r := range reqs {
		switch i % 8 {
		case 0:
			r.Sampling = sampling.Params{Temperature: 0.9, TopP: 0.8, TopK: 30, RepetitionPenalty: 1.2, PresencePenalty: 0.3, FrequencyPenalty: 0.1}
			r.Seed = &seed
		case 1:
			r.Stop = []string{" the", "."}
		case 2:
			r.StopTokenIDs = []int32{13, 29889 % int32(m.Config.VocabSize)}
			r.MaxTokens = 60
		case 3:
			r.MinTokens = 5
			r.Sampling = sampling.Params{Temperature: 1, MinP: 0.05}
			r.Seed = &seed
		case 4:
			r.Logprobs, r.TopLogprobs = true, 2
		case 5:
			r.N = 3
			r.Sampling = sampling.Params{Temperature: 0.7}
			r.Seed = &seed
		case 6:
			// Constrained rows sample on the host while the others loop on the device.
			r.Constraint = mustSchema(t, `{"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}},"required":["a"]}`)
			r.Sampling = sampling.Params{Temperature: 0.9, TopK: 20}
			r.Seed = &seed
			r.IgnoreEOS = false
		case 7:
			r.Constraint = mustSchema(t, `{"type":"string","pattern":"^[a-z ]+$","maxLength":30}`)
			r.IgnoreEOS = false
		}
		if r.Sampling.TopP == 0 {
			r.Sampling.TopP = 1
		}
		if r.Sampling.RepetitionPenalty == 0 {
			r.Sampling.RepetitionPenalty = 1
		}
	}
	want := runAll(t, newEngine(t, m, Options{}), reqs)
	for i, r := range reqs {
		if r.Constraint != nil {
			require.Equal(t, FinishStop, want[i][0].finish)
			require.True(t, json.Valid([]byte(want[i][0].text)), want[i][0].text)
		}
	}
	for _, c := range []struct {
		name   string
		opt    Options
		refuse float64
	}{
		{"K1", Options{}, 0},
		{"K4", Options{DecodeSteps: 4}, 0},
		{"K4-refusals", Options{DecodeSteps: 4, MaxNumSeqs: 6}, 0.2},
		{"K8-prefix-cache", Options{DecodeSteps: 8, EnablePrefixCache: true}, 0.05},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newAsyncRun(t, 9, c.opt, true, 0, c.refuse)
			got := r.submitAll(t, reqs)
			r.e.Close()
			require.Empty(t, r.f.Violations())
			mode, why := r.e.Graphs()
			require.Equal(t, GraphsReplay, mode, why)
			for i := range reqs {
				require.Equal(t, want[i], got[i], "request %d", i)
			}
			n := r.f.n
			t.Logf("%s; %d device loops of %d steps, %d rows given back to the host", why, n.loops, n.loopSteps, n.refused)
			require.Greater(t, n.loops, 0)
			if c.refuse > 0 {
				require.Greater(t, n.refused, 0)
			}
		})
	}
}
