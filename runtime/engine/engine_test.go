package engine

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func openStories(t testing.TB) *llm.Loaded {
	t.Helper()
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// workload builds n prompts of different lengths from the TinyStories text.
func workload(t testing.TB, m *llm.Loaded, n int) []*Request {
	text := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. One day, she saw a big red ball near the tree and wanted to play with it. Her mom said they had to go home soon."
	words := strings.Fields(text)
	rng := rand.New(rand.NewPCG(11, 12))
	var reqs []*Request
	for i := 0; i < n; i++ {
		k := 1 + rng.IntN(len(words)-1)
		start := rng.IntN(len(words) - k + 1)
		ids := m.Tokenizer.Encode(strings.Join(words[start:start+k], " "), m.Tokenizer.DefaultOptions())
		prompt := make([]int32, len(ids))
		for j, id := range ids {
			prompt[j] = int32(id)
		}
		reqs = append(reqs, &Request{Prompt: prompt, MaxTokens: 8 + rng.IntN(40), IgnoreEOS: i%3 == 0})
	}
	return reqs
}

type result struct {
	ids    []int32
	text   string
	finish FinishReason
	usage  *Usage
}

func collect(t testing.TB, events <-chan Event) []result {
	var out []result
	for ev := range events {
		for len(out) <= ev.Index {
			out = append(out, result{})
		}
		r := &out[ev.Index]
		if ev.HasToken {
			r.ids = append(r.ids, ev.Token)
		}
		r.text += ev.Text
		if ev.Finish != "" {
			require.NoError(t, ev.Err)
			r.finish, r.usage = ev.Finish, ev.Usage
		}
	}
	return out
}

func runAll(t testing.TB, e *Engine, reqs []*Request) [][]result {
	out := make([][]result, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		events, err := e.Submit(context.Background(), r)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = collect(t, events)
		}()
	}
	wg.Wait()
	return out
}

func newEngine(t testing.TB, m *llm.Loaded, opt Options) *Engine {
	e, err := New(m.Model, m.Tokenizer, opt)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// TestBatchingChangesNothing: 32 concurrent requests give exactly what each gives
// alone, under every scheduling configuration, including one that must preempt.
func TestBatchingChangesNothing(t *testing.T) {
	m := openStories(t)
	reqs := workload(t, m, 32)
	seed := uint64(42)
	for i := 0; i < 8; i++ { // some seeded sampled requests ride along
		r := *reqs[i]
		r.Sampling = sampling.Params{Temperature: 0.9, TopP: 0.9, TopK: 50, RepetitionPenalty: 1.1}
		r.Seed = &seed
		reqs = append(reqs, &r)
	}
	for i := range reqs {
		if reqs[i].Sampling.TopP == 0 {
			reqs[i].Sampling = sampling.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}
		}
	}
	// Alone: one engine, one request at a time.
	alone := newEngine(t, m, Options{})
	want := make([][]result, len(reqs))
	for i, r := range reqs {
		events, err := alone.Submit(context.Background(), r)
		require.NoError(t, err)
		want[i] = collect(t, events)
	}
	for _, cfg := range []struct {
		name string
		opt  Options
		pre  bool
	}{
		{"plain", Options{}, false},
		{"prefix-cache", Options{EnablePrefixCache: true}, false},
		{"4-streams", Options{PrefillStreams: 4, MaxNumBatchedTokens: 64, PrefillChunk: 16}, false},
		{"K8", Options{DecodeSteps: 8}, false},
		{"K8-4-streams-prefix", Options{DecodeSteps: 8, PrefillStreams: 4, EnablePrefixCache: true, MaxNumBatchedTokens: 48}, false},
		{"tiny-pool", Options{NumBlocks: 24, MaxNumBatchedTokens: 64}, true},
		{"tiny-pool-K8-prefix", Options{NumBlocks: 24, DecodeSteps: 8, EnablePrefixCache: true, MaxNumBatchedTokens: 64}, true},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			e := newEngine(t, m, cfg.opt)
			got := runAll(t, e, reqs)
			for i := range reqs {
				require.Equal(t, want[i], got[i], "request %d", i)
			}
			st := e.Stats()
			if cfg.pre {
				require.Greater(t, st.Scheduler.Preemptions, uint64(0), "the pool was meant to force preemption")
			}
			require.Equal(t, 0, st.Running)
			require.Equal(t, st.NumBlocks, st.FreeBlocks, "every block free after all requests ended")
		})
	}
}

