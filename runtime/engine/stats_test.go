package engine

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// TestStepStatsAndTiming: the OnStep observers see every prompt token computed and
// every token sampled, each completion's last event says when it was queued and first
// scheduled (in that order, before its first token), and the scheduler counts the
// tokens it looked up in the prefix cache.
func TestStepStatsAndTiming(t *testing.T) {
	m := openStories(t)
	e, err := New(m.Model, m.Tokenizer, Options{NumBlocks: 256, EnablePrefixCache: true, MaxNumBatchedTokens: 64})
	require.NoError(t, err)
	defer e.Close()
	var mu sync.Mutex
	var steps, prompt, gen int
	e.OnStep(func(st StepStats) {
		mu.Lock()
		defer mu.Unlock()
		steps++
		prompt += st.PromptTokens
		gen += st.GenerationTokens
	})
	reqs := workload(t, m, 6)
	reqs = append(reqs, &Request{Prompt: reqs[0].Prompt, MaxTokens: 5, N: 3})
	wantGen, wantQueries := 0, 0
	for _, r := range reqs {
		r.Sampling = sampling.DefaultParams()
		n := max(r.N, 1)
		wantQueries += n * len(r.Prompt)
		events, err := e.Submit(context.Background(), r)
		require.NoError(t, err)
		var first [8]bool
		for ev := range events {
			if ev.HasToken {
				wantGen++
				first[ev.Index] = true
			}
			if ev.Finish == "" {
				require.Nil(t, ev.Timing)
				continue
			}
			require.True(t, first[ev.Index], "a completion that ran has a token")
			require.NotNil(t, ev.Timing)
			tm := ev.Timing
			require.False(t, tm.Queued.IsZero())
			require.False(t, tm.Scheduled.Before(tm.Queued), "scheduled after queued")
		}
	}
	st := e.Stats().Scheduler
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, wantGen, gen, "tokens sampled")
	require.Equal(t, int(st.PrefillTokens), prompt, "prompt tokens computed")
	require.Positive(t, steps)
	// One request at a time, none preempted: each completion's tokens were looked up
	// once, and the siblings of the n=3 request found the shared prompt's full blocks.
	require.Equal(t, uint64(wantQueries), st.PrefixQueryTokens)
	require.Positive(t, st.PrefixHitTokens)
	require.Zero(t, st.Preemptions)
}
