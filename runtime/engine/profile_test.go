package engine

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// TestEngineProfile runs requests of two classes, one after the other, through an
// engine with a profiler and checks the window's op counts against the model's layer
// structure and the tokens the engine computed: one prefill pass per request (its
// prompt in one chunk), one decode pass per generated token after the first, every
// layer op once per layer per pass, the others once per pass; each series labelled
// with its request's class. Outside a window nothing is recorded.
func TestEngineProfile(t *testing.T) {
	m := openStories(t)
	p := profiling.New(profiling.Options{Backend: "cpu"})
	e := newEngine(t, m, Options{Profiler: p, ModelName: "stories260K"})
	layers := int64(m.Model.Config.Layers)
	greedy := sampling.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}
	run := func(class string, prompt []int32, maxTokens int) {
		events, err := e.Submit(context.Background(), &Request{Prompt: prompt, MaxTokens: maxTokens, IgnoreEOS: true, Sampling: greedy, Class: class})
		require.NoError(t, err)
		res := collect(t, events)
		require.Len(t, res[0].ids, maxTokens)
	}
	prompt := func(n int) []int32 {
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(10 + i)
		}
		return ids
	}
	run("before", prompt(5), 4) // no window: not recorded

	require.NoError(t, p.Start())
	run("chat", prompt(7), 6)
	run("batch", prompt(12), 9)
	snap := p.Stop()
	require.Empty(t, snap.Errors)

	type want struct{ passes, decodeTokens int64 }
	wants := map[[2]string]want{
		{"prefill", "chat"}: {1, 0}, {"decode", "chat"}: {5, 5},
		{"prefill", "batch"}: {1, 0}, {"decode", "batch"}: {8, 8},
	}
	buckets := map[[2]string]string{
		{"prefill", "chat"}: "8 tokens", {"prefill", "batch"}: "16 tokens",
		{"decode", "chat"}: "1 seqs", {"decode", "batch"}: "1 seqs",
	}
	require.Len(t, snap.Series, len(wants), "series: %+v", snap.Series)
	for _, se := range snap.Series {
		k := [2]string{se.Labels.Phase, se.Labels.Class}
		w, ok := wants[k]
		require.True(t, ok, "unexpected series %+v", se.Labels)
		require.Equal(t, "stories260K", se.Model)
		require.Equal(t, profiling.ModeEager, se.Labels.Mode)
		require.Equal(t, buckets[k], se.Labels.Bucket, "%v", k)
		require.Equal(t, w.passes, se.Steps, "%v: passes", k)
		calls := map[string]int64{}
		for _, o := range se.Ops {
			calls[o.Op] += o.Calls
			require.Greater(t, o.Ns, int64(0), "%v: %s at layer %d", k, o.Op, o.Layer)
		}
		for op := model.Op(0); op < model.NumOps; op++ {
			n := w.passes
			if op.InLayer() {
				n *= layers
			}
			require.Equal(t, n, calls[op.String()], "%v: %s calls", k, op)
		}
		require.LessOrEqual(t, se.Steps, se.StepNs) // at least 1 ns a pass
	}
	sum := snap.Summary()
	require.LessOrEqual(t, sum.OpNs, sum.StepNs, "the ops are disjoint intervals inside their passes")

	// The pprof encoding parses and carries the class label.
	var buf bytes.Buffer
	require.NoError(t, snap.Write(&buf))
	prof, err := profile.Parse(&buf)
	require.NoError(t, err)
	classes := map[string]bool{}
	for _, s := range prof.Sample {
		classes[s.Label[profiling.LabelClass][0]] = true
	}
	require.Equal(t, map[string]bool{"chat": true, "batch": true}, classes)

	// After the window: nothing more is recorded, and the workspaces lose their tracer.
	run("after", prompt(3), 2)
	require.Empty(t, p.Stop().Series)
	require.Nil(t, e.decode.ws.Tracer())
}

// TestEngineRejectsBadClass: a class the profile labels cannot carry is a 400-style
// error, never a label of unbounded size.
func TestEngineRejectsBadClass(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	greedy := sampling.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}
	for _, c := range []string{"has space", "x\x00", string(make([]byte, MaxClassLen+1))} {
		_, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 2}, MaxTokens: 1, Sampling: greedy, Class: c})
		require.ErrorContains(t, err, "class", "class %q", c)
	}
	events, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 2}, MaxTokens: 1, Sampling: greedy, Class: "batch-2:a.b_c"})
	require.NoError(t, err)
	collect(t, events)
}

// TestEngineProfileGraphs: with decode graphs (the asynchronous fake's, shaped like
// CUDA's), a window times each replayed round whole (mode graph, op graph_replay, one
// call per step) and runs one round in BreakdownEvery per bucket eagerly for the
// per-op breakdown (mode eager): 19 decode rounds of one step are rounds 0, 4, 8, 12,
// 16 eager and 14 replays. The tokens are the eager engine's all the same.
func TestEngineProfileGraphs(t *testing.T) {
	off := false
	p := profiling.New(profiling.Options{Backend: "fake", BreakdownEvery: 4, NVTX: &off})
	r := newAsyncRun(t, 3, Options{Profiler: p, ModelName: "stories"}, true, 0, 0)
	mode, why := r.e.Graphs()
	require.Equal(t, GraphsReplay, mode, why)
	req := &Request{Prompt: []int32{1, 400, 401, 402, 403}, MaxTokens: 20, IgnoreEOS: true,
		Sampling: sampling.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}}
	want := runAll(t, newEngine(t, openStories(t), Options{}), []*Request{req})

	require.NoError(t, p.Start())
	events, err := r.e.Submit(context.Background(), req)
	require.NoError(t, err)
	got := collect(t, events)
	snap := p.Stop()
	require.Equal(t, want[0], got)
	require.Empty(t, r.f.Violations())

	layers := int64(r.e.cfg.Layers)
	seen := map[string]bool{}
	for _, se := range snap.Series {
		key := se.Labels.Mode + " " + se.Labels.Phase + " " + se.Labels.Bucket
		seen[key] = true
		calls := map[string]int64{}
		for _, o := range se.Ops {
			calls[o.Op] += o.Calls
		}
		switch key {
		case "graph decode 1 seqs":
			require.Equal(t, int64(14), se.Steps)
			require.Equal(t, map[string]int64{profiling.GraphReplay: 14}, calls)
		case "eager decode 1 seqs":
			require.Equal(t, int64(5), se.Steps)
			require.Equal(t, int64(5), calls["embed"])
			require.Equal(t, 5*layers, calls["attention"])
			require.Equal(t, 5*layers, calls["down_proj"])
		case "eager prefill 8 tokens":
			require.Equal(t, int64(1), se.Steps)
			require.Equal(t, layers, calls["q_proj"])
		default:
			t.Errorf("unexpected series %s: %+v", key, se)
		}
	}
	require.Len(t, seen, 3, "series: %v", seen)
}