func TestPrefixReuseSkipsSharedPrefill(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{EnablePrefixCache: true})
	prefix := make([]int32, 64)
	for i := range prefix {
		prefix[i] = int32(3 + (i*37)%500)
	}
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	first := append(append([]int32{1}, prefix...), 400, 401, 402)
	collect(t, mustSubmit(t, e, &Request{Prompt: first, MaxTokens: 2, Sampling: greedy}))
	before := e.Stats().Scheduler
	second := append(append([]int32{1}, prefix...), 300, 301, 302, 303, 304)
	collect(t, mustSubmit(t, e, &Request{Prompt: second, MaxTokens: 2, Sampling: greedy}))
	after := e.Stats().Scheduler
	// 65 prompt tokens (BOS + prefix) fill 4 full blocks = 64 tokens shared; the
	// rest of the second prompt is prefilled.
	require.Equal(t, uint64(64), after.PrefixHitTokens-before.PrefixHitTokens)
	require.Equal(t, uint64(len(second)-64), after.PrefillTokens-before.PrefillTokens)
}

func mustSubmit(t testing.TB, e *Engine, r *Request) <-chan Event {
	ev, err := e.Submit(context.Background(), r)
	require.NoError(t, err)
	return ev
}

func TestCancelFreesBlocks(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	events, err := e.Submit(ctx, &Request{Prompt: []int32{1, 403, 407}, MaxTokens: 400, IgnoreEOS: true,
		Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}})
	require.NoError(t, err)
	// Stats is the state after the last finished step, and the first token is sent
	// during the step that made it: once the second has come, the first step's state
	// is published (reading it after the first token alone raced with that step's end).
	<-events
	<-events
	require.Equal(t, 1, e.Stats().Running)
	cancel()
	for range events {
	}
	require.Eventually(t, func() bool {
		st := e.Stats()
		return st.Running == 0 && st.FreeBlocks == st.NumBlocks
	}, 5*time.Second, time.Millisecond)
}

func TestStopStringsAndN(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{DecodeSteps: 4})
	prompt := []int32{1, 403, 407, 261, 378} // "Once upon a time"
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	full := collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 48, Sampling: greedy}))[0]
	require.Equal(t, FinishLength, full.finish)
	require.True(t, strings.HasPrefix(full.text, ", there was a little girl named Lily."), full.text)
	cut := collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 48, Sampling: greedy, Stop: []string{"Lily"}}))[0]
	require.Equal(t, FinishStop, cut.finish)
	require.Equal(t, ", there was a little girl named ", cut.text)
	// n=3 seeded: three different completions, each reproducible.
	seed := uint64(7)
	r := &Request{Prompt: prompt, MaxTokens: 20, N: 3, Seed: &seed, Sampling: sampling.Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}}
	a := collect(t, mustSubmit(t, e, r))
	b := collect(t, mustSubmit(t, e, r))
	require.Len(t, a, 3)
	require.Equal(t, a, b)
	require.NotEqual(t, a[0].ids, a[1].ids)
	require.Equal(t, 20, a[2].usage.CompletionTokens)
	require.Equal(t, len(prompt), a[2].usage.PromptTokens)
}

func TestMinTokensAndStopTokens(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	prompt := []int32{1, 403, 407, 261, 378}
	full := collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 30, Sampling: greedy}))[0]
	stopAt := full.ids[5]
	r := collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 30, Sampling: greedy, StopTokenIDs: []int32{stopAt}}))[0]
	require.Equal(t, FinishStop, r.finish)
	require.Equal(t, full.ids[:6], r.ids)
	// With min_tokens past it, the stop token is suppressed at step 5.
	r = collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 30, MinTokens: 10, Sampling: greedy, StopTokenIDs: []int32{stopAt}}))[0]
	require.NotEqual(t, stopAt, r.ids[5])
	require.GreaterOrEqual(t, len(r.ids), 10)
}

func TestInvalidRequests(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{MaxModelLen: 64})
	ok := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	for _, c := range []struct {
		r    Request
		want string
	}{
		{Request{MaxTokens: 1, Sampling: ok}, "empty prompt"},
		{Request{Prompt: make([]int32, 64), MaxTokens: 1, Sampling: ok}, "does not fit the maximum model length of 64"},
		{Request{Prompt: []int32{1}, MaxTokens: 0, Sampling: ok}, "max_tokens must be at least 1"},
		{Request{Prompt: []int32{1, 9999}, MaxTokens: 1, Sampling: ok}, "token id 9999 outside the vocabulary"},
		{Request{Prompt: []int32{1}, MaxTokens: 1, Sampling: sampling.Params{Temperature: -1, TopP: 1, RepetitionPenalty: 1}}, "temperature"},
		{Request{Prompt: []int32{1}, MaxTokens: 1, Sampling: ok, TopLogprobs: 21}, "top_logprobs"},
		{Request{Prompt: []int32{1}, MaxTokens: 1, Sampling: ok, Stop: []string{""}}, "empty stop string"},
	} {
		_, err := e.Submit(context.Background(), &c.r)
		require.ErrorIs(t, err, ErrInvalid)
		require.ErrorContains(t, err, c.want)
	}
}

