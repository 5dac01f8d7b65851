package profiling

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
)

// LaneOptions describe the passes a Lane traces.
type LaneOptions struct {
	Model   string // the model's name: the root of every sample's stack
	Layers  int    // the model's layers
	MaxSeqs int    // caps decode buckets (the engine's MaxNumSeqs; 0: no cap)
}

// Lane traces the passes issued on one stream (one workspace, or a target's and its
// draft's workspaces on the same stream, each with its own Lane): it is the
// model.Tracer a workspace is given while a window is open or NVTX is on, and it times
// the engine's graph replays on that stream. A Lane serves one pass at a time; Stop
// reads its finished passes concurrently.
type Lane struct {
	p      *Profiler
	opt    LaneOptions
	ranges *ranges // nil: no NVTX
	class  string  // the next passes' request class

	// Device timing: two slots, so a pass's events are read while the next one is
	// issued; nil timers: the host clock.
	mu    sync.Mutex // guards slots' states and pending data against flush
	slots [2]slot
	cur   *slot // the slot of the pass in progress (device timing)
	dev   bool

	// The pass in progress (the issuing goroutine only).
	rec    bool // timing it
	gen    uint64
	labels Labels
	t0     int64 // host clock: the pass's start; device: unused
	opT0   int64 // host clock: the op's start
	opMark int   // device: the op's first mark
	cells  []cell
	layers int
	locked bool // the goroutine is locked to its thread for NVTX
	bucket map[bucketName]string

	errMu sync.Mutex
	err   error // the first timing error since the last window closed
}

type bucketName struct {
	n      int
	tokens bool
}

// slot is one pass's device marks.
type slot struct {
	t      backend.Timer
	state  uint8 // slotFree, slotRecording, slotPending
	gen    uint64
	labels Labels
	marks  []opMark
	begin  int // the pass's (or replay's) first mark
	end    int
	replay int // > 0: a graph replay of this many steps
}

const (
	slotFree = iota
	slotRecording
	slotPending
)

type opMark struct {
	cell int // index into cells
	i, j int
}

// NewLane returns a lane that traces passes issued on stream s of be, registered with
// p (Stop reads its finished passes). Close it when the stream is done with.
func NewLane(p *Profiler, be backend.Backend, s backend.Stream, opt LaneOptions) (*Lane, error) {
	if opt.Layers < 0 {
		return nil, fmt.Errorf("profiling: %d layers", opt.Layers)
	}
	l := &Lane{p: p, opt: opt, cells: make([]cell, (opt.Layers+1)*numOps), layers: opt.Layers, bucket: map[bucketName]string{}}
	if ot, ok := be.(backend.OpTimer); ok {
		for i := range l.slots {
			t, err := ot.NewTimer(s)
			if err != nil {
				l.closeTimers()
				return nil, fmt.Errorf("profiling: %w", err)
			}
			l.slots[i].t = t
		}
		l.dev = true
	}
	if r, ok := be.(backend.Ranger); ok && p.nvtx {
		l.ranges = newRanges(r, opt.Layers)
	}
	p.register(l)
	return l, nil
}

// Active reports whether the lane has work: a window is open or NVTX ranges are on.
// The engine sets the lane as its workspace's tracer only then.
func (l *Lane) Active() bool { return l.ranges != nil || l.p.recording.Load() }

// SetClass sets the request class of the next passes (see Labels.Class).
func (l *Lane) SetClass(class string) { l.class = class }

// Close stops reading the lane's passes and frees its device timers.
func (l *Lane) Close() error {
	l.p.unregister(l)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeTimers()
}

func (l *Lane) closeTimers() error {
	var errs []error
	for i := range l.slots {
		if t := l.slots[i].t; t != nil {
			errs = append(errs, t.Close())
			l.slots[i].t = nil
		}
	}
	return errors.Join(errs...)
}

// takeErr returns the first timing error since the last call, and forgets it.
func (l *Lane) takeErr() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	err := l.err
	l.err = nil
	return err
}

