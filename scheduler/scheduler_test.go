package scheduler

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newSched(t testing.TB, cfg Config) *Scheduler {
	t.Helper()
	s, err := New(cfg)
	require.NoError(t, err)
	return s
}

func seqTokens(base, n int) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = int32(base + i)
	}
	return t
}

func add(t testing.TB, s *Scheduler, id string, prompt []int32, maxNew int) *Request {
	t.Helper()
	r, err := s.Add(NewRequest{ID: id, Prompt: prompt, MaxNewTokens: maxNew})
	require.NoError(t, err)
	return r
}

// results builds results for every plan item: token 7 for each decode step and
// completed prefill; fin ends the listed requests.
func results(p *Plan, fin map[*Request]FinishReason) []Result {
	var out []Result
	for _, d := range p.Decode {
		toks := make([]int32, d.NumSteps)
		for i := range toks {
			toks[i] = 7
		}
		out = append(out, Result{Req: d.Req, Tokens: toks, Finish: fin[d.Req]})
	}
	for _, g := range p.Prefill {
		for _, it := range g.Items {
			if it.Complete() {
				out = append(out, Result{Req: it.Req, Tokens: []int32{7}, Finish: fin[it.Req]})
			} else if f, ok := fin[it.Req]; ok {
				out = append(out, Result{Req: it.Req, Finish: f})
			}
		}
	}
	return out
}

func step(t testing.TB, s *Scheduler) *Plan {
	t.Helper()
	p, err := s.Schedule()
	require.NoError(t, err)
	require.NoError(t, s.Check())
	require.NoError(t, s.Commit(p, results(p, nil)))
	require.NoError(t, s.Check())
	return p
}

func prefillItems(p *Plan) []PrefillItem {
	var out []PrefillItem
	for _, g := range p.Prefill {
		out = append(out, g.Items...)
	}
	return out
}

func TestPrefillThenDecode(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 16, BlockSize: 4, MaxNumSeqs: 4, MaxNumBatchedTokens: 64})
	r := add(t, s, "a", seqTokens(1, 10), 3)
	p := step(t, s)
	items := prefillItems(p)
	require.Len(t, items, 1)
	assert.Equal(t, 0, items[0].Start)
	assert.Equal(t, 10, items[0].End)
	assert.Len(t, items[0].BlockTable, 3)
	assert.Equal(t, 11, len(r.Tokens()))

	p = step(t, s)
	require.Len(t, p.Decode, 1)
	assert.Equal(t, 10, p.Decode[0].Pos)
	assert.Equal(t, 1, p.Decode[0].NumSteps)
	p = step(t, s)
	require.Len(t, p.Decode, 1)
	assert.Equal(t, 11, p.Decode[0].Pos)
	assert.True(t, r.Finished())
	assert.Equal(t, FinishedLength, r.Finish())
	assert.Equal(t, []int32{7, 7, 7}, r.Output())
	assert.Equal(t, 0, s.NumRunning())
	assert.Equal(t, 16, s.Pool().NumAvailable())
	fin := s.TakeFinished(nil)
	assert.Equal(t, []*Request{r}, fin)
	assert.Empty(t, s.TakeFinished(nil))
}

func TestAdmissionWatermark(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 8, BlockSize: 4, WatermarkBlocks: 2, MaxNumBatchedTokens: 64, MaxNumSeqs: 4})
	add(t, s, "a", seqTokens(0, 16), 8) // 4 blocks
	add(t, s, "b", seqTokens(100, 8), 8)
	p := step(t, s)
	// a takes 4 blocks; b would need 2 more, leaving 2 = watermark: admitted.
	assert.Len(t, prefillItems(p), 2)

	s = newSched(t, Config{NumBlocks: 8, BlockSize: 4, WatermarkBlocks: 3, MaxNumBatchedTokens: 64, MaxNumSeqs: 4})
	add(t, s, "a", seqTokens(0, 16), 8)
	b := add(t, s, "b", seqTokens(100, 8), 8)
	p = step(t, s)
	assert.Len(t, prefillItems(p), 1, "b would leave 2 < watermark 3")
	assert.Equal(t, 1, s.NumWaiting())
	assert.False(t, b.Finished())
}

