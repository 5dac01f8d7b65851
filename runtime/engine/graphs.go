package engine

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/scheduler"
)

// GraphMode says how decode steps run.
type GraphMode string

const (
	// GraphsEager: every decode step is issued op by op and sampled on the host (the
	// CPU backend, or graphs disabled, or a capture that failed — Graphs says why).
	GraphsEager GraphMode = "eager"
	// GraphsReplay: decode steps replay a graph captured per batch-size bucket at
	// start-up, sampled on the device, K steps per host round trip through a
	// backend.DecodeLooper. A decode group falls back to the eager path when one of
	// its requests needs the host (see deviceSampleable).
	GraphsReplay GraphMode = "replay"
)

// decodeBuckets are the batch sizes a decode graph is captured for: powers of two up
// to the sequence cap, and the cap itself. A decode group runs in the smallest bucket
// that holds it; the padding rows are idle (they compute but write nothing).
func decodeBuckets(maxSeqs int) []int {
	var b []int
	for n := 1; n < maxSeqs; n *= 2 {
		b = append(b, n)
	}
	return append(b, maxSeqs)
}

// graphSet is the decode lane's captured steps, one per bucket.
type graphSet struct {
	lp     backend.DecodeLooper
	graphs []*model.DecodeGraph // ascending Rows
	rows   []backend.DecodeRow  // scratch
	act    []int                // scratch: item index of each row
	host   []bool               // scratch: the row is sampled on the host
	logits []float32            // scratch: one row's logits
}

// setupGraphs decides, at start-up, whether decode steps can be captured and replayed,
// captures them if so, and says why not when they cannot.
func (e *Engine) setupGraphs() (GraphMode, string) {
	be := e.m.Backend()
	switch {
	case e.opt.DisableCUDAGraphs:
		return GraphsEager, "disabled by Options.DisableCUDAGraphs (--cuda-graphs=false)"
	}
	if _, ok := be.(backend.GraphCapturer); !ok {
		return GraphsEager, "the " + be.Name() + " backend does not capture graphs"
	}
	lp, ok := be.(backend.DecodeLooper)
	if !ok {
		return GraphsEager, "the " + be.Name() + " backend captures graphs but has no device decode loop"
	}
	start := time.Now()
	gs := &graphSet{lp: lp}
	buckets := decodeBuckets(e.opt.MaxNumSeqs)
	for i, rows := range buckets {
		// Capture takes a while on a large model: the log shows its progress.
		e.log.Info("capturing decode graph", zap.Int("bucket", i+1), zap.Int("buckets", len(buckets)), zap.Int("sequences", rows),
			zap.Int("max_model_len", e.opt.MaxModelLen), zap.Duration("elapsed", time.Since(start).Round(time.Millisecond)))
		g, err := e.m.CaptureDecode(e.decode.ws, e.kv, rows, e.opt.MaxModelLen)
		if err != nil {
			why := fmt.Sprintf("capturing the decode step failed, decoding eagerly: %v", err)
			if derr := gs.destroy(); derr != nil {
				why += fmt.Sprintf(" (and freeing the graphs captured before: %v)", derr)
			}
			return GraphsEager, why
		}
		gs.graphs = append(gs.graphs, g)
	}
	e.graphSet = gs
	return GraphsReplay, fmt.Sprintf("%d buckets (%v sequences, contexts up to %d) captured in %s",
		len(gs.graphs), decodeBuckets(e.opt.MaxNumSeqs), e.opt.MaxModelLen, time.Since(start).Round(time.Millisecond))
}

func (gs *graphSet) destroy() error {
	if gs == nil {
		return nil
	}
	var errs []error
	for _, g := range gs.graphs {
		errs = append(errs, g.Destroy())
	}
	gs.graphs = nil
	return errors.Join(errs...)
}

// bucket is the smallest captured step of at least n rows, or nil.
func (gs *graphSet) bucket(n int) *model.DecodeGraph {
	for _, g := range gs.graphs {
		if g.IO.Rows >= n {
			return g
		}
	}
	return nil
}

// deviceSampleable says whether c's next tokens can be sampled on the device: nothing
// that needs the logits on the host (log-probabilities, the EOS/stop mask before
// MinTokens, a constraint's mask), at most MaxStopIDs stop ids, and not just refused
// by the device sampler.
func (e *Engine) deviceSampleable(c *completion) bool {
	r := c.req
	return !c.hostNext && c.matcher == nil && !r.Logprobs && r.TopLogprobs == 0 && c.made >= r.MinTokens &&
		len(r.StopTokenIDs)+len(e.opt.EOSIDs) <= backend.MaxStopIDs
}