// bucketLabel is the bucket of a pass (see Labels.Bucket).
func (l *Lane) bucketLabel(info model.PassInfo) string {
	k := bucketName{n: info.Tokens, tokens: true}
	if info.Phase == model.PhaseDecode {
		k = bucketName{n: info.Seqs}
	}
	k.n = ceilPow2(k.n)
	if !k.tokens && l.opt.MaxSeqs > 0 && k.n > l.opt.MaxSeqs {
		k.n = l.opt.MaxSeqs
	}
	return l.bucketOf(k)
}

func (l *Lane) bucketOf(k bucketName) string {
	if s, ok := l.bucket[k]; ok {
		return s
	}
	s := fmt.Sprintf("%d seqs", k.n)
	if k.tokens {
		s = fmt.Sprintf("%d tokens", k.n)
	}
	l.bucket[k] = s
	return s
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// BeginPass implements model.Tracer.
func (l *Lane) BeginPass(info model.PassInfo) {
	if l.ranges != nil {
		runtime.LockOSThread()
		l.locked = true
		l.ranges.pass(info.Phase, l.bucketLabel(info))
	}
	l.rec = l.p.recording.Load()
	if !l.rec {
		return
	}
	l.gen = l.p.gen.Load()
	l.labels = Labels{Phase: info.Phase.String(), Bucket: l.bucketLabel(info), Class: l.class, Mode: ModeEager}
	if l.dev {
		l.rec = l.beginSlot(0)
		return
	}
	l.t0 = l.p.now()
}

// beginSlot takes a device slot for a pass (replay > 0: a replay of that many steps)
// and marks its start; false when timing failed.
func (l *Lane) beginSlot(replay int) bool {
	l.mu.Lock()
	s := l.freeSlot()
	l.mu.Unlock()
	if s == nil {
		return false
	}
	s.gen, s.labels, s.marks, s.replay = l.gen, l.labels, s.marks[:0], replay
	i, err := s.t.Mark()
	if l.fail(err) {
		l.mu.Lock()
		s.state = slotFree
		s.t.Reset()
		l.mu.Unlock()
		return false
	}
	s.begin = i
	l.cur = s
	return true
}

// freeSlot returns a slot to record into, reading the older pending one first if
// both are pending (l.mu held).
func (l *Lane) freeSlot() *slot {
	var s *slot
	for i := range l.slots {
		if l.slots[i].state == slotFree {
			s = &l.slots[i]
			break
		}
	}
	if s == nil {
		// Both pending: read the older (the lower generation of marks is not
		// tracked; either is at most two passes old, so read both).
		for i := range l.slots {
			l.resolve(&l.slots[i])
		}
		s = &l.slots[0]
	}
	if s.t == nil {
		return nil // closed
	}
	s.state = slotRecording
	return s
}

// resolve reads a pending slot's times and merges them (l.mu held).
func (l *Lane) resolve(s *slot) {
	if s.state != slotPending {
		return
	}
	defer func() {
		s.state = slotFree
		s.t.Reset()
	}()
	step, err := s.t.Elapsed(s.begin, s.end)
	if l.fail(err) {
		return
	}
	if s.replay > 0 {
		l.p.merge(s.gen, l.opt.Model, l.layers, s.labels, nil, cell{step, int64(s.replay)}, int64(s.replay), step)
		return
	}
	cells := l.cells // the issuing goroutine uses cells only with host timing
	clear(cells)
	for _, m := range s.marks {
		ns, err := s.t.Elapsed(m.i, m.j)
		if l.fail(err) {
			return
		}
		cells[m.cell].ns += ns
		cells[m.cell].calls++
	}
	l.p.merge(s.gen, l.opt.Model, l.layers, s.labels, cells, cell{}, 1, step)
}

// fail records err (the first one) and reports whether there was one.
func (l *Lane) fail(err error) bool {
	if err == nil {
		return false
	}
	l.errMu.Lock()
	if l.err == nil {
		l.err = err
	}
	l.errMu.Unlock()
	return true
}

// flush reads every pending slot (Stop).
func (l *Lane) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.slots {
		l.resolve(&l.slots[i])
	}
}