func TestChunkingAndBudget(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 64, BlockSize: 4, MaxNumBatchedTokens: 20, PrefillChunk: 8, MaxNumSeqs: 4})
	a := add(t, s, "a", seqTokens(0, 20), 4)
	b := add(t, s, "b", seqTokens(100, 30), 4)
	p := step(t, s)
	items := prefillItems(p)
	require.Len(t, items, 3-1)
	assert.Equal(t, [2]int{0, 8}, [2]int{items[0].Start, items[0].End})
	assert.Equal(t, a, items[0].Req)
	assert.Equal(t, [2]int{0, 8}, [2]int{items[1].Start, items[1].End})
	assert.Equal(t, b, items[1].Req)
	assert.Equal(t, 16, p.NumTokens)

	p = step(t, s)
	items = prefillItems(p)
	assert.Equal(t, [2]int{8, 16}, [2]int{items[0].Start, items[0].End})
	assert.Equal(t, [2]int{8, 16}, [2]int{items[1].Start, items[1].End})
	p = step(t, s)
	items = prefillItems(p)
	assert.Equal(t, [2]int{16, 20}, [2]int{items[0].Start, items[0].End}, "a's last chunk")
	assert.Equal(t, [2]int{16, 24}, [2]int{items[1].Start, items[1].End})
	assert.LessOrEqual(t, p.NumTokens, 20)

	// Decode first: a decodes (1 token), b continues with <= 19 tokens.
	p = step(t, s)
	require.Len(t, p.Decode, 1)
	assert.Equal(t, a, p.Decode[0].Req)
	items = prefillItems(p)
	require.Len(t, items, 1)
	assert.Equal(t, [2]int{24, 30}, [2]int{items[0].Start, items[0].End})
}

func TestBudgetSharedWithDecode(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 64, BlockSize: 4, MaxNumBatchedTokens: 10, MaxNumSeqs: 4})
	add(t, s, "a", seqTokens(0, 4), 10)
	add(t, s, "b", seqTokens(10, 4), 10)
	step(t, s)
	c := add(t, s, "c", seqTokens(100, 20), 4)
	p := step(t, s)
	require.Len(t, p.Decode, 2)
	items := prefillItems(p)
	require.Len(t, items, 1)
	assert.Equal(t, c, items[0].Req)
	assert.Equal(t, 8, items[0].End, "10 budget - 2 decode tokens")
	assert.Equal(t, 10, p.NumTokens)
}

func TestLongPrefillCap(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 256, BlockSize: 4, MaxNumBatchedTokens: 64, PrefillChunk: 16,
		MaxLongPrefills: 1, LongPromptThreshold: 32, MaxNumSeqs: 8})
	l1 := add(t, s, "l1", seqTokens(0, 100), 2)
	l2 := add(t, s, "l2", seqTokens(1000, 100), 2)
	sh := add(t, s, "s", seqTokens(2000, 10), 2)
	p := step(t, s)
	var reqs []*Request
	for _, it := range prefillItems(p) {
		reqs = append(reqs, it.Req)
	}
	assert.Equal(t, []*Request{l1, sh}, reqs, "l2 skipped while l1 prefills; the short one overtakes it")
	assert.Equal(t, 1, s.NumWaiting())
	for !l1.Finished() && l1.state == statePrefill {
		p = step(t, s)
		for _, it := range prefillItems(p) {
			assert.NotEqual(t, l2, it.Req)
		}
	}
	p = step(t, s)
	found := false
	for _, it := range prefillItems(p) {
		found = found || it.Req == l2
	}
	assert.True(t, found, "l2 admitted once l1's prefill is done")
}

