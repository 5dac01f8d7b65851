package engine

import (
	"errors"

	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/scheduler"
)

// The engine's part in profiling (Options.Profiler, runtime/profiling): a
// profiling.Lane per workspace (each lane's, and the draft model's), set as the
// workspace's tracer for the steps that run while a window is open or NVTX ranges are
// on, and nil otherwise (a pass then calls nothing); each pass's request class; decode
// rounds replayed as graphs timed whole, and one in Profiler's BreakdownEvery per
// bucket run eagerly instead, for the per-op breakdown.

// profName is the target model's name in profiles.
func (e *Engine) profName() string {
	if e.opt.ModelName != "" {
		return e.opt.ModelName
	}
	return "model"
}

// draftProfName is the draft model's name in profiles.
const draftProfName = "draft"

// setupProfiling makes the lanes' profiling lanes (build).
func (e *Engine) setupProfiling() error {
	p := e.opt.Profiler
	if p == nil {
		return nil
	}
	be := e.m.Backend()
	mk := func(ws *model.Workspace, name string, layers int) (*profiling.Lane, error) {
		if ws == nil {
			return nil, nil
		}
		return profiling.NewLane(p, be, ws.Stream(), profiling.LaneOptions{Model: name, Layers: layers, MaxSeqs: e.opt.MaxNumSeqs})
	}
	draftLayers := 0
	if e.opt.Draft != nil {
		draftLayers = e.opt.Draft.Config.Layers
	}
	var err error
	for _, l := range append([]*lane{e.decode}, e.lanes...) {
		if l.prof, err = mk(l.ws, e.profName(), e.cfg.Layers); err != nil {
			return err
		}
		dws := l.dws
		if l == e.decode && e.spec != nil {
			dws = e.spec.dws
		}
		if l.dprof, err = mk(dws, draftProfName, draftLayers); err != nil {
			return err
		}
	}
	return nil
}

// closeProfiling frees the profiling lanes (Close).
func (e *Engine) closeProfiling() error {
	var errs []error
	for _, l := range append([]*lane{e.decode}, e.lanes...) {
		if l == nil {
			continue
		}
		for _, pl := range []*profiling.Lane{l.prof, l.dprof} {
			if pl != nil {
				errs = append(errs, pl.Close())
			}
		}
	}
	return errors.Join(errs...)
}

// traceLanes sets each workspace's tracer for the step about to run: its profiling
// lane while the lane has work (a window open, NVTX on), nil otherwise (loop, before
// any pass of the step is issued).
func (e *Engine) traceLanes() {
	if e.opt.Profiler == nil {
		return
	}
	trace(e.decode.ws, e.decode.prof)
	if e.spec != nil {
		trace(e.spec.dws, e.decode.dprof)
	}
	for _, l := range e.lanes {
		trace(l.ws, l.prof)
		trace(l.dws, l.dprof)
	}
}

func trace(ws *model.Workspace, pl *profiling.Lane) {
	if ws == nil || pl == nil {
		return
	}
	var t model.Tracer
	if pl.Active() {
		t = pl
	}
	if ws.Tracer() != t {
		ws.SetTracer(t)
	}
}

// active is the lane's profiling lane when it has work, else nil.
func (l *lane) active() *profiling.Lane {
	if l.prof != nil && l.prof.Active() {
		return l.prof
	}
	return nil
}

// setClass sets the request class of the lane's next passes from the completions they
// serve: theirs when they share one, profiling.ClassMixed when not.
func (l *lane) setClass(class string, mixed bool) {
	if mixed {
		class = profiling.ClassMixed
	}
	for _, pl := range []*profiling.Lane{l.prof, l.dprof} {
		if pl != nil {
			pl.SetClass(class)
		}
	}
}

// prefillClass is the class of a prefill group's completions.
func (e *Engine) prefillClass(l *lane, items []scheduler.PrefillItem) {
	if l.active() == nil {
		return
	}
	class, mixed, first := "", false, true
	for _, it := range items {
		if c := e.live[it.Req.ID()]; c != nil {
			mixed = mixed || (!first && c.req.Class != class)
			class, first = c.req.Class, false
		}
	}
	l.setClass(class, mixed)
}

// decodeClass is the class of the decode group's completions.
func (e *Engine) decodeClass(l *lane, items []scheduler.DecodeItem) {
	if l.active() == nil {
		return
	}
	class, mixed, first := "", false, true
	for _, it := range items {
		if c := e.live[it.Req.ID()]; c != nil {
			mixed = mixed || (!first && c.req.Class != class)
			class, first = c.req.Class, false
		}
	}
	l.setClass(class, mixed)
}

// breakdown says whether this decode round, which would replay the graph of the
// bucket holding n rows, runs eagerly instead for the per-op breakdown.
func (e *Engine) breakdown(l *lane, n int) bool {
	p := e.opt.Profiler
	if p == nil || l.prof == nil || !p.Recording() {
		return false
	}
	g := e.graphSet.bucket(n)
	return g != nil && p.Breakdown(e.profName(), g.IO.Rows)
}
