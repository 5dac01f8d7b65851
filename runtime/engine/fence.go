package engine

import (
	"fmt"
	"slices"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/kv"
	"github.com/vireo-ai/vireo/scheduler"
)

// fences orders the plan's groups on the device and keeps KV blocks alive while device
// work may still touch them. Every group's forward pass is issued on its lane's stream
// and followed by an event; then:
//
//   - before a group is issued, its stream waits for the event of the last group that
//     wrote any block it reads or writes (a prefill chunk on another lane, the prefill
//     of a prefix it shares, the last prefill chunk before its first decode step);
//   - after the plan is issued, every block a group touched gets one more reference,
//     released by kv.BlockPool.ReleaseAfter when the group's event completes. The
//     scheduler's own release (at cancellation, preemption or the end of a request)
//     then only drops its reference: the block returns to the free list, or to the
//     evictable prefix cache, when the last device work on it has finished.
//
// Prefix sharing and decode admission are therefore gated on the device (a stream
// wait on the writer's event) rather than on the host: the host may plan ahead, the
// device runs the reader after the writer. On the CPU backend every event is complete
// when Record returns, so no wait is issued, no reference is taken and the engine
// behaves exactly as it did when it ran plans synchronously.
type fences struct {
	be    backend.Backend
	pool  *kv.BlockPool
	bs    int
	last  []backend.Event // [NumBlocks]: event of the last group that wrote the block, nil once done
	dirty []int32         // blocks whose last is not nil
	gate  bool            // false only in tests, to show the checker catches its absence
	held  []int32         // scratch of hold
}

func newFences(be backend.Backend, pool *kv.BlockPool) *fences {
	return &fences{be: be, pool: pool, bs: pool.BlockSize(), last: make([]backend.Event, pool.NumBlocks()), gate: true}
}

// span is what one plan item touches: positions [0, end) of its block table are read,
// positions [start, end) written.
type span struct {
	blocks     []int32
	start, end int
}

func (f *fences) blocksFor(tokens int) int { return (tokens + f.bs - 1) / f.bs }

// wait makes stream s wait for the writers of every block the spans touch. It runs on
// the group's goroutine; f.last is only written between plans (record), so concurrent
// groups read it safely.
func (f *fences) wait(s backend.Stream, spans []span, waits []backend.Event) ([]backend.Event, error) {
	waits = waits[:0]
	if !f.gate {
		return waits, nil
	}
	for _, sp := range spans {
		for _, b := range sp.blocks[:f.blocksFor(sp.end)] {
			ev := f.last[b]
			if ev == nil || slices.Contains(waits, ev) || ev.Done() {
				continue
			}
			if err := f.be.Wait(s, ev); err != nil {
				return waits, fmt.Errorf("wait for block %d's writer: %w", b, err)
			}
			waits = append(waits, ev)
		}
	}
	return waits, nil
}

// record notes, on the loop goroutine after a plan's groups are issued, that ev ends
// the work of spans: written blocks remember ev as their writer, and every touched
// block stays referenced until ev completes.
func (f *fences) record(ev backend.Event, spans []span) {
	if ev == nil || !f.gate || ev.Done() {
		return
	}
	f.held = f.held[:0]
	for _, sp := range spans {
		n := f.blocksFor(sp.end)
		for _, b := range sp.blocks[sp.start/f.bs : n] {
			if f.last[b] == nil {
				f.dirty = append(f.dirty, b)
			}
			f.last[b] = ev
		}
		f.held = append(f.held, sp.blocks[:n]...)
	}
	// A shared prefix block may appear in several spans of one group: one reference
	// per appearance, released together, keeps the count right.
	f.pool.Share(f.held)
	f.pool.ReleaseAfter(f.held, ev)
}

// forget drops writer events that have completed, so later waits skip them cheaply.
func (f *fences) forget() {
	k := 0
	for _, b := range f.dirty {
		if f.last[b].Done() {
			f.last[b] = nil
			continue
		}
		f.dirty[k] = b
		k++
	}
	f.dirty = f.dirty[:k]
}

func prefillSpans(dst []span, items []scheduler.PrefillItem) []span {
	for _, it := range items {
		dst = append(dst, span{blocks: it.BlockTable, start: it.Start, end: it.End})
	}
	return dst
}

// decodeSpans: a decode item writes positions Pos … Pos+NumSteps+Lookahead-1; with a
// draft model, a verification pass may also write the draft's KV from draftFrom(item)
// on (its catch-up).
func decodeSpans(dst []span, items []scheduler.DecodeItem, draftFrom func(scheduler.DecodeItem) int) []span {
	for _, it := range items {
		start := it.Pos
		if draftFrom != nil && it.Lookahead > 0 {
			start = min(start, draftFrom(it))
		}
		dst = append(dst, span{blocks: it.BlockTable, start: start, end: it.Pos + it.NumSteps + it.Lookahead})
	}
	return dst
}
