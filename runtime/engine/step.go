package engine

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/scheduler"
)

// loop is the engine's only goroutine that touches the scheduler: take submissions,
// drop cancelled requests, plan a step, run it, commit, deliver.
func (e *Engine) loop() {
	defer close(e.done)
	profiling.SetGoPhase(profiling.GoSchedule)
	idleWait := time.NewTimer(time.Hour)
	defer idleWait.Stop()
	for {
		// Intake: block only when there is nothing to do.
		if e.sched.NumWaiting()+e.sched.NumRunning()+len(e.deferred) == 0 {
			select {
			case <-e.wake:
			case <-e.quit:
				e.shutdown()
				return
			}
		}
		select {
		case <-e.quit:
			e.shutdown()
			return
		default:
		}
		e.intake()
		e.admitSiblings()
		for _, c := range e.live {
			if c.ctx.Err() != nil {
				e.sched.Cancel(c.id)
				e.finish(c, Event{}, FinishAbort, nil)
			}
		}
		now := time.Now()
		plan, err := e.sched.Step(now)
		if err != nil {
			e.fail(fmt.Errorf("engine: schedule: %w", err))
			return
		}
		e.markScheduled(plan, now)
		if e.hook != nil {
			e.hook("step")
		}
		e.ended = e.sched.TakeFinished(e.ended[:0])
		e.deliverEnded() // deadlines, and cancellations seen by the scheduler
		if plan.Empty() {
			if err := e.sched.Commit(plan, nil); err != nil {
				e.fail(fmt.Errorf("engine: commit: %w", err))
				return
			}
			e.publishStats()
			if e.sched.NumWaiting()+e.sched.NumRunning()+len(e.deferred) > 0 {
				// Requests wait for blocks held until an in-flight step completes.
				idleWait.Reset(time.Millisecond)
				select {
				case <-e.wake:
				case <-idleWait.C:
				case <-e.quit:
					e.shutdown()
					return
				}
			}
			continue
		}
		err = e.bindSlots(plan)
		var results []scheduler.Result
		if err == nil {
			results, err = e.run(plan)
		}
		if err == nil {
			e.observeStep(plan, results)
		}
		if err != nil {
			// A backend failure: every request in the plan ends with the error.
			e.log.Error("step failed", zap.Error(err))
			for _, c := range e.planned(plan) {
				e.sched.Cancel(c.id)
				e.finish(c, Event{}, FinishError, err)
			}
			results = nil
		}
		if err := e.sched.Commit(plan, results); err != nil {
			e.fail(fmt.Errorf("engine: commit: %w", err))
			return
		}
		if e.hook != nil {
			e.hook("commit")
		}
		e.ended = e.sched.TakeFinished(e.ended[:0])
		e.deliverEnded()
		e.publishStats()
	}
}

// deliverEnded gives a last event to completions the scheduler ended on its own
// (length cap, deadline).
func (e *Engine) deliverEnded() {
	for _, r := range e.ended {
		c, ok := e.live[r.ID()]
		if !ok {
			continue
		}
		why := FinishAbort
		switch r.Finish() {
		case scheduler.FinishedLength:
			why = FinishLength
		case scheduler.FinishedStop:
			why = FinishStop
		case scheduler.Deadline:
			why = FinishDeadline
		}
		e.finish(c, Event{Text: c.stream.Flush()}, why, nil)
	}
}

func (e *Engine) planned(p *scheduler.Plan) []*completion {
	var cs []*completion
	for _, it := range p.Decode {
		if c, ok := e.live[it.Req.ID()]; ok {
			cs = append(cs, c)
		}
	}
	for _, g := range p.Prefill {
		for _, it := range g.Items {
			if c, ok := e.live[it.Req.ID()]; ok {
				cs = append(cs, c)
			}
		}
	}
	return cs
}

// fail ends everything after an internal error the loop cannot recover from.
func (e *Engine) fail(err error) {
	defer e.releaseGraphs()
	e.log.Error("engine stopped", zap.Error(err))
	e.closeErr = err
	e.closed.Store(true)
	for _, c := range e.live {
		e.finish(c, Event{}, FinishError, err)
	}
	e.failPending(err)
}

func (e *Engine) shutdown() {
	for _, c := range e.live {
		e.sched.Cancel(c.id)
		e.finish(c, Event{}, FinishAbort, nil)
	}
	e.failPending(ErrClosed)
	e.releaseGraphs()
}

// releaseGraphs frees the decode graphs once the decode lane is idle.
func (e *Engine) releaseGraphs() {
	if e.graphSet == nil {
		return
	}
	err := e.m.Backend().Sync(e.decode.stream)
	if err = errors.Join(err, e.graphSet.destroy()); err != nil {
		e.log.Warn("freeing the decode graphs", zap.Error(err))
	}
	e.graphSet = nil
}