func TestLogprobs(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{})
	events := mustSubmit(t, e, &Request{Prompt: []int32{1, 403, 407, 261, 378}, MaxTokens: 3, Logprobs: true, TopLogprobs: 5,
		Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}})
	n := 0
	for ev := range events {
		if !ev.HasToken {
			continue
		}
		n++
		require.Len(t, ev.TopLogprobs, 5)
		require.Equal(t, ev.Token, ev.TopLogprobs[0].Token, "greedy picks the top token")
		require.InDelta(t, ev.TopLogprobs[0].Logprob, ev.Logprob, 1e-6)
		require.Less(t, ev.Logprob, float32(0))
	}
	require.Equal(t, 3, n)
}

func TestQueueFull(t *testing.T) {
	m := openStories(t)
	e := newEngine(t, m, Options{MaxNumSeqs: 1, MaxNumBatchedTokens: 16, MaxWaiting: 1})
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	var chans []<-chan Event
	var full int
	for i := 0; i < 6; i++ {
		ev, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 403}, MaxTokens: 200, IgnoreEOS: true, Sampling: greedy})
		if err != nil {
			require.ErrorIs(t, err, ErrQueueFull)
			full++
			continue
		}
		chans = append(chans, ev)
	}
	require.Greater(t, full, 0)
	for _, c := range chans {
		res := collect(t, c)
		require.Equal(t, FinishLength, res[0].finish)
	}
}

func TestCloseAbortsAndRefuses(t *testing.T) {
	m := openStories(t)
	e, err := New(m.Model, m.Tokenizer, Options{})
	require.NoError(t, err)
	events := mustSubmit(t, e, &Request{Prompt: []int32{1, 403}, MaxTokens: 400, IgnoreEOS: true, Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}})
	<-events
	require.NoError(t, e.Close())
	res := collect(t, events)
	require.Equal(t, FinishAbort, res[0].finish)
	_, err = e.Submit(context.Background(), &Request{Prompt: []int32{1}, MaxTokens: 1})
	require.ErrorIs(t, err, ErrClosed)
}

// TestExtraEOSIDs: a checkpoint's extra end tokens (Llama 3's <|eot_id|>) end a
// completion like EOS, and ignore_eos overrides them.
func TestExtraEOSIDs(t *testing.T) {
	m := openStories(t)
	greedy := sampling.Params{TopP: 1, RepetitionPenalty: 1}
	prompt := []int32{1, 403, 407, 261, 378}
	plain := newEngine(t, m, Options{})
	full := collect(t, mustSubmit(t, plain, &Request{Prompt: prompt, MaxTokens: 30, Sampling: greedy}))[0]
	end := full.ids[4]
	e := newEngine(t, m, Options{EOSIDs: []int32{m.Tokenizer.EOS(), end}})
	r := collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 30, Sampling: greedy}))[0]
	require.Equal(t, FinishStop, r.finish)
	require.Equal(t, full.ids[:5], r.ids)
	r = collect(t, mustSubmit(t, e, &Request{Prompt: prompt, MaxTokens: 30, Sampling: greedy, IgnoreEOS: true}))[0]
	require.Equal(t, full.ids, r.ids)
	_, err := New(m.Model, m.Tokenizer, Options{EOSIDs: []int32{99999}})
	require.ErrorContains(t, err, "end-of-sequence id 99999 outside the vocabulary")
}

// TestNSharesPromptBlocks: with the prefix cache on, the n completions of one request
// prefill the prompt once; the others share its full blocks, and the results are
// those of an engine without sharing.
func TestNSharesPromptBlocks(t *testing.T) {
	m := openStories(t)
	prompt := make([]int32, 40)
	prompt[0] = 1
	for i := 1; i < len(prompt); i++ {
		prompt[i] = int32(3 + (i*29)%500)
	}
	seed := uint64(11)
	r := &Request{Prompt: prompt, MaxTokens: 12, N: 3, Seed: &seed, Sampling: sampling.Params{Temperature: 1, TopP: 0.95, RepetitionPenalty: 1}}
	plain := collect(t, mustSubmit(t, newEngine(t, m, Options{}), r))
	e := newEngine(t, m, Options{EnablePrefixCache: true})
	shared := collect(t, mustSubmit(t, e, r))
	require.Equal(t, plain, shared)
	st := e.Stats().Scheduler
	require.Equal(t, uint64(2*32), st.PrefixHitTokens, "two siblings × two full 16-token blocks")
	require.Equal(t, uint64(40+2*(40-32)), st.PrefillTokens, "the prompt once, then only the siblings' last partial block")
}
