package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// pool runs the pieces of one op on persistent worker goroutines. Goroutines started
// per op cost microseconds to wake, which small models (stories260K runs ~40 ops per
// token in ~50 µs) cannot afford; the workers here spin briefly between ops, as
// OpenMP's threads do, and park when the backend goes idle.
type pool struct {
	busy    sync.Mutex // one op at a time; a concurrent lane runs its op inline
	workers []*worker
}

// spinLimit is how many polls an idle worker makes before parking (tens of µs).
const spinLimit = 20000

type worker struct {
	stop     atomic.Bool
	gen      atomic.Uint64 // generation of the task posted
	done     atomic.Uint64 // generation of the task finished
	sleeping atomic.Bool
	wake     chan struct{} // capacity 1
	fn       func(lo, hi int)
	lo, hi   int
}

func newPool(n int) *pool {
	p := &pool{}
	for i := 0; i < n; i++ {
		w := &worker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go w.loop()
	}
	return p
}

func (w *worker) loop() {
	var seen uint64
	for {
		for spins := 0; w.gen.Load() == seen; spins++ {
			if w.stop.Load() {
				return
			}
			if spins < spinLimit {
				if spins&255 == 255 {
					runtime.Gosched()
				}
				continue
			}
			// Park. The poster stores gen before reading sleeping and we store
			// sleeping before re-reading gen, so one of us sees the other.
			w.sleeping.Store(true)
			if w.gen.Load() == seen {
				<-w.wake
			}
			w.sleeping.Store(false)
			spins = 0
		}
		seen = w.gen.Load()
		w.fn(w.lo, w.hi)
		w.fn = nil
		w.done.Store(seen)
	}
}

// close stops the workers; the pool must not be used afterwards.
func (p *pool) close() {
	p.busy.Lock()
	defer p.busy.Unlock()
	for _, w := range p.workers {
		w.stop.Store(true)
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	p.workers = nil
}

// run splits [0, n) into len(workers)+1 contiguous chunks, runs the first on the
// caller and the rest on the workers, and returns when all are done. It reports false
// (running nothing) when another op holds the pool.
func (p *pool) run(n, chunks int, fn func(lo, hi int)) bool {
	if !p.busy.TryLock() {
		return false
	}
	defer p.busy.Unlock()
	chunks = min(chunks, len(p.workers)+1)
	per := (n + chunks - 1) / chunks
	used := p.workers[:0]
	for lo := per; lo < n; lo += per {
		w := p.workers[len(used)]
		used = p.workers[:len(used)+1]
		w.fn, w.lo, w.hi = fn, lo, min(lo+per, n)
		w.gen.Add(1)
		if w.sleeping.Load() {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
	fn(0, min(per, n))
	for _, w := range used {
		g := w.gen.Load()
		for spins := 0; w.done.Load() != g; spins++ {
			if spins&255 == 255 {
				runtime.Gosched()
			}
		}
	}
	return true
}