func TestPreemptionNewestFirstKeepsTokens(t *testing.T) {
	// 6 blocks of 4 tokens. a and b each take 2 blocks for their 8-token
	// prompts; decoding grows them until blocks run out.
	s := newSched(t, Config{NumBlocks: 5, BlockSize: 4, MaxNumBatchedTokens: 32, MaxNumSeqs: 4})
	a := add(t, s, "a", seqTokens(0, 8), 8)
	b := add(t, s, "b", seqTokens(100, 8), 8)
	step(t, s) // both prefilled: 4 blocks, tokens 9 each
	// Step: a needs block (pos 8 -> 3rd block): takes the 5th. b needs one: none -> b preempted.
	p := step(t, s)
	require.Len(t, p.Decode, 1)
	assert.Equal(t, a, p.Decode[0].Req)
	assert.Equal(t, 1, b.Preemptions())
	assert.Equal(t, uint64(1), s.Stats().Preemptions)
	assert.Equal(t, 1, s.NumWaiting())
	assert.Equal(t, 9, len(b.Tokens()), "generated token kept")
	assert.Equal(t, 0, b.NumComputed())
	// Run a to completion; then b re-prefills prompt+generated (9 tokens).
	for !a.Finished() {
		step(t, s)
	}
	var re *PrefillItem
	for re == nil {
		p = step(t, s)
		for _, it := range prefillItems(p) {
			if it.Req == b {
				re = &it
			}
		}
	}
	assert.Equal(t, 0, re.Start)
	assert.GreaterOrEqual(t, re.End, 9)
	for !b.Finished() {
		step(t, s)
	}
	assert.Len(t, b.Output(), 8)
	assert.Equal(t, 5, s.Pool().NumAvailable())
}

func TestPreemptsSelfWhenNewest(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 4, BlockSize: 4, MaxNumBatchedTokens: 32, MaxNumSeqs: 4})
	a := add(t, s, "a", seqTokens(0, 8), 6)
	b := add(t, s, "b", seqTokens(100, 8), 6)
	step(t, s)
	p := step(t, s) // a needs a 3rd block: preempts b (newest) and decodes
	require.Len(t, p.Decode, 1)
	assert.Equal(t, a, p.Decode[0].Req)
	assert.Equal(t, stateWaiting, b.state)
	assert.Equal(t, 0, a.Preemptions())
}

func TestPrefixHitAccounting(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 64, BlockSize: 16, MaxNumBatchedTokens: 256, MaxNumSeqs: 4, EnablePrefixCache: true})
	prefix := seqTokens(1, 64)
	a := add(t, s, "a", append(append([]int32{}, prefix...), seqTokens(500, 10)...), 4)
	step(t, s)
	assert.Equal(t, uint64(74), s.Stats().PrefillTokens)
	b := add(t, s, "b", append(append([]int32{}, prefix...), seqTokens(900, 20)...), 4)
	p := step(t, s)
	items := prefillItems(p)
	require.Len(t, items, 1)
	assert.Equal(t, b, items[0].Req)
	assert.Equal(t, 64, items[0].Start, "prefill only the suffix")
	assert.Equal(t, 84, items[0].End)
	assert.Equal(t, uint64(74+20), s.Stats().PrefillTokens)
	assert.Equal(t, uint64(64), s.Stats().PrefixHitTokens)
	assert.Equal(t, a.blocks[:4], b.blocks[:4], "shared blocks")
	assert.Equal(t, 2, s.Pool().RefCount(a.blocks[0]))
	require.NoError(t, s.Check())

	// Exactly the prefix as prompt: the last block holds the last token and is
	// recomputed.
	c := add(t, s, "c", append([]int32{}, prefix...), 2)
	p = step(t, s)
	items = prefillItems(p)
	require.Len(t, items, 1)
	assert.Equal(t, c, items[0].Req)
	assert.Equal(t, 48, items[0].Start)
	assert.Equal(t, 64, items[0].End)

	// After everyone finishes, the blocks stay cached and revive.
	for s.NumRunning() > 0 {
		step(t, s)
	}
	assert.Zero(t, s.Usage())
	assert.Positive(t, s.Pool().NumCached())
	d := add(t, s, "d", append(append([]int32{}, prefix...), 1, 2, 3), 2)
	p = step(t, s)
	assert.Equal(t, 64, prefillItems(p)[0].Start)
	_ = d
}

