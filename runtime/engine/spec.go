package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/specdec"
	"github.com/vireo-ai/vireo/scheduler"
)

// maxSpecTokensPerStep bounds the drafted positions of one plan, so the decode lane's
// workspace (and its logits, one row per position) stays small at large batch sizes.
const maxSpecTokensPerStep = 256

// SpecStats count speculative decoding's work since start-up (vLLM's
// spec_decode_num_* counters).
type SpecStats struct {
	Drafts         uint64   // verification passes of a sequence with at least one draft
	DraftTokens    uint64   // tokens proposed and verified
	AcceptedTokens uint64   // drafts accepted
	AcceptedPerPos []uint64 // [k]: drafts accepted at position j of their pass
}

// speculator is the engine's proposing side: the configuration, and the draft model
// with its workspaces when the method is draft_model.
type speculator struct {
	cfg     specdec.Config
	drafter *specdec.Drafter // nil for prompt lookup
	dws     *model.Workspace // the draft's workspace on the decode lane's stream
	rows    []*specdec.Row   // scratch of propose
	stats   SpecStats        // guarded by Engine.mu
}

// setupSpec checks the speculative configuration against the model and sizes what it
// needs; it runs in build before the KV cache is sized (draftKVBytes).
func setupSpec(m Model, opt *Options) (*speculator, error) {
	cfg := opt.Speculative
	if err := cfg.Normalize(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if !cfg.Enabled() {
		if opt.Draft != nil {
			return nil, fmt.Errorf("engine: a draft model is given but no speculative method")
		}
		return nil, nil
	}
	opt.Speculative = cfg
	sp := &speculator{cfg: cfg, stats: SpecStats{AcceptedPerPos: make([]uint64, cfg.NumSpeculativeTokens)}}
	switch cfg.Method {
	case specdec.MethodNGram:
		if opt.Draft != nil {
			return nil, fmt.Errorf("engine: method ngram takes no draft model")
		}
	case specdec.MethodDraftModel:
		if opt.Draft == nil {
			return nil, fmt.Errorf("engine: method draft_model needs Options.Draft, the loaded draft model (%s)", cfg.Model)
		}
		if err := specdec.CheckDraft(opt.Draft, m.Spec(), m.Backend(), opt.MaxModelLen); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	return sp, nil
}

// specTokens is the scheduler's MaxSpecTokens: at most k per sequence and
// maxSpecTokensPerStep per plan.
func (sp *speculator) specTokens(maxSeqs int) int {
	if sp == nil {
		return 0
	}
	return min(maxSeqs*sp.cfg.NumSpeculativeTokens, max(sp.cfg.NumSpeculativeTokens, maxSpecTokensPerStep))
}

// lookahead is how many drafted positions c wants verified in its next decode step:
// prompt lookup computes its proposal now (from the prompt and the output so far, the
// token just sampled included) and keeps it; a draft model always wants k.
func (e *Engine) lookahead(c *completion) int {
	sp := e.spec
	if sp == nil || c.done || !e.speculates(c) {
		return 0
	}
	k := sp.cfg.NumSpeculativeTokens
	if sp.drafter == nil {
		c.proposal = specdec.Propose(c.proposal[:0], c.history, sp.cfg.PromptLookupMin, sp.cfg.PromptLookupMax, k)
		return len(c.proposal)
	}
	return k
}

// speculates says whether speculation applies to c's request: to every request
// (sampling, penalties, stop strings, n, logprobs, min_tokens) but constrained rows of
// structured outputs, whose tokens go through the constraint's mask one at a time
// (sampleConstrained), and, with a draft model, requests for a LoRA adapter: the draft
// has none, so its guesses are the base model's (prompt lookup proposes from the
// request's own text and verifies with the adapter: it applies).
func (e *Engine) speculates(c *completion) bool {
	return c.matcher == nil && (c.adapter == nil || e.spec.drafter == nil)
}

// draftPrefill computes the draft's KV for a prefill group's chunks on the lane's
// stream and notes, per completion, how far the draft has computed.
func (e *Engine) draftPrefill(l *lane, items []scheduler.PrefillItem, seqs []model.Seq) error {
	if slices.ContainsFunc(seqs, func(s model.Seq) bool { return s.LoRA != 0 }) {
		// The draft has no adapters: it computes the base model's KV for those rows
		// (they never speculate; their blocks are never another adapter's).
		base := make([]model.Seq, len(seqs))
		for i, s := range seqs {
			s.LoRA = 0
			base[i] = s
		}
		seqs = base
	}
	if err := e.spec.drafter.Prefill(l.dws, seqs); err != nil {
		return err
	}
	for _, it := range items {
		if c := e.live[it.Req.ID()]; c != nil {
			c.draftPos = it.End
		}
	}
	return nil
}

// propose returns the drafts of every decode item with drafted positions (indexed like
// items; nil where none) and, for a sampling draft model, the distributions they were
// drawn from.
func (e *Engine) propose(items []scheduler.DecodeItem, outs []itemOut) (drafts []([]int32), qs [][][]float32, err error) {
	sp := e.spec
	for i, it := range items {
		if it.Lookahead > 0 && outs[i].c != nil {
			if drafts == nil {
				drafts, qs = make([][]int32, len(items)), make([][][]float32, len(items))
			}
			if sp.drafter == nil {
				c := outs[i].c
				drafts[i] = c.proposal[:min(it.Lookahead, len(c.proposal))]
			}
		}
	}
	if drafts == nil || sp.drafter == nil {
		return drafts, qs, nil
	}
	sp.rows = sp.rows[:0]
	bs, pool := e.opt.BlockSize, e.sched.Pool()
	for i, it := range items {
		c := outs[i].c
		if it.Lookahead == 0 || c == nil {
			continue
		}
		// Catch up from what the draft computed, but never inside an earlier block that
		// is held by more than this sequence — a shared prefix another sequence may be
		// reading in this plan, or, on an asynchronous backend, a block still held for
		// device work (skipped to be safe): the positions skipped keep stale draft KV.
		// The block of Pos is the sequence's own (decode never writes a shared block).
		// The pool is quiet while the plan runs. decodeSpans marks the blocks from
		// draftPos's on as written by this group.
		from := min(c.draftPos, it.Pos)
		for b := it.Pos/bs - 1; b >= from/bs; b-- {
			if pool.RefCount(it.BlockTable[b]) > 1 {
				from = (b + 1) * bs
				break
			}
		}
		if c.row == nil {
			c.row = &specdec.Row{}
		}
		r := c.row
		r.CatchUp, r.Pos, r.Blocks, r.N = it.Req.Tokens()[from:it.Pos+1], from, it.BlockTable, it.Lookahead
		r.Params = c.req.Sampling
		r.Params.Seed = c.seed
		r.Index = uint64(c.made)
		r.History = nil
		if r.Params.Penalizes() {
			r.History = c.history
		}
		r.Mask = nil
		if c.req.MinTokens > c.made {
			r.Mask = func(lg []float32, index uint64) { c.maskLogitsAt(lg, e.opt.EOSIDs, int(index)) }
		}
		sp.rows = append(sp.rows, r)
	}
	if err := sp.drafter.Propose(sp.dws, &e.decode.sampler, sp.rows); err != nil {
		return nil, nil, err
	}
	for i, it := range items {
		if c := outs[i].c; it.Lookahead > 0 && c != nil {
			drafts[i], qs[i] = c.row.Drafts, c.row.Q
		}
	}
	return drafts, qs, nil
}

// draftFrom says, for decodeSpans, from which position a verification pass may write
// the draft's KV (nil without a draft model).
func (e *Engine) draftFrom() func(scheduler.DecodeItem) int {
	if e.spec == nil || e.spec.drafter == nil {
		return nil
	}
	return func(it scheduler.DecodeItem) int {
		if c := e.live[it.Req.ID()]; c != nil {
			return min(c.draftPos, it.Pos)
		}
		return it.Pos
	}
}

// verify decides a verification row: logits holds len(drafts)+1 rows, the target's
// distributions after the fed token and after each draft. Drafts are taken while
// sampling.Sampler.Verify accepts them; the first rejection yields the target's own
// token, and when all are accepted the last row gives one more. Each token goes
// through accept exactly as without speculation (stop strings, EOS, max_tokens end the
// row there).
func (e *Engine) verify(l *lane, o *itemOut, it scheduler.DecodeItem, drafts []int32, qs [][]float32, logits []float32, now time.Time) {
	c, V := o.c, e.cfg.VocabSize
	accepted := 0
	for j := 0; j <= len(drafts); j++ {
		lg := logits[j*V : (j+1)*V]
		var tok int32
		var ev Event
		var fin FinishReason
		ok := false
		if j < len(drafts) {
			var q []float32
			if qs != nil && len(qs[j]) > 0 {
				q = qs[j]
			}
			tok, ok, ev, fin = e.verifyOne(l, c, lg, drafts[j], q, now)
		} else {
			tok, ev, fin = e.sampleOne(l, c, lg, now)
		}
		o.tokens = append(o.tokens, tok)
		o.events = append(o.events, ev)
		if ok {
			accepted++
		}
		if fin != "" {
			o.finish = fin
			break
		}
		if !ok {
			break
		}
	}
	if e.spec.drafter != nil {
		// The draft computed the fed token and drafts 0..n-2 at Pos …; those
		// accepted are valid draft KV.
		c.draftPos = it.Pos + min(accepted, len(drafts)-1) + 1
	}
	e.mu.Lock()
	st := &e.spec.stats
	st.Drafts++
	st.DraftTokens += uint64(len(drafts))
	st.AcceptedTokens += uint64(accepted)
	for j := 0; j < accepted; j++ {
		st.AcceptedPerPos[j]++
	}
	e.mu.Unlock()
}

// verifyOne is sampleOne for a drafted position: the same masks, parameters, draw
// number and history, through sampling.Sampler.Verify.
func (e *Engine) verifyOne(l *lane, c *completion, logits []float32, draft int32, q []float32, now time.Time) (int32, bool, Event, FinishReason) {
	var raw []float32
	if c.req.Logprobs || c.req.TopLogprobs > 0 {
		raw = append([]float32(nil), logits...)
	}
	c.maskLogits(logits, e.opt.EOSIDs)
	c.hostNext = false
	p := c.req.Sampling
	p.Seed = c.seed
	tok, ok := l.sampler.Verify(logits, &p, uint64(c.made), c.history, draft, q)
	if raw == nil {
		raw = logits
	}
	ev, fin := e.accept(c, tok, raw, l, now)
	return tok, ok, ev, fin
}

// hasLookahead reports whether a decode group verifies drafts (and so runs eagerly:
// the captured decode graphs compute one position per row).
func hasLookahead(items []scheduler.DecodeItem) bool {
	for _, it := range items {
		if it.Lookahead > 0 {
			return true
		}
	}
	return false
}

// SpecStats returns speculative decoding's counters (zero when it is off).
func (e *Engine) SpecStats() SpecStats {
	if e.spec == nil {
		return SpecStats{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.spec.stats
	st.AcceptedPerPos = append([]uint64(nil), st.AcceptedPerPos...)
	return st
}

// Speculative is the effective speculative configuration (the zero Config when off).
func (e *Engine) Speculative() specdec.Config { return e.opt.Speculative }
