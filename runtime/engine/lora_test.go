package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/specdec"
)

var greedy = sampling.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}

// writeAdapters writes n random PEFT adapters for m (ranks 4, 8, 16, …) and returns
// their directories.
func writeAdapters(t testing.TB, m *llm.Loaded, n int) []string {
	t.Helper()
	c := m.Model.Config
	var dirs []string
	for i := 0; i < n; i++ {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("a%d", i))
		_, err := loratest.WritePEFT(dir, &c, loratest.Options{Rank: 4 << (i % 3), Alpha: 16, RSLoRA: i == 2, Seed: uint64(100 + i), Amp: 0.2}, nil)
		require.NoError(t, err)
		dirs = append(dirs, dir)
	}
	return dirs
}

func loadAdapters(t testing.TB, e *Engine, dirs []string) {
	t.Helper()
	for i, d := range dirs {
		_, err := e.LoadAdapter(fmt.Sprintf("ad%d", i), lora.Source{Path: d}, false)
		require.NoError(t, err)
	}
}

// loraWorkload is greedy requests cycling through the adapters and the base model.
func loraWorkload(t testing.TB, m *llm.Loaded, n, adapters int) []*Request {
	reqs := workload(t, m, n)
	for i, r := range reqs {
		r.Sampling = greedy
		r.MaxTokens = 16 + i%9
		r.IgnoreEOS = true
		if k := i % (adapters + 1); k < adapters {
			r.Adapter = fmt.Sprintf("ad%d", k)
		}
	}
	return reqs
}

// solo runs each request alone on its own engine pass.
func solo(t testing.TB, e *Engine, reqs []*Request) [][]result {
	out := make([][]result, len(reqs))
	for i, r := range reqs {
		events, err := e.Submit(context.Background(), r)
		require.NoError(t, err)
		out[i] = collect(t, events)
	}
	return out
}

// TestLoRABatchEqualsSolo is the acceptance: requests for three adapters and the base
// model in one batch get, each, exactly the tokens they get alone — also with fewer
// slots than adapters (the scheduler holds the capped ones back), a single host copy
// (the others read again on demand), chunked prefill on several lanes, the prefix
// cache, and K decode steps — while the adapters do change the output.
func TestLoRABatchEqualsSolo(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 3)
	reqs := loraWorkload(t, m, 24, 3)
	ref := newEngine(t, m, Options{LoRA: LoRAOptions{MaxLoRAs: 3}})
	loadAdapters(t, ref, dirs)
	want := solo(t, ref, reqs)
	// The adapters matter: the same prompt under another adapter gives other tokens.
	differs, adapted := 0, 0
	for i, r := range reqs {
		if r.Adapter == "" {
			continue
		}
		adapted++
		base := *r
		base.Adapter = ""
		alone := solo(t, ref, []*Request{&base})
		if !slices.Equal(alone[0][0].ids, want[i][0].ids) {
			differs++
		}
	}
	require.GreaterOrEqual(t, differs, adapted-1, "the adapters should change the outputs")

	for _, cfg := range []struct {
		name string
		opt  Options
	}{
		{"3-slots", Options{LoRA: LoRAOptions{MaxLoRAs: 3}}},
		{"1-slot", Options{LoRA: LoRAOptions{MaxLoRAs: 1}}},
		{"2-slots-1-host-copy-evicts", Options{LoRA: LoRAOptions{MaxLoRAs: 1, MaxCPULoRAs: 1}}},
		{"lanes-prefix-K4", Options{LoRA: LoRAOptions{MaxLoRAs: 2, MaxRank: 32}, PrefillStreams: 3, MaxNumBatchedTokens: 48,
			PrefillChunk: 8, EnablePrefixCache: true, DecodeSteps: 4}},
		{"tiny-pool-preempts", Options{LoRA: LoRAOptions{MaxLoRAs: 3}, NumBlocks: 20, MaxNumBatchedTokens: 64}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			e, err := build(m.Model, m.Tokenizer, cfg.opt)
			require.NoError(t, err)
			loadAdapters(t, e, dirs)
			maxRunning := 0
			e.hook = func(stage string) {
				if stage == "step" {
					maxRunning = max(maxRunning, len(e.sched.RunningAdapters(nil)))
				}
			}
			// Everything is submitted before the loop starts: one batch from the first step.
			var chans []<-chan Event
			for _, r := range reqs {
				ch, err := e.Submit(context.Background(), r)
				require.NoError(t, err)
				chans = append(chans, ch)
			}
			go e.loop()
			t.Cleanup(func() { e.Close() })
			for i, ch := range chans {
				require.Equal(t, want[i], collect(t, ch), "request %d (adapter %q)", i, reqs[i].Adapter)
			}
			require.NoError(t, e.Close()) // the loop has published its last step's stats
			require.Equal(t, min(3, cfg.opt.LoRA.MaxLoRAs), maxRunning, "distinct adapters running at once")
			st := e.Stats()
			require.NotNil(t, st.LoRA)
			require.Empty(t, st.LoRA.Running)
			require.Empty(t, st.LoRA.Waiting)
			require.Equal(t, cfg.opt.LoRA.MaxLoRAs, st.LoRA.MaxLoRAs)
		})
	}
}