func TestPrefixCacheOffComputesAll(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 64, BlockSize: 16, MaxNumBatchedTokens: 256, MaxNumSeqs: 4})
	add(t, s, "a", seqTokens(1, 80), 4)
	step(t, s)
	add(t, s, "b", seqTokens(1, 80), 4)
	p := step(t, s)
	assert.Equal(t, 0, prefillItems(p)[0].Start)
	assert.Zero(t, s.Stats().PrefixHitTokens)
}

func TestCancelMidPlan(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 8, BlockSize: 4, MaxNumBatchedTokens: 32, MaxNumSeqs: 4})
	a := add(t, s, "a", seqTokens(0, 12), 8)
	p, err := s.Schedule()
	require.NoError(t, err)
	assert.True(t, s.Cancel("a"))
	assert.Equal(t, Aborted, a.Finish())
	assert.Equal(t, 0, s.NumRunning())
	// Blocks still held until the plan is committed.
	assert.Equal(t, 5, s.Pool().NumAvailable())
	require.NoError(t, s.Check())
	require.NoError(t, s.Commit(p, results(p, nil)), "a's result is ignored")
	assert.Equal(t, 8, s.Pool().NumAvailable())
	assert.Equal(t, []int32{}, a.Output())
	assert.Zero(t, s.Stats().PrefillTokens, "cancelled chunk not counted")
	require.NoError(t, s.Check())
	assert.False(t, s.Cancel("a"), "already gone")

	// Cancel between plans frees at once.
	b := add(t, s, "b", seqTokens(0, 12), 8)
	step(t, s)
	assert.Equal(t, 5, s.Pool().NumAvailable())
	s.Cancel("b")
	assert.Equal(t, 8, s.Pool().NumAvailable())
	assert.Equal(t, Aborted, b.Finish())
	fin := s.TakeFinished(nil)
	assert.Equal(t, []*Request{a, b}, fin)
}

func TestCancelWaiting(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 8, BlockSize: 4})
	a := add(t, s, "a", seqTokens(0, 12), 8)
	assert.True(t, s.Cancel("a"))
	assert.Equal(t, 0, s.NumWaiting())
	assert.Equal(t, Aborted, a.Finish())
}

func TestDeadline(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 8, BlockSize: 4, MaxNumBatchedTokens: 32, MaxNumSeqs: 4})
	t0 := time.Unix(1000, 0)
	a, err := s.Add(NewRequest{ID: "a", Prompt: seqTokens(0, 4), MaxNewTokens: 100, Deadline: t0.Add(3 * time.Second)})
	require.NoError(t, err)
	b, err := s.Add(NewRequest{ID: "b", Prompt: seqTokens(0, 4), MaxNewTokens: 100, Deadline: t0.Add(time.Second)})
	require.NoError(t, err)
	c := add(t, s, "c", seqTokens(0, 4), 3)
	p, err := s.Step(t0)
	require.NoError(t, err)
	require.NoError(t, s.Commit(p, results(p, nil)))
	p, err = s.Step(t0.Add(time.Second)) // b expires before scheduling
	require.NoError(t, err)
	assert.Equal(t, Deadline, b.Finish())
	assert.Len(t, p.Decode, 2)
	s.Expire(t0.Add(5 * time.Second)) // a expires mid-plan: deferred release
	assert.Equal(t, Deadline, a.Finish())
	require.NoError(t, s.Check())
	require.NoError(t, s.Commit(p, results(p, nil)))
	require.NoError(t, s.Check())
	assert.False(t, c.Finished())
}

