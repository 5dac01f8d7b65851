// Package profiling measures where a model's passes spend their time: per op, per
// layer, per phase (prefill or decode) and batch bucket, for each request class, and
// writes it as a pprof profile (github.com/google/pprof/profile) that `go tool pprof`
// reads: sample types device-ns and calls, each sample's stack the model, the layer and
// the op, its labels phase, bucket, class and mode.
//
// A Profiler records in windows (Start … Stop, or Collect for a duration). A Lane
// traces one workspace's passes (it is the model.Tracer the engine sets on a
// workspace while a window is open): on a backend without device timers (the CPU,
// whose ops run synchronously) a monotonic host clock around each op; on one with
// them (backend.OpTimer: CUDA) an event before and after each op on the workspace's
// stream, read once the stream has passed them (at the lane's next pass, or when the
// window closes). A decode step replayed as a captured graph runs no host code per op:
// the engine times the whole replay round (mode "graph"), and while a window is open
// it runs one decode round in BreakdownEvery per bucket eagerly, op by op, for the
// per-op breakdown of the same step (mode "eager").
//
// Each sample's device-ns is the time its op ran (on the CPU the op's host wall time),
// and every pass's own span is kept beside them (Series.StepNs): the report's share of
// step time is the ops' sum over the steps' (on the CPU at most 100%: the ops are
// disjoint intervals inside their pass; the rest is the issuer's bookkeeping).
//
// With NVTX on (NVTXWanted: a tool such as nsys or ncu attached, or VIREO_NVTX=1)
// and a backend that is a backend.Ranger, lanes also open NVTX ranges around each
// pass, layer and op, and around graph replays, whether or not a window is open.
//
// Labels for Go's own CPU profiles (request id, phase) are in labels.go.
package profiling

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-ai/vireo/runtime/model"
)

// Options configure a Profiler.
type Options struct {
	// Backend names the backend in the profile's comments ("cpu", "cuda").
	Backend string
	// BreakdownEvery: while a window is open and decode steps replay captured graphs,
	// one decode round in this many per bucket runs eagerly, op by op, to break the
	// replayed step down per op; the first round of each bucket in a window always
	// does. 0 means 16; negative never runs one (replays only).
	BreakdownEvery int
	// NVTX opens NVTX ranges on backends that have them (see NVTXWanted, the default
	// New applies when NVTX is nil).
	NVTX *bool
}

// ErrBusy is Start's error while a window is already open.
var ErrBusy = errors.New("profiling: a profile is already being recorded")

// Profiler records op times in windows. Its methods are safe for concurrent use.
type Profiler struct {
	opt       Options
	nvtx      bool
	base      time.Time // the host clock's origin (monotonic)
	recording atomic.Bool
	gen       atomic.Uint64 // the window's generation: passes of an older one are dropped

	mu        sync.Mutex
	start     time.Time
	series    map[seriesKey]*series
	breakdown map[breakdownKey]int // decode rounds per bucket in this window (graphs)
	lanes     []*Lane              // flushed by Stop
}

type seriesKey struct {
	model string
	Labels
}

type breakdownKey struct {
	model string
	rows  int
}

// Labels say what kind of pass a sample comes from.
type Labels struct {
	// Phase is "prefill", "decode" or "mixed" (model.Phase).
	Phase string `json:"phase"`
	// Bucket is the pass's batch bucket: "N seqs" for decode passes (sequences rounded
	// up to a power of two, capped at the lane's MaxSeqs: the engine's decode graph
	// buckets), "N tokens" for prefill and mixed passes (tokens rounded up to a power
	// of two).
	Bucket string `json:"bucket"`
	// Class is the request class of the pass's sequences (engine.Request.Class, "" when
	// none was set), "mixed" when they differ.
	Class string `json:"class"`
	// Mode is "eager" (op by op) or "graph" (a replay of a captured decode step).
	Mode string `json:"mode"`
}