// A request waits only for its own adapter's read: while one adapter's files are being
// read (held here), requests for another adapter and the base run to completion.
func TestLoRANoWaitOnOtherLoads(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 2)
	e := newEngine(t, m, Options{LoRA: LoRAOptions{MaxLoRAs: 2, MaxCPULoRAs: 2}})
	loadAdapters(t, e, dirs)
	// A third adapter fills the host cache; ad0, least recently used, leaves it.
	third := writeAdapters(t, m, 3)[2]
	_, err := e.LoadAdapter("ad2", lora.Source{Path: third}, false)
	require.NoError(t, err)
	info, _ := e.Adapter("ad0")
	require.False(t, info.Resident)
	gate := make(chan struct{})
	reading := make(chan struct{}, 1)
	read := e.ad.read
	e.ad.mu.Lock()
	e.ad.read = func(src lora.Source) (*lora.Adapter, error) {
		if src.Path == dirs[0] {
			reading <- struct{}{}
			<-gate
		}
		return read(src)
	}
	e.ad.mu.Unlock()
	reqs := loraWorkload(t, m, 3, 2) // ad0, ad1, base
	slow, err := e.Submit(context.Background(), reqs[0])
	require.NoError(t, err)
	<-reading // ad0's read has started and is held
	for _, r := range reqs[1:] {
		got := solo(t, e, []*Request{r})
		require.Equal(t, FinishLength, got[0][0].finish)
	}
	close(gate)
	got := collect(t, slow)
	require.Len(t, got[0].ids, reqs[0].MaxTokens)
	info, _ = e.Adapter("ad0")
	require.True(t, info.Resident)
}

// Requests waiting for their adapter's read, queued ones and running ones are counted
// by adapter name (vllm:lora_requests_info).
func TestLoRAStats(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 3)
	e, err := build(m.Model, m.Tokenizer, Options{LoRA: LoRAOptions{MaxLoRAs: 1, MaxCPULoRAs: 2}})
	require.NoError(t, err)
	t.Cleanup(func() { go e.loop(); e.Close() })
	loadAdapters(t, e, dirs) // ad0 is not resident: ad1, ad2 are
	// ad1 and ad2 are held by their requests, so ad0's read waits for room.
	for _, name := range []string{"ad1", "ad2", "ad0", ""} {
		_, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 2, 3}, MaxTokens: 3, Adapter: name, Sampling: greedy})
		require.NoError(t, err)
	}
	info, _ := e.Adapter("ad0")
	require.False(t, info.Resident)
	e.intake() // the loop's own steps, by hand: ad1, ad2 and the base reach the scheduler
	_, err = e.sched.Step(time.Now())
	require.NoError(t, err)
	e.publishStats()
	st := e.Stats().LoRA
	require.Equal(t, &LoRAStats{MaxLoRAs: 1, Running: []string{"ad1"}, Waiting: []string{"ad0", "ad2"}}, st)
}

