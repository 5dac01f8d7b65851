package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// TestWaitingCapIsHard hammers Submit from many goroutines while the loop admits
// requests, and checks that no more are accepted than can run plus MaxWaiting. The
// loop is parked after each commit (before it publishes its stats), the moment at
// which a check against the published waiting count would see the queue empty.
func TestWaitingCapIsHard(t *testing.T) {
	m := openStories(t)
	const maxWaiting, seqs = 8, 1
	e, err := build(m.Model, m.Tokenizer, Options{MaxNumSeqs: seqs, MaxWaiting: maxWaiting, NumBlocks: 64})
	require.NoError(t, err)
	step := make(chan struct{})
	free := make(chan struct{})
	var steps atomic.Int64
	e.hook = func(stage string) {
		if stage == "commit" {
			steps.Add(1)
			select {
			case <-step:
			case <-free:
			}
		}
	}
	go e.loop()
	t.Cleanup(func() {
		close(free)
		e.Close()
	})

	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	var accepted atomic.Int64
	var chans sync.Map
	const rounds, storm = 12, 16
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for i := 0; i < storm; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// 400 tokens each: nothing finishes within the test's dozen steps.
				ev, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 403, 407}, MaxTokens: 400, IgnoreEOS: true, Sampling: greedy})
				if err != nil {
					require.ErrorIs(t, err, ErrQueueFull)
					return
				}
				accepted.Add(1)
				chans.Store(ev, true)
			}()
		}
		wg.Wait()
		if round > 0 || steps.Load() > 0 {
			step <- struct{}{} // one more loop iteration: stats, intake, a step, a commit
		}
	}
	require.LessOrEqual(t, int(accepted.Load()), seqs+maxWaiting,
		"accepted %d requests with %d running at most and a waiting cap of %d", accepted.Load(), seqs, maxWaiting)
	require.Equal(t, seqs+maxWaiting, int(accepted.Load()), "the queue did fill")
}

// TestNBeyondQueueIsInvalid: a request with more completions than the waiting queue
// can ever hold is invalid, not "queue full" (a client would retry that forever).
func TestNBeyondQueueIsInvalid(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{MaxWaiting: 4, NumBlocks: 64})
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	_, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 403}, MaxTokens: 2, N: 5, Sampling: greedy})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "n=5 completions can never fit the waiting queue, which holds 4")
	res := collect(t, mustSubmit(t, e, &Request{Prompt: []int32{1, 403}, MaxTokens: 2, N: 4, Sampling: greedy}))
	require.Len(t, res, 4)
}

// TestKVCacheSmallerThanContext: a cache that cannot hold one sequence at the model's
// context caps max_model_len with a warning (or, when max_model_len was asked for,
// refuses to start), so no request is ever cut short for want of blocks.
func TestKVCacheSmallerThanContext(t *testing.T) {
	m := openStories(t)
	require.Equal(t, 512, m.Config.MaxSeqLen)
	core, logs := observer.New(zapcore.WarnLevel)
	e := newEngine(t, m, Options{NumBlocks: 5, Logger: zap.New(core)})
	require.Equal(t, 80, e.Options().MaxModelLen, "5 blocks of 16 hold 80 tokens")
	warn := logs.FilterMessageSnippet("KV cache is too small").All()
	require.Len(t, warn, 1)
	require.Equal(t, int64(512), warn[0].ContextMap()["context"])

	// A request as long as the capped context gets every token it asks for.
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	res := collect(t, mustSubmit(t, e, &Request{Prompt: []int32{1, 403, 407, 261, 378}, MaxTokens: 75, IgnoreEOS: true, Sampling: greedy}))
	require.Len(t, res[0].ids, 75)
	require.Equal(t, FinishLength, res[0].finish)
	_, err := e.Submit(context.Background(), &Request{Prompt: make([]int32, 80), MaxTokens: 1, Sampling: greedy})
	require.ErrorIs(t, err, ErrInvalid, "an 80-token prompt does not fit an 80-token context")

	_, err = New(m.Model, m.Tokenizer, Options{NumBlocks: 5, MaxModelLen: 512})
	require.ErrorContains(t, err, "the KV cache is too small for max_model_len: it holds 80 tokens (5 blocks of 16), max_model_len is 512")
	e2 := newEngine(t, m, Options{NumBlocks: 5, MaxModelLen: 64})
	require.Equal(t, 64, e2.Options().MaxModelLen)
}