// Modes of a sample.
const (
	ModeEager = "eager"
	ModeGraph = "graph"
)

// GraphReplay is the op name of a replayed decode step's samples.
const GraphReplay = "graph_replay"

// ClassMixed is the class of a pass whose sequences are of different classes.
const ClassMixed = "mixed"

// series is one model's samples under one set of labels.
type series struct {
	model  string
	labels Labels
	layers int
	cells  []cell // [(layers+1)*NumOps]: (layer+1)*NumOps + op
	graph  cell   // replays: ns, steps
	steps  int64  // passes (graph: steps replayed)
	stepNs int64
}

type cell struct{ ns, calls int64 }

// New returns a profiler, not recording.
func New(opt Options) *Profiler {
	if opt.BreakdownEvery == 0 {
		opt.BreakdownEvery = 16
	}
	p := &Profiler{opt: opt, base: time.Now()}
	if opt.NVTX != nil {
		p.nvtx = *opt.NVTX
	} else {
		p.nvtx = NVTXWanted()
	}
	return p
}

// NVTXWanted reports whether NVTX ranges are wanted: VIREO_NVTX=1 forces them on and
// VIREO_NVTX=0 off; otherwise they are on when a tool is attached through NVTX's own
// injection variable (NVTX_INJECTION64_PATH, which nsys and ncu set for the process
// they profile). Without a tool an NVTX call is cheap but not free: a cgo call each.
func NVTXWanted() bool {
	switch os.Getenv("VIREO_NVTX") {
	case "1", "true", "on":
		return true
	case "0", "false", "off":
		return false
	}
	return os.Getenv("NVTX_INJECTION64_PATH") != ""
}

// NVTX reports whether lanes open NVTX ranges (on backends that have them).
func (p *Profiler) NVTX() bool { return p.nvtx }

// Recording reports whether a window is open.
func (p *Profiler) Recording() bool { return p.recording.Load() }

// now is the host clock: nanoseconds since the profiler's creation, monotonic.
func (p *Profiler) now() int64 { return int64(time.Since(p.base)) }

// Start opens a window: what was recorded before is dropped. ErrBusy when one is open.
func (p *Profiler) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.recording.Load() {
		return ErrBusy
	}
	p.gen.Add(1)
	p.start = time.Now()
	p.series = map[seriesKey]*series{}
	p.breakdown = map[breakdownKey]int{}
	p.recording.Store(true)
	return nil
}