// BeginLayer implements model.Tracer.
func (l *Lane) BeginLayer(layer int) {
	if l.ranges != nil {
		l.ranges.layer(layer)
	}
}

// EndLayer implements model.Tracer.
func (l *Lane) EndLayer(int) {
	if l.ranges != nil {
		l.ranges.pop()
	}
}

// BeginOp implements model.Tracer.
func (l *Lane) BeginOp(op model.Op, layer int) {
	if l.ranges != nil {
		l.ranges.op(op)
	}
	if !l.rec {
		return
	}
	if l.dev {
		i, err := l.cur.t.Mark()
		if l.fail(err) {
			l.abandon()
			return
		}
		l.opMark = i
		return
	}
	l.opT0 = l.p.now()
}

// EndOp implements model.Tracer.
func (l *Lane) EndOp(op model.Op, layer int) {
	if l.rec {
		idx := (layer+1)*numOps + int(op)
		if layer < -1 || layer >= l.layers || op >= model.NumOps {
			idx = -1 // not this model's: not counted
		}
		if l.dev {
			j, err := l.cur.t.Mark()
			if l.fail(err) {
				l.abandon()
			} else if idx >= 0 {
				l.cur.marks = append(l.cur.marks, opMark{idx, l.opMark, j})
			}
		} else if idx >= 0 {
			c := &l.cells[idx]
			c.ns += l.p.now() - l.opT0
			c.calls++
		}
	}
	if l.ranges != nil {
		l.ranges.pop()
	}
}

// abandon drops the pass in progress (device timing failed).
func (l *Lane) abandon() {
	l.rec = false
	if l.cur != nil {
		l.mu.Lock()
		l.cur.state = slotFree
		l.cur.t.Reset()
		l.mu.Unlock()
		l.cur = nil
	}
}

// EndPass implements model.Tracer.
func (l *Lane) EndPass(error) {
	if l.rec {
		l.rec = false
		if l.dev {
			l.endSlot()
		} else {
			step := l.p.now() - l.t0
			l.p.merge(l.gen, l.opt.Model, l.layers, l.labels, l.cells, cell{}, 1, step)
			clear(l.cells)
		}
	}
	if l.ranges != nil {
		l.ranges.pop()
		if l.locked {
			l.locked = false
			runtime.UnlockOSThread()
		}
	}
}

// endSlot marks the end of the slot in progress and leaves it pending.
func (l *Lane) endSlot() {
	s := l.cur
	l.cur = nil
	if s == nil {
		return
	}
	j, err := s.t.Mark()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail(err) {
		s.state = slotFree
		s.t.Reset()
		return
	}
	s.end = j
	s.state = slotPending
}

// BeginReplay is called before a decode round that replays a captured step of a
// bucket of rows, steps times (backend.DecodeLooper.DecodeLoop), on the lane's stream;
// EndReplay after it is issued. The round's device time is a sample of op
// GraphReplay with steps calls.
func (l *Lane) BeginReplay(rows, steps int) {
	bucket := l.bucketOf(bucketName{n: rows})
	if l.ranges != nil {
		runtime.LockOSThread()
		l.locked = true
		l.ranges.replay(bucket)
	}
	l.rec = l.p.recording.Load() && steps > 0
	if !l.rec {
		return
	}
	l.gen = l.p.gen.Load()
	l.labels = Labels{Phase: model.PhaseDecode.String(), Bucket: bucket, Class: l.class, Mode: ModeGraph}
	if l.dev {
		l.rec = l.beginSlot(steps)
		return
	}
	l.t0, l.opMark = l.p.now(), steps
}

// EndReplay closes what BeginReplay opened.
func (l *Lane) EndReplay() {
	if l.rec {
		l.rec = false
		if l.dev {
			l.endSlot()
		} else {
			ns := l.p.now() - l.t0
			l.p.merge(l.gen, l.opt.Model, l.layers, l.labels, nil, cell{ns, int64(l.opMark)}, int64(l.opMark), ns)
		}
	}
	if l.ranges != nil {
		l.ranges.pop()
		if l.locked {
			l.locked = false
			runtime.UnlockOSThread()
		}
	}
}