func TestRejection(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 4, BlockSize: 4, MaxModelLen: 12, WatermarkBlocks: 1})
	r, err := s.Add(NewRequest{ID: "long", Prompt: seqTokens(0, 12), MaxNewTokens: 4})
	assert.ErrorIs(t, err, ErrRejected)
	assert.Contains(t, err.Error(), "max length")
	assert.Equal(t, Rejected, r.Finish())
	_, err = s.Add(NewRequest{ID: "empty", MaxNewTokens: 4})
	assert.ErrorIs(t, err, ErrRejected)
	_, err = s.Add(NewRequest{ID: "zero", Prompt: seqTokens(0, 2)})
	assert.ErrorIs(t, err, ErrRejected)
	assert.Equal(t, 0, s.NumWaiting())

	// Pool too small for the first chunk with the watermark.
	s = newSched(t, Config{NumBlocks: 4, BlockSize: 4, WatermarkBlocks: 2, MaxNumBatchedTokens: 64})
	_, err = s.Add(NewRequest{ID: "big", Prompt: seqTokens(0, 13), MaxNewTokens: 2})
	assert.ErrorIs(t, err, ErrRejected)
	assert.Contains(t, err.Error(), "watermark")

	// Clamping: max new tokens limited by max length, ends with length.
	s = newSched(t, Config{NumBlocks: 8, BlockSize: 4, MaxModelLen: 10})
	r = add(t, s, "c", seqTokens(0, 6), 100)
	assert.Equal(t, 4, r.MaxNewTokens())
	for !r.Finished() {
		step(t, s)
	}
	assert.Equal(t, FinishedLength, r.Finish())
	assert.Len(t, r.Tokens(), 10)

	_, err = s.Add(NewRequest{ID: "d", Prompt: seqTokens(0, 2), MaxNewTokens: 1})
	require.NoError(t, err)
	_, err = s.Add(NewRequest{ID: "d", Prompt: seqTokens(0, 2), MaxNewTokens: 1})
	assert.ErrorIs(t, err, ErrDuplicateID)

	_, err = New(Config{NumBlocks: 4, MaxNumSeqs: 8, MaxNumBatchedTokens: 4})
	assert.Error(t, err)
}

func TestMultiStepReservation(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 32, BlockSize: 4, MaxNumBatchedTokens: 64, MaxNumSeqs: 4, DecodeSteps: 8})
	a := add(t, s, "a", seqTokens(0, 6), 20)
	step(t, s) // prefill: 7 tokens, 2 blocks
	p, err := s.Schedule()
	require.NoError(t, err)
	require.Len(t, p.Decode, 1)
	d := p.Decode[0]
	assert.Equal(t, 8, d.NumSteps)
	assert.Equal(t, 6, d.Pos)
	assert.Len(t, d.BlockTable, 4, "positions 6..13 need blocks 0..3")
	// Engine finishes early with 3 tokens: fewer allowed.
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{1, 2, 3}}}))
	assert.Equal(t, 9, a.NumComputed())
	require.NoError(t, s.Check())

	// A waiting request switches back to single steps.
	add(t, s, "b", seqTokens(50, 4), 2)
	p, err = s.Schedule()
	require.NoError(t, err)
	assert.Equal(t, 1, p.Decode[0].NumSteps)
	require.NoError(t, s.Commit(p, results(p, nil)))

	// Near max tokens: NumSteps is capped by what is left.
	for a.remaining() > 8 {
		step(t, s)
	}
	for !a.Finished() {
		p = step(t, s)
		if len(p.Decode) > 0 {
			assert.LessOrEqual(t, p.Decode[0].NumSteps, 8)
		}
	}
	assert.Len(t, a.Output(), 20)
}