// Unloading an adapter lets its running requests finish with it; new ones are refused;
// loading it again (or in place) gives a new adapter whose prefix-cache blocks are its
// own.
func TestLoRAUnloadReload(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 2)
	e, err := build(m.Model, m.Tokenizer, Options{LoRA: LoRAOptions{MaxLoRAs: 2}, EnablePrefixCache: true})
	require.NoError(t, err)
	loadAdapters(t, e, dirs)
	reqs := loraWorkload(t, m, 1, 2)
	reqs[0].Prompt = append(reqs[0].Prompt, make([]int32, 40)...) // full blocks to share
	for i := range reqs[0].Prompt[len(reqs[0].Prompt)-40:] {
		reqs[0].Prompt[len(reqs[0].Prompt)-40+i] = int32(10 + i)
	}
	ch, err := e.Submit(context.Background(), reqs[0])
	require.NoError(t, err)
	require.NoError(t, e.UnloadAdapter("ad0")) // before the loop even starts
	go e.loop()
	t.Cleanup(func() { e.Close() })
	first := collect(t, ch)
	require.Equal(t, FinishLength, first[0].finish)
	_, err = e.Submit(context.Background(), reqs[0])
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, `adapter "ad0" is not loaded`)
	require.ErrorIs(t, e.UnloadAdapter("ad0"), ErrNoAdapter)
	_, ok := e.Adapter("ad0")
	require.False(t, ok)

	// The same files under the same name: the same tokens, but no prefix shared with
	// the unloaded adapter's blocks (its KV may be another adapter's, for all the
	// cache knows).
	_, err = e.LoadAdapter("ad0", lora.Source{Path: dirs[0]}, false)
	require.NoError(t, err)
	hits := e.Stats().Scheduler.PrefixHitTokens
	again := solo(t, e, reqs[:1])
	require.Equal(t, first, again[0])
	require.Equal(t, hits, e.Stats().Scheduler.PrefixHitTokens)
	// Now the new adapter's blocks are cached: the same request shares them.
	solo(t, e, reqs[:1])
	require.Greater(t, e.Stats().Scheduler.PrefixHitTokens, hits)
	// The base model with the same prompt shares nothing with the adapter's blocks.
	hits = e.Stats().Scheduler.PrefixHitTokens
	base := *reqs[0]
	base.Adapter = ""
	solo(t, e, []*Request{&base})
	require.Equal(t, hits, e.Stats().Scheduler.PrefixHitTokens)
	// In place: ad0 becomes the other adapter's files.
	_, err = e.LoadAdapter("ad0", lora.Source{Path: dirs[1]}, false)
	require.ErrorIs(t, err, ErrAdapterExists)
	_, err = e.LoadAdapter("ad0", lora.Source{Path: dirs[1]}, true)
	require.NoError(t, err)
	as1 := *reqs[0]
	as1.Adapter = "ad1"
	require.Equal(t, solo(t, e, []*Request{&as1})[0], solo(t, e, reqs[:1])[0])
}

// Bad adapters are refused at load with what is wrong, and nothing of them stays.
func TestLoRALoadErrors(t *testing.T) {
	m := openStories(t)
	c := m.Model.Config
	e := newEngine(t, m, Options{LoRA: LoRAOptions{MaxLoRAs: 1, MaxRank: 8}})
	big := t.TempDir()
	_, err := loratest.WritePEFT(big, &c, loratest.Options{Rank: 16}, nil)
	require.NoError(t, err)
	_, err = e.LoadAdapter("big", lora.Source{Path: big}, false)
	require.ErrorContains(t, err, "above the maximum LoRA rank 8")
	other := c
	other.Dim *= 2
	wrong := t.TempDir()
	_, err = loratest.WritePEFT(wrong, &other, loratest.Options{Rank: 4}, nil)
	require.NoError(t, err)
	_, err = e.LoadAdapter("wrong", lora.Source{Path: wrong}, false)
	require.ErrorContains(t, err, "takes 64 inputs")
	_, err = e.LoadAdapter("missing", lora.Source{Path: filepath.Join(big, "nope")}, false)
	require.Error(t, err)
	_, err = e.LoadAdapter("", lora.Source{Path: big}, false)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = e.LoadAdapter("bad\x00name", lora.Source{Path: big}, false)
	require.ErrorIs(t, err, ErrInvalid)
	require.Empty(t, e.Adapters())
	_, err = e.Submit(context.Background(), &Request{Prompt: []int32{1, 2}, MaxTokens: 2, Adapter: "big", Sampling: greedy})
	require.ErrorIs(t, err, ErrInvalid)
	off := newEngine(t, m, Options{})
	_, err = off.LoadAdapter("x", lora.Source{Path: big}, false)
	require.ErrorIs(t, err, ErrLoRADisabled)
	_, err = off.Submit(context.Background(), &Request{Prompt: []int32{1, 2}, MaxTokens: 2, Adapter: "x", Sampling: greedy})
	require.ErrorIs(t, err, ErrInvalid)
	_, err = New(m.Model, m.Tokenizer, Options{LoRA: LoRAOptions{MaxLoRAs: 2, MaxCPULoRAs: 1}})
	require.ErrorContains(t, err, "below max LoRAs")
	_, err = New(m.Model, m.Tokenizer, Options{LoRA: LoRAOptions{MaxLoRAs: 1, MaxRank: 1000}})
	require.ErrorContains(t, err, "max LoRA rank 1000")
}