// Stop closes the window and returns what it recorded: the passes that began inside
// it, device times read (waiting for the device where a lane's last pass is still
// running). Stop without an open window returns an empty snapshot.
func (p *Profiler) Stop() *Snapshot {
	p.mu.Lock()
	lanes := slices.Clone(p.lanes)
	open := p.recording.Load()
	p.mu.Unlock()
	if open {
		for _, l := range lanes {
			l.flush() // takes p.mu to merge
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	snap := &Snapshot{Start: p.start, Backend: p.opt.Backend}
	if !open {
		return snap
	}
	for _, l := range lanes {
		if err := l.takeErr(); err != nil && len(snap.Errors) < 10 && !slices.Contains(snap.Errors, err.Error()) {
			snap.Errors = append(snap.Errors, err.Error())
		}
	}
	p.recording.Store(false)
	snap.Duration = time.Since(p.start)
	for _, s := range p.series {
		snap.Series = append(snap.Series, s.export())
	}
	slices.SortFunc(snap.Series, func(a, b Series) int {
		return strings.Compare(a.sortKey(), b.sortKey())
	})
	p.series, p.breakdown = nil, nil
	return snap
}

// Collect records for d, or until done is closed, and returns the snapshot.
func (p *Profiler) Collect(d time.Duration, done <-chan struct{}) (*Snapshot, error) {
	if err := p.Start(); err != nil {
		return nil, err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
	return p.Stop(), nil
}

// Breakdown reports whether the engine should run this decode round of a bucket of
// rows eagerly, op by op (see Options.BreakdownEvery), and counts the round.
func (p *Profiler) Breakdown(modelName string, rows int) bool {
	if !p.recording.Load() || p.opt.BreakdownEvery < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.breakdown == nil {
		return false
	}
	k := breakdownKey{modelName, rows}
	n := p.breakdown[k]
	p.breakdown[k] = n + 1
	return n%p.opt.BreakdownEvery == 0
}

// merge adds one pass (or replay) to its series, if it belongs to the open window.
// Called with p.mu unlocked.
func (p *Profiler) merge(gen uint64, modelName string, layers int, labels Labels, cells []cell, graph cell, steps, stepNs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gen != p.gen.Load() || !p.recording.Load() || p.series == nil {
		return
	}
	k := seriesKey{modelName, labels}
	s := p.series[k]
	if s == nil {
		s = &series{model: modelName, labels: labels, layers: layers, cells: make([]cell, (layers+1)*numOps)}
		p.series[k] = s
	}
	for i, c := range cells {
		if c.calls != 0 && i < len(s.cells) {
			s.cells[i].ns += c.ns
			s.cells[i].calls += c.calls
		}
	}
	s.graph.ns += graph.ns
	s.graph.calls += graph.calls
	s.steps += steps
	s.stepNs += stepNs
}

// numOps is model.NumOps as an int.
const numOps = int(model.NumOps)

func (p *Profiler) register(l *Lane) {
	p.mu.Lock()
	p.lanes = append(p.lanes, l)
	p.mu.Unlock()
}

func (p *Profiler) unregister(l *Lane) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.lanes, l); i >= 0 {
		p.lanes = slices.Delete(p.lanes, i, i+1)
	}
}

func (s *series) export() Series {
	out := Series{Model: s.model, Labels: s.labels, Layers: s.layers, Steps: s.steps, StepNs: s.stepNs}
	for i, c := range s.cells {
		if c.calls == 0 {
			continue
		}
		op := model.Op(i % numOps)
		out.Ops = append(out.Ops, OpTime{Op: op.String(), Layer: i/numOps - 1, Ns: c.ns, Calls: c.calls})
	}
	if s.graph.calls != 0 {
		out.Ops = append(out.Ops, OpTime{Op: GraphReplay, Layer: -1, Ns: s.graph.ns, Calls: s.graph.calls})
	}
	return out
}

// Snapshot is what a window recorded.
type Snapshot struct {
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Backend  string        `json:"backend"`
	Series   []Series      `json:"series"`
	// Errors are the timing errors the lanes met (a pass whose timing failed is left
	// out; inference goes on): at most 10, each once.
	Errors []string `json:"errors,omitempty"`
}

// Series is one model's samples under one set of labels.
type Series struct {
	Model  string `json:"model"`
	Labels Labels `json:"labels"`
	Layers int    `json:"layers"`
	// Steps counts the passes (mode graph: the steps replayed) and StepNs sums their
	// spans: on the CPU the host wall time from the pass's first op to its end, with
	// device timers the device time from the event before its first op to the one
	// after its last (replays: the rounds' device time).
	Steps  int64    `json:"steps"`
	StepNs int64    `json:"step_ns"`
	Ops    []OpTime `json:"ops"`
}

// OpTime is one op's time at one layer (-1: outside the layer stack) of a series.
type OpTime struct {
	Op    string `json:"op"`
	Layer int    `json:"layer"`
	Ns    int64  `json:"ns"`
	Calls int64  `json:"calls"`
}

func (s *Series) sortKey() string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%020d\x00%s\x00%s", s.Model, s.Labels.Mode, s.Labels.Phase, bucketSize(s.Labels.Bucket), s.Labels.Bucket, s.Labels.Class)
}

// bucketSize is the number in a bucket label ("8 seqs": 8).
func bucketSize(b string) int {
	n := 0
	for _, r := range b {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}
