package cpu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// pool runs the pieces of one op on persistent worker goroutines, sharing the cores
// politely: this machine's cores are shared with other processes, and a thread that
// polls for work it does not get steals a core from whoever needs it.
//
//   - Waiting is bounded: a worker polls for its next task (with the PAUSE hint, never
//     runtime.Gosched, whose scheduler round trip cost more than the ops it waited
//     for) for at most spinFor, then parks on a channel; the caller does the same
//     while it waits for the last piece. A decode step's ops follow each other within
//     microseconds, so workers stay awake through a step and park between requests.
//   - Work is claimed, not assigned: an op is cut into pieces that the caller and the
//     woken workers take from a shared counter. A worker that is late (parked, or its
//     thread descheduled by the OS) costs nothing: the others take its pieces. The
//     caller waits only for pieces already taken.
//   - Each op is sized by its work (Backend.chunks): tiny ops run inline and wake
//     nobody.
//
// Which goroutine computes a piece never changes a result: every output element is
// computed by the same operations wherever it lands.
type pool struct {
	busy    sync.Mutex // one op at a time; a concurrent lane runs its op without the pool
	workers []*worker
	done    chan struct{} // capacity 1: wakes a parked caller
}

// spinFor is how long a waiting goroutine polls before it parks: longer than the gap
// between two ops of a decode step, far shorter than a scheduler time slice.
const spinFor = 50 * time.Microsecond

// piecesPerChunk is how many pieces each participant's share is cut into, so that
// the others can absorb a late worker's share.
const piecesPerChunk = 4

// Parking states of a worker or a waiting caller.
const (
	awake  = 0
	parked = 1
	woken  = 2 // a waker claimed the parked goroutine and sends (or sent) its token
)

type worker struct {
	stop  atomic.Bool
	task  atomic.Pointer[task] // the latest task posted
	state atomic.Int32
	wake  chan struct{} // capacity 1
}

// task is one op's work; a fresh one per op, so a late worker holding an old task
// finds it exhausted and never touches the next op's.
type task struct {
	fn     func(lo, hi int)
	n      int
	align  int
	pieces int64
	next   atomic.Int64 // next piece to claim
	left   atomic.Int64 // pieces not yet finished
	waiter atomic.Int32 // the caller's parking state
	done   chan struct{}
}

func newPool(n int) *pool {
	p := &pool{done: make(chan struct{}, 1)}
	for i := 0; i < n; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go w.loop()
	}
	return p
}

// bounds are piece i's elements: pieces cut at multiples of align (except the end).
func (t *task) bounds(i int64) (int, int) {
	units := (t.n + t.align - 1) / t.align
	lo := int(int64(units)*i/t.pieces) * t.align
	hi := int(int64(units)*(i+1)/t.pieces) * t.align
	return min(lo, t.n), min(hi, t.n)
}

// work claims and runs pieces until none is left.
func (t *task) work() {
	for {
		i := t.next.Add(1) - 1
		if i >= t.pieces {
			return
		}
		if lo, hi := t.bounds(i); lo < hi {
			t.fn(lo, hi)
		}
		if t.left.Add(-1) == 0 && t.waiter.CompareAndSwap(parked, woken) {
			t.done <- struct{}{}
		}
	}
}

// wait returns once every piece is finished: it polls for spinFor, then parks.
func (t *task) wait() {
	if spin(func() bool { return t.left.Load() == 0 }) {
		return
	}
	// The last finisher decrements left, then claims a parked waiter; we publish
	// parked, then read left: one of us sees the other.
	t.waiter.Store(parked)
	if t.left.Load() == 0 && t.waiter.CompareAndSwap(parked, awake) {
		return
	}
	<-t.done
	t.waiter.Store(awake)
}

// spin polls cond for up to spinFor and reports whether it became true.
func spin(cond func() bool) bool {
	var start time.Time
	for i := 1; ; i++ {
		if cond() {
			return true
		}
		kern.Pause()
		if i%64 == 0 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > spinFor {
				return false
			}
		}
	}
}

func (w *worker) post(t *task) {
	w.task.Store(t)
	w.rouse()
}

// rouse wakes the worker if it is parked.
func (w *worker) rouse() {
	if w.state.CompareAndSwap(parked, woken) {
		w.wake <- struct{}{}
	}
}

func (w *worker) loop() {
	var seen *task
	for {
		if t := w.task.Load(); t != seen {
			seen = t
			t.work()
			continue
		}
		if w.stop.Load() {
			return
		}
		news := func() bool { return w.task.Load() != seen || w.stop.Load() }
		if spin(news) {
			continue
		}
		// Park. post stores the task, then claims a parked worker; we publish parked,
		// then re-read the task: one of us sees the other.
		w.state.Store(parked)
		if news() && w.state.CompareAndSwap(parked, awake) {
			continue
		}
		<-w.wake
		w.state.Store(awake)
	}
}

// close stops the workers; the pool must not be used afterwards.
func (p *pool) close() {
	p.busy.Lock()
	defer p.busy.Unlock()
	for _, w := range p.workers {
		w.stop.Store(true)
		w.rouse()
	}
	p.workers = nil
}

// run splits [0, n) into pieces at multiples of align, runs them on the caller and up
// to chunks-1 workers, and returns when all are done. It reports false (running
// nothing) when another op holds the pool.
func (p *pool) run(n, chunks, align int, fn func(lo, hi int)) bool {
	if !p.busy.TryLock() {
		return false
	}
	defer p.busy.Unlock()
	chunks = min(chunks, len(p.workers)+1)
	align = max(align, 1)
	units := (n + align - 1) / align
	t := &task{fn: fn, n: n, align: align, pieces: int64(min(units, chunks*piecesPerChunk)), done: p.done}
	t.left.Store(t.pieces)
	for _, w := range p.workers[:chunks-1] {
		w.post(t)
	}
	t.work()
	t.wait()
	return true
}