// runDecodeGraph runs the decode group by replaying the bucket's captured step, and
// turns the tokens into events exactly as the eager path would. When every row can be
// sampled on the device, the group's K steps run without returning to the host;
// otherwise one step runs, the device-sampled rows take the device's tokens and the
// others are sampled on the host from their logits rows. A row the device sampler gave
// back at its first step is computed again by an eager pass (rare: top-p over more
// candidates than the device sorts). ok is false, with nothing issued, when no bucket
// holds the group.
func (e *Engine) runDecodeGraph(l *lane, items []scheduler.DecodeItem) (outs []itemOut, ok bool, err error) {
	gs := e.graphSet
	gs.rows, gs.act, gs.host = gs.rows[:0], gs.act[:0], gs.host[:0]
	steps, anyHost := 0, false
	for i, it := range items {
		c := e.live[it.Req.ID()]
		if c == nil {
			continue
		}
		host := !e.deviceSampleable(c)
		anyHost = anyHost || host
		gs.act = append(gs.act, i)
		gs.host = append(gs.host, host)
		steps = max(steps, it.NumSteps)
	}
	g := gs.bucket(len(gs.act))
	if g == nil || len(gs.act) == 0 {
		return nil, false, nil
	}
	if anyHost {
		steps = 1
	}
	for _, i := range gs.act {
		it := &items[i]
		c := e.live[it.Req.ID()]
		row := backend.DecodeRow{
			ID: it.Req.Tokens()[it.Pos], Pos: int32(it.Pos),
			Limit:  int32(it.Pos + max(1, min(steps, it.NumSteps, c.req.MaxTokens-c.made))),
			Blocks: it.BlockTable[:min(len(it.BlockTable), g.IO.MaxBlocks)],
			Params: c.req.Sampling, Index: uint64(c.made),
		}
		row.Seed = c.seed // the request's seed, or the one drawn for it
		if row.Penalizes() {
			row.History = c.history
		}
		if !c.req.IgnoreEOS {
			row.Stop = append(row.Stop, e.opt.EOSIDs...)
		}
		row.Stop = append(row.Stop, c.req.StopTokenIDs...)
		if len(row.Stop) > backend.MaxStopIDs {
			row.Stop = nil // a host row: its device token is not used
		}
		gs.rows = append(gs.rows, row)
	}
	be := e.m.Backend()
	pl := l.active()
	if pl != nil {
		pl.BeginReplay(g.IO.Rows, steps)
	}
	toks, _, err := gs.lp.DecodeLoop(l.stream, g.Graph, &g.IO, gs.rows, steps)
	if pl != nil {
		pl.EndReplay()
	}
	if err == nil {
		// One wait per round trip: the loop's tokens are in pinned memory once the
		// stream reaches the loop's event.
		err = be.Sync(l.stream)
	}
	if err != nil {
		return nil, true, fmt.Errorf("decode graph (%d of %d rows, %d steps): %w", len(gs.act), g.IO.Rows, steps, err)
	}
	now := time.Now()
	V := e.cfg.VocabSize
	outs = make([]itemOut, 0, len(gs.act))
	var again []scheduler.DecodeItem
	for r, i := range gs.act {
		c := e.live[items[i].Req.ID()]
		o := itemOut{c: c}
		if gs.host[r] {
			if cap(gs.logits) < V {
				gs.logits = make([]float32, V)
			}
			lg := gs.logits[:V]
			if err := be.Download(backend.Bytes(lg), backend.F32, g.IO.Logits.SliceRows(r, r+1)); err != nil {
				return nil, true, fmt.Errorf("decode graph: logits of row %d: %w", r, err)
			}
			tok, ev, fin := e.sampleOne(l, c, lg, now)
			o.tokens, o.events, o.finish = []int32{tok}, []Event{ev}, fin
			outs = append(outs, o)
			continue
		}
		for k := 0; k < steps; k++ {
			tok := toks[k*g.IO.Rows+r]
			if tok == backend.TokenHost {
				c.hostNext = true // this position is sampled on the host next
			}
			if tok < 0 {
				break
			}
			ev, fin := e.accept(c, tok, nil, l, now)
			o.tokens = append(o.tokens, tok)
			o.events = append(o.events, ev)
			if fin != "" {
				o.finish = fin
				break
			}
		}
		if len(o.tokens) == 0 && o.finish == "" {
			it := items[i]
			it.NumSteps = 1
			again = append(again, it)
			continue
		}
		outs = append(outs, o)
	}
	if len(again) > 0 {
		more, err := e.runDecodeEager(l, again)
		if err != nil {
			return nil, true, err
		}
		outs = append(outs, more...)
	}
	return outs, true, nil
}

// logGraphs reports the decode mode at start-up.
func (e *Engine) logGraphs() {
	e.log.Info("decode steps", zap.String("graphs", string(e.graphs)), zap.String("why", e.graphsWhy))
}