// Files that change after the first read are not used under the old name: the
// request that needs them read again fails, saying so.
func TestLoRAChangedFiles(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 2)
	e := newEngine(t, m, Options{LoRA: LoRAOptions{MaxLoRAs: 1, MaxCPULoRAs: 1}})
	loadAdapters(t, e, dirs) // ad1 evicts ad0's host copy
	c := m.Model.Config
	_, err := loratest.WritePEFT(dirs[0], &c, loratest.Options{Rank: 4, Seed: 999}, nil)
	require.NoError(t, err)
	ch, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 2, 3}, MaxTokens: 3, Adapter: "ad0", Sampling: greedy})
	require.NoError(t, err)
	var last Event
	for ev := range ch {
		last = ev
	}
	require.Equal(t, FinishError, last.Finish)
	require.ErrorContains(t, last.Err, "changed since it was loaded")
	// The engine goes on.
	got := solo(t, e, []*Request{{Prompt: []int32{1, 2, 3}, MaxTokens: 3, Adapter: "ad1", Sampling: greedy}})
	require.Len(t, got[0][0].ids, 3)
}

// Speculative decoding with adapters: prompt lookup verifies with the adapter and
// keeps greedy outputs exact; a draft model has no adapters, so adapter rows do not
// speculate with it, and the outputs are exact too.
func TestLoRASpeculative(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 2)
	reqs := loraWorkload(t, m, 9, 2)
	ref := newEngine(t, m, Options{LoRA: LoRAOptions{MaxLoRAs: 2}})
	loadAdapters(t, ref, dirs)
	want := solo(t, ref, reqs)
	draft, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", m.Model.Backend(), model.Options{Weights: model.WeightsInt8})
	require.NoError(t, err)
	t.Cleanup(func() { draft.Close() })
	for _, sc := range []struct {
		name string
		opt  Options
	}{
		{"ngram", Options{Speculative: specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: 3, PromptLookupMin: 1, PromptLookupMax: 3}}},
		{"draft", Options{Speculative: specdec.Config{Method: specdec.MethodDraftModel, Model: "stories260K", NumSpeculativeTokens: 3}, Draft: draft.Model}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			opt := sc.opt
			opt.LoRA = LoRAOptions{MaxLoRAs: 2}
			e := newEngine(t, m, opt)
			loadAdapters(t, e, dirs)
			got := runAll(t, e, reqs)
			for i := range reqs {
				require.Equal(t, want[i], got[i], "request %d (%q)", i, reqs[i].Adapter)
			}
			require.NotZero(t, e.SpecStats().Drafts)
		})
	}
}

// Closing the engine ends requests waiting for an adapter's read.
func TestLoRACloseWhilePending(t *testing.T) {
	m := openStories(t)
	dirs := writeAdapters(t, m, 2)
	e, err := New(m.Model, m.Tokenizer, Options{LoRA: LoRAOptions{MaxLoRAs: 1, MaxCPULoRAs: 1}})
	require.NoError(t, err)
	loadAdapters(t, e, dirs)
	gate := make(chan struct{})
	read := e.ad.read
	var once sync.Once
	started := make(chan struct{})
	e.ad.mu.Lock()
	e.ad.read = func(src lora.Source) (*lora.Adapter, error) {
		once.Do(func() { close(started) })
		<-gate
		return read(src)
	}
	e.ad.mu.Unlock()
	ch, err := e.Submit(context.Background(), &Request{Prompt: []int32{1, 2, 3}, MaxTokens: 3, Adapter: "ad0", Sampling: greedy})
	require.NoError(t, err)
	<-started
	require.NoError(t, e.Close())
	var last Event
	for ev := range ch {
		last = ev
	}
	require.Equal(t, FinishAbort, last.Finish)
	require.True(t, errors.Is(last.Err, ErrClosed))
	close(gate) // the read ends after the close; its result is dropped
}