// failPending ends submissions the loop will never admit. Submit refuses new ones
// once closed is set, under the inbox lock.
func (e *Engine) failPending(err error) {
	e.closed.Store(true)
	e.inMu.Lock()
	in := e.inbox
	e.inbox = nil
	e.inboxN = 0
	e.inMu.Unlock()
	for _, s := range in {
		e.ad.release(s.adapter)
		for i := 0; i < s.req.N; i++ {
			s.out.push(Event{Index: i, Finish: FinishAbort, Err: err, Time: time.Now()})
		}
	}
	if e.ad != nil {
		e.ad.failPending(err)
	}
}

// itemOut is what running one plan item produced, merged on the loop goroutine.
type itemOut struct {
	c      *completion
	tokens []int32
	finish FinishReason
	events []Event
}

// group is one forward pass of a plan as issued: its lane, what it touches, the event
// recorded after it, and what it produced.
type group struct {
	lane  *lane
	items []scheduler.PrefillItem // nil: the decode group
	dec   []scheduler.DecodeItem  // the decode group's items
	spans []span
	ev    backend.Event
	outs  []itemOut
	err   error
}

// run executes a plan: the decode group on its lane and each prefill group on its
// own, concurrently, each on its lane's stream after waiting for the writers of the
// blocks it touches and followed by an event; then it holds the touched blocks until
// those events complete and returns the scheduler results.
func (e *Engine) run(p *scheduler.Plan) ([]scheduler.Result, error) {
	var wg sync.WaitGroup
	gs := e.groups[:0]
	add := func(l *lane, items []scheduler.PrefillItem) *group {
		if len(gs) < cap(gs) {
			gs = gs[:len(gs)+1] // reuse the spans' backing array of an earlier step
		} else {
			gs = append(gs, group{})
		}
		g := &gs[len(gs)-1]
		*g = group{lane: l, items: items, spans: g.spans[:0]}
		return g
	}
	if len(p.Decode) > 0 {
		g := add(e.decode, nil)
		g.dec = p.Decode
		g.spans = decodeSpans(g.spans, p.Decode, e.draftFrom())
	}
	for _, pg := range p.Prefill {
		if len(pg.Items) > 0 {
			g := add(e.lanes[pg.Lane%len(e.lanes)], pg.Items)
			g.spans = prefillSpans(g.spans, pg.Items)
		}
	}
	be := e.m.Backend()
	e.traceLanes()
	for i := range gs {
		g := &gs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g.items == nil {
				profiling.SetGoPhase(profiling.GoDecode)
			} else {
				profiling.SetGoPhase(profiling.GoPrefill)
			}
			l := g.lane
			if l.waits, g.err = e.fences.wait(l.stream, g.spans, l.waits); g.err != nil {
				return
			}
			if g.items == nil {
				g.outs, g.err = e.runDecode(l, p.Decode)
			} else {
				g.outs, g.err = e.runPrefill(l, g.items)
			}
			ev, err := be.Record(l.stream)
			if err != nil {
				// Without an event the blocks are safe only once the stream is idle.
				g.err = errors.Join(g.err, fmt.Errorf("record: %w", err), be.Sync(l.stream))
				return
			}
			g.ev = ev
		}()
	}
	wg.Wait()
	e.groups = gs
	var errs []error
	for i := range gs {
		e.fences.record(gs[i].ev, gs[i].spans)
		errs = append(errs, gs[i].err)
	}
	e.fences.forget()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	e.results = e.results[:0]
	for _, g := range gs {
		for _, o := range g.outs {
			for _, ev := range o.events {
				o.c.out.push(ev)
			}
			fin := scheduler.NotFinished
			if o.finish != "" {
				fin = scheduler.FinishedStop
				if o.finish == FinishLength {
					fin = scheduler.FinishedLength
				}
				e.finish(o.c, Event{Time: time.Now()}, o.finish, o.c.err)
			}
			if len(o.tokens) > 0 || fin != scheduler.NotFinished {
				la := 0
				if fin == scheduler.NotFinished {
					la = e.lookahead(o.c)
				}
				e.results = append(e.results, scheduler.Result{Req: o.c.sreq, Tokens: o.tokens, Finish: fin, Lookahead: la})
			}
		}
	}
	return e.results, nil
}