func TestCommitValidation(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 32, BlockSize: 4, DecodeSteps: 2})
	a := add(t, s, "a", seqTokens(0, 6), 20)
	p, err := s.Schedule()
	require.NoError(t, err)
	_, err = s.Schedule()
	assert.ErrorIs(t, err, ErrPlanPending)
	assert.ErrorIs(t, s.Commit(p, nil), ErrInvalidReply, "completed prefill needs its token")
	assert.ErrorIs(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{1, 2}}}), ErrInvalidReply)
	assert.ErrorIs(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{1}}, {Req: a, Tokens: []int32{1}}}), ErrInvalidReply)
	assert.ErrorIs(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{1}, Finish: Deadline}}), ErrInvalidReply)
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{1}}}))
	assert.ErrorIs(t, s.Commit(p, nil), ErrNoPlan)
	p, _ = s.Schedule()
	assert.ErrorIs(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{1, 2, 3}}}), ErrInvalidReply)
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{9}, Finish: FinishedStop}}))
	assert.Equal(t, FinishedStop, a.Finish())
	assert.Equal(t, []int32{1, 9}, a.Output())
}

func TestLanes(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 256, BlockSize: 4, MaxNumBatchedTokens: 256, PrefillChunk: 128, MaxNumSeqs: 16, PrefillLanes: 3})
	add(t, s, "long", seqTokens(0, 200), 2)
	for i := 0; i < 5; i++ {
		add(t, s, fmt.Sprint("s", i), seqTokens(1000*(i+1), 20), 2)
	}
	p, err := s.Schedule()
	require.NoError(t, err)
	require.Len(t, p.Prefill, 3)
	assert.Equal(t, 0, p.Prefill[0].Lane)
	require.Len(t, p.Prefill[0].Items, 1)
	assert.Equal(t, "long", p.Prefill[0].Items[0].Req.ID(), "the long chunk has a lane to itself")
	assert.Len(t, p.Prefill[1].Items, 3)
	assert.Len(t, p.Prefill[2].Items, 2)
	assert.Equal(t, 6, p.NumSeqs())
	require.NoError(t, s.Commit(p, results(p, nil)))
}

// TestLookahead follows one request through verification passes: the drafted slots
// are reserved and charged, the accepted positions become computed, the blocks held
// only for rejected drafts are released, and a block is registered in the prefix
// index only with accepted tokens.
func TestLookahead(t *testing.T) {
	s := newSched(t, Config{BlockSize: 4, NumBlocks: 8, MaxNumBatchedTokens: 64, SpecTokens: 3, EnablePrefixCache: true})
	r := add(t, s, "a", []int32{1, 2, 3}, 20)
	p := plan(t, s)
	require.Len(t, p.Prefill, 1)
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{10}, Lookahead: 3}}))

	// Pass 1: positions 3 (token 10) and 4..6 (drafts): two blocks, 4 tokens charged.
	p = plan(t, s)
	require.Len(t, p.Decode, 1)
	d := p.Decode[0]
	require.Equal(t, DecodeItem{Req: r, NumSteps: 1, Pos: 3, BlockTable: d.BlockTable, Lookahead: 3}, d)
	require.Len(t, d.BlockTable, 2)
	require.Equal(t, 4, p.NumTokens)
	require.Equal(t, 3, p.NumLookahead)
	free := s.Pool().NumFree()
	// One draft accepted (11), then 99 sampled: drafts at 5 and 6 were rejected.
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{11, 99}, Lookahead: 2}}))
	require.Equal(t, 5, r.NumComputed())
	require.Equal(t, []int32{10, 11, 99}, r.Output())
	require.Equal(t, free, s.Pool().NumFree(), "position 5 still needs block 1")
	require.NoError(t, s.Check())

	// Pass 2: 2 drafts at 6, 7; both rejected. Block 1 (positions 4..7) now holds a
	// rejected draft at 6 and 7 but only 4 and 5 are computed: not registered.
	p = plan(t, s)
	require.Equal(t, 2, p.Decode[0].Lookahead)
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{42}, Lookahead: 3}}))
	require.Equal(t, 6, r.NumComputed())
	_, _, hit := s.Pool().Lookup(r.hashes[0], []int32{11, 99, 500, 501})
	require.False(t, hit)
	require.Equal(t, 1, r.numReg)

	// Pass 3: 3 drafts at 7, 8, 9 (three blocks); all accepted plus one sampled:
	// block 1 = {11, 99, 42, 7} is registered with the accepted tokens; block 2 is kept.
	p = plan(t, s)
	require.Equal(t, 3, p.Decode[0].Lookahead)
	require.Len(t, p.Decode[0].BlockTable, 3)
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{7, 8, 9, 12}}}))
	require.Equal(t, 10, r.NumComputed())
	b, _, hit := s.Pool().Lookup(r.hashes[0], []int32{11, 99, 42, 7})
	require.True(t, hit)
	require.Equal(t, r.blocks[1], b)
	require.Len(t, r.blocks, 3)
	require.NoError(t, s.Check())

	// Lookahead 0 (the proposer found nothing): a plain decode step.
	p = plan(t, s)
	require.Equal(t, 0, p.Decode[0].Lookahead)
	require.Equal(t, 1, p.NumTokens)
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{13}}}))
	require.NoError(t, s.Check())
}

