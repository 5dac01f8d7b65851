package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
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

func newAsyncRun(t *testing.T, seed uint64, opt Options, gate bool, cancelRate float64) *asyncRun {
	t.Helper()
	f := newAsyncBackend(seed, 0.25)
	m, err := model.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", f, model.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
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

var asyncConfigs = []struct {
	name string
	opt  Options
}{
	{"3-streams-chunked-prefix", Options{PrefillStreams: 3, PrefillChunk: 8, MaxNumBatchedTokens: 48, EnablePrefixCache: true}},
	{"tiny-pool-3-streams-K4", Options{NumBlocks: 24, PrefillStreams: 3, PrefillChunk: 16, MaxNumBatchedTokens: 64, DecodeSteps: 4, EnablePrefixCache: true}},
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
			r := newAsyncRun(t, uint64(ci+1), cfg.opt, true, 0.3)
			got := r.submitAll(t, reqs)
			r.e.Close() // the loop's hook and event polls stop: their counters are safe to read
			require.Empty(t, r.f.Violations(), "trace tail:\n%s", strings.Join(tail(r.f.trace, 40), "\n"))
			for i := range reqs {
				if r.cancelled[fmt.Sprintf("r%d", i)] {
					continue // aborted, or finished before the loop saw the cancellation
				}
				require.Equal(t, want[i], got[i], "request %d", i)
			}
			n := r.f.n
			t.Logf("launches %d, events %d, waits %d (%d across streams), polls of pending events %d; "+
				"cancelled in flight %d, preemptions with held blocks %d, most blocks held %d",
				n.launches, n.records, n.waits, n.crossWaits, n.pendingPolls, len(r.cancelled), r.preemptedInFlight, r.maxHeld)
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
			r := newAsyncRun(t, uint64(ci+1), cfg.opt, false, 0.3)
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
}