// runPrefill computes one prefill group in one forward pass and samples the first
// token of every sequence whose prompt it completes.
func (e *Engine) runPrefill(l *lane, items []scheduler.PrefillItem) ([]itemOut, error) {
	seqs := make([]model.Seq, len(items))
	for i, it := range items {
		mode := model.LogitsNone
		if it.Complete() {
			mode = model.LogitsLast
		}
		seqs[i] = model.Seq{Tokens: it.Req.Tokens()[it.Start:it.End], Pos: it.Start, Blocks: it.BlockTable, Logits: mode,
			LoRA: e.live[it.Req.ID()].loraSlot(), Prompt: true}
	}
	e.prefillClass(l, items)
	logits, err := e.m.Forward(l.ws, e.kv, seqs)
	if err != nil {
		return nil, fmt.Errorf("prefill: %w", err)
	}
	if l.dws != nil {
		// The draft model's KV for the same chunks (its pass leaves the target's
		// logits, in the target's workspace, as they are).
		if err := e.draftPrefill(l, items, seqs); err != nil {
			return nil, err
		}
	}
	V := e.cfg.VocabSize
	var outs []itemOut
	row := 0
	now := time.Now()
	for _, it := range items {
		if !it.Complete() {
			continue
		}
		lg := logits[row*V : (row+1)*V]
		row++
		c := e.live[it.Req.ID()]
		if c == nil {
			continue
		}
		tok, ev, fin := e.sampleOne(l, c, lg, now)
		outs = append(outs, itemOut{c: c, tokens: []int32{tok}, finish: fin, events: []Event{ev}})
	}
	return outs, nil
}

// runDecode runs the decode group for its NumSteps steps, sampling after each, and
// stops each sequence at its own end (later tokens of a K-step round are dropped).
func (e *Engine) runDecode(l *lane, items []scheduler.DecodeItem) ([]itemOut, error) {
	e.decodeClass(l, items)
	if e.graphSet != nil && !hasLookahead(items) && !e.breakdown(l, len(items)) && !e.hasAdapter(items) {
		if outs, ok, err := e.runDecodeGraph(l, items); ok {
			return outs, err
		}
	}
	return e.runDecodeEager(l, items)
}

// runDecodeEager issues every decode step op by op and samples on the host. Items with
// drafted positions are verification passes: their first (only) step feeds the last
// token and the drafts in one sequence and verifies them (verify).
func (e *Engine) runDecodeEager(l *lane, items []scheduler.DecodeItem) ([]itemOut, error) {
	outs := make([]itemOut, len(items))
	active := make([]int, 0, len(items))
	steps := 0
	for i, it := range items {
		outs[i].c = e.live[it.Req.ID()]
		if outs[i].c != nil {
			active = append(active, i)
			steps = max(steps, it.NumSteps)
		}
	}
	V := e.cfg.VocabSize
	var drafts [][]int32
	var qs [][][]float32
	if e.spec != nil {
		var err error
		if drafts, qs, err = e.propose(items, outs); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
	}
	seqs := make([]model.Seq, 0, len(items))
	for step := 0; step < steps && len(active) > 0; step++ {
		seqs = seqs[:0]
		for _, i := range active {
			it := &items[i]
			tok := it.Req.Tokens()[it.Pos]
			if step > 0 {
				tok = outs[i].tokens[step-1]
			}
			s := model.Seq{Tokens: []int32{tok}, Pos: it.Pos + step, Blocks: it.BlockTable, Logits: model.LogitsLast, LoRA: outs[i].c.loraSlot()}
			if step == 0 && drafts != nil && len(drafts[i]) > 0 {
				s.Tokens, s.Logits = append(s.Tokens, drafts[i]...), model.LogitsAll
			}
			seqs = append(seqs, s)
		}
		logits, err := e.m.Forward(l.ws, e.kv, seqs)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		now := time.Now()
		next := active[:0]
		r := 0
		for _, i := range active {
			o := &outs[i]
			if step == 0 && drafts != nil && len(drafts[i]) > 0 {
				n := len(drafts[i]) + 1
				e.verify(l, o, items[i], drafts[i], qs[i], logits[r*V:(r+n)*V], now)
				r += n
				continue // a verification pass is the item's only step
			}
			tok, ev, fin := e.sampleOne(l, o.c, logits[r*V:(r+1)*V], now)
			r++
			o.tokens = append(o.tokens, tok)
			o.events = append(o.events, ev)
			if fin != "" {
				o.finish = fin
				continue
			}
			if len(o.tokens) < items[i].NumSteps {
				next = append(next, i)
			}
		}
		active = next
	}
	res := outs[:0]
	for _, o := range outs {
		if o.c != nil {
			res = append(res, o)
		}
	}
	return res, nil
}