func TestLookaheadLimits(t *testing.T) {
	// An out-of-range Lookahead is the engine's bug.
	s := newSched(t, Config{BlockSize: 4, NumBlocks: 8, SpecTokens: 2})
	r := add(t, s, "a", []int32{1, 2, 3}, 20)
	p := plan(t, s)
	require.ErrorIs(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{10}, Lookahead: 3}}), ErrInvalidReply)
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{10}, Lookahead: 2}}))
	// More tokens than the pass can yield.
	p = plan(t, s)
	require.Equal(t, 2, p.Decode[0].Lookahead)
	require.ErrorIs(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{1, 2, 3, 4}}}), ErrInvalidReply)
	require.NoError(t, s.Commit(p, []Result{{Req: r, Tokens: []int32{1, 2, 3}, Lookahead: 2}}))

	// Drafts come from the budget left after admission and never past the length cap.
	s = newSched(t, Config{BlockSize: 4, NumBlocks: 64, MaxNumBatchedTokens: 8, MaxNumSeqs: 4, SpecTokens: 5})
	a := add(t, s, "a", []int32{1, 2}, 4)
	p = plan(t, s)
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{10}, Lookahead: 5}}))
	b := add(t, s, "b", seqTokens(100, 6), 10)
	p = plan(t, s)
	// a's decode (1) + b's first chunk (6) leave 1 token of the budget of 8.
	require.Equal(t, 1, p.Decode[0].Lookahead)
	require.Equal(t, 8, p.NumTokens)
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{11, 12}, Lookahead: 5}, {Req: b, Tokens: []int32{20}, Lookahead: 5}}))
	p = plan(t, s)
	require.Equal(t, 0, p.Decode[0].Lookahead, "a has one token left to generate: nothing to draft")
	require.Equal(t, 5, p.Decode[1].Lookahead)
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{13}}, {Req: b, Tokens: []int32{21}}}))
	require.True(t, a.Finished())

	// Drafts take free blocks only: no preemption, no eviction of the prefix cache.
	s = newSched(t, Config{BlockSize: 4, NumBlocks: 3, SpecTokens: 5})
	a = add(t, s, "a", []int32{1, 2, 3}, 20)
	p = plan(t, s)
	require.NoError(t, s.Commit(p, []Result{{Req: a, Tokens: []int32{10}, Lookahead: 5}}))
	add(t, s, "b", []int32{4, 5, 6}, 20) // admitted: it takes a block
	p = plan(t, s)
	require.Equal(t, 4, p.Decode[0].Lookahead, "positions 3..7: the one free block left after admitting b")
	require.Zero(t, s.Pool().NumFree())
	require.Zero(t, s.Stats().Preemptions)
}

// plan schedules without committing.
func plan(t testing.TB, s *Scheduler) *Plan {
	t.Helper()
	p, err := s.Schedule()
	require.NoError(t, err)
	require.NoError(t, s.Check())
	return p
}

// TestArrivalsAdmittedNextStep: prompts that arrive while a step runs are all admitted
// in the very next step when the token budget holds them with the running decodes (the
// serving case behind TTFT at concurrency 16: 15 clients resubmitting while one
// request's prefill runs).
func TestArrivalsAdmittedNextStep(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 256, BlockSize: 16, MaxNumSeqs: 32, MaxNumBatchedTokens: 2048})
	first := add(t, s, "first", seqTokens(0, 128), 128)
	p, err := s.Schedule()
	require.NoError(t, err)
	require.Len(t, prefillItems(p), 1)
	var late []*Request
	for i := 0; i < 15; i++ { // arrive while p runs
		late = append(late, add(t, s, fmt.Sprintf("late%d", i), seqTokens(1000*(i+1), 128), 128))
	}
	require.NoError(t, s.Commit(p, results(p, nil)))
	p = step(t, s)
	require.Len(t, p.Decode, 1)
	require.Equal(t, first, p.Decode[0].Req)
	items := prefillItems(p)
	require.Len(t, items, 15, "every arrival admitted in one step: 1 + 15·128 tokens fit 2048")
	for i, it := range items {
		require.Equal(t, late[i], it.Req)
		require.Equal(t, [2]int{0, 128}, [2]int{it.Start, it.End}, "the whole prompt in one step")
	}
	require.Equal(t, 0, s.NumWaiting())
}

// MaxAdapters: an adapter that would exceed the cap waits; base requests pass it, and
// requests of a running adapter behind it do not (the running adapters drain), so it
// is admitted once one finishes. Prefix blocks are shared only under one salt.
func TestAdapterCap(t *testing.T) {
	s := newSched(t, Config{NumBlocks: 64, BlockSize: 4, MaxNumSeqs: 8, MaxNumBatchedTokens: 64, MaxAdapters: 1, EnablePrefixCache: true})
	req := func(id string, adapter uint64) *Request {
		r, err := s.Add(NewRequest{ID: id, Prompt: seqTokens(1, 9), MaxNewTokens: 4, Adapter: adapter, CacheSalt: adapter * 31})
		require.NoError(t, err)
		return r
	}
	a1 := req("a1", 1)
	b := req("b", 2)    // capped: adapter 1 runs
	base := req("x", 0) // passes b
	a2 := req("a2", 1)  // adapter 1 runs, but b waits ahead: a2 waits too
	p := step(t, s)
	var admitted []string
	for _, it := range prefillItems(p) {
		admitted = append(admitted, it.Req.ID())
	}
	assert.Equal(t, []string{"a1", "x"}, admitted)
	assert.Equal(t, []uint64{1}, s.RunningAdapters(nil))
	assert.Equal(t, []uint64{2, 1}, s.WaitingAdapters(nil))
	// The base request shared nothing with a1 (same tokens, other salt).
	assert.Zero(t, s.Stats().PrefixHitTokens)
	// a1 finishes: b (adapter 2) is admitted, a2 still waits behind the cap.
	p, err := s.Schedule()
	require.NoError(t, err)
	require.NoError(t, s.Commit(p, results(p, map[*Request]FinishReason{a1: FinishedStop})))
	p = step(t, s)
	admitted = admitted[:0]
	for _, it := range prefillItems(p) {
		admitted = append(admitted, it.Req.ID())
	}
	assert.Equal(t, []string{"b"}, admitted)
	assert.False(t, a2.Finished())
	assert.Equal(t, 1, s.NumWaiting())
	for i := 0; i < 10 && !base.Finished(); i++ {
		step(t, s)
	}
	for i := 0; i < 10 && !b.Finished(); i++ {
		step(t, s)
	}
	require.True(t, b.Finished())
	for i := 0; i < 10 && !a2.Finished(); i++ {
		step(t, s)
	}
	require.True(t, a2.Finished())
	// a2 had a1's prompt under a1's salt: its full blocks were shared.
	assert.Equal(t, uint64(8), s.Stats().PrefixHitTokens)
}