// sampleOne samples a completion's next token from its logits (modified in place by
// the request's masks) and turns it into an event.
func (e *Engine) sampleOne(l *lane, c *completion, logits []float32, now time.Time) (int32, Event, FinishReason) {
	var raw []float32
	if c.req.Logprobs || c.req.TopLogprobs > 0 {
		raw = append([]float32(nil), logits...)
	}
	if c.matcher != nil {
		return e.sampleConstrained(l, c, logits, raw, now)
	}
	c.maskLogits(logits, e.opt.EOSIDs)
	c.hostNext = false
	p := c.req.Sampling
	p.Seed = c.seed
	tok := l.sampler.Sample(logits, &p, uint64(c.made), c.history)
	if raw == nil {
		raw = logits
	}
	ev, fin := e.accept(c, tok, raw, l, now)
	return tok, ev, fin
}

// compactDiv: a constrained row allowing at most 1/compactDiv of the vocabulary is
// sampled over the allowed tokens only (gathered), not over a masked full row.
const compactDiv = 2

// sampleConstrained samples a constrained completion's next token: the constraint's
// mask first, so the sampler works within the allowed set (temperature, top-k/p,
// min-p and penalties included). When few tokens are allowed the sampler sees only
// them (their logits gathered in id order, the history mapped to their positions),
// which costs what the allowed set costs instead of a pass over the vocabulary.
func (e *Engine) sampleConstrained(l *lane, c *completion, logits, raw []float32, now time.Time) (tok int32, ev Event, fin FinishReason) {
	defer func() {
		// A fault in the constraint's automaton ends this completion with an error,
		// not the engine.
		if r := recover(); r != nil {
			c.err = fmt.Errorf("constraint: internal error: %v", r)
			tok, ev, fin = 0, Event{Index: c.index, Time: now}, FinishError
		}
	}()
	m := c.matcher
	if cap(l.gmask) < m.Words() {
		l.gmask = make([]uint64, m.Words())
	}
	mask := l.gmask[:m.Words()]
	remaining := min(c.req.MaxTokens, e.opt.MaxModelLen-len(c.req.Prompt)) - c.made
	allowed := m.FillMask(mask, remaining)
	if allowed == 0 {
		c.err = errors.New("constraint: no token of the vocabulary can continue the output")
		return 0, Event{Index: c.index, Time: now}, FinishError
	}
	eos := e.vocab.EOS()
	// Before MinTokens, end-of-sequence and stop ids are suppressed — unless the
	// output is complete and nothing else may follow.
	suppress := c.made < c.req.MinTokens && !(m.CanEnd() && allowed == countEOS(mask, eos))
	c.hostNext = false
	p := c.req.Sampling
	p.Seed = c.seed
	if allowed*compactDiv <= len(logits) {
		l.cids, l.cvals = grammar.Gather(logits, mask, l.cids[:0], l.cvals[:0])
		if suppress {
			for j, id := range l.cids {
				if (!c.req.IgnoreEOS && slices.Contains(e.opt.EOSIDs, id)) || slices.Contains(c.req.StopTokenIDs, id) {
					l.cvals[j] = float32(math.Inf(-1))
				}
			}
		}
		var hist []int32
		if p.Penalizes() {
			hist = l.remapHistory(c.history, l.cids, len(logits))
		}
		tok = l.cids[l.sampler.Sample(l.cvals, &p, uint64(c.made), hist)]
	} else {
		grammar.ApplyMask(logits, mask)
		if suppress {
			c.maskLogits(logits, e.opt.EOSIDs)
		}
		tok = int32(l.sampler.Sample(logits, &p, uint64(c.made), c.history))
	}
	if raw == nil {
		raw = logits
	}
	if err := m.Accept(tok); err != nil {
		c.err = fmt.Errorf("constraint: sampled token %d: %w", tok, err)
		return tok, Event{Index: c.index, Time: now}, FinishError
	}
	ev, fin = e.accept(c, tok, raw, l, now)
	return tok, ev, fin
}

// remapHistory maps token ids of hist to their positions in ids (ascending), dropping
// the others (they are not allowed: their penalties change nothing).
func (l *lane) remapHistory(hist, ids []int32, vocab int) []int32 {
	if len(l.cpos) < vocab {
		l.cpos = make([]int32, vocab)
		for i := range l.cpos {
			l.cpos[i] = -1
		}
	}
	for j, id := range ids {
		l.cpos[id] = int32(j)
	}
	out := l.chist[:0]
	for _, id := range hist {
		if id >= 0 && int(id) < vocab && l.cpos[id] >= 0 {
			out = append(out, l.cpos[id])
		}
	}
	for _, id := range ids {
		l.cpos[id] = -1
	}
	l.chist = out
	return out
}

// countEOS is how many of the end-of-sequence ids the mask allows.
func countEOS(mask []uint64, eos []int32) int {
	n := 0
	for _, id := range eos {
		if int(id>>6) < len(mask) && mask[id>>6]&(1<<(id&63)) != 0 {
			n++
		}
	}
	return n
}
