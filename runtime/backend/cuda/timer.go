//go:build cuda

package cuda

import (
	"errors"
	"fmt"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// Op timing for runtime/profiling: backend.OpTimer (CUDA events with timing, recorded
// between the ops on a stream) and backend.Ranger (NVTX ranges, nvtx.cu).
// UNTESTED ON A GPU: compiled only (no GPU was lent when it was written); the event
// calls are the ones Record and Wait already use, with timing on.

var (
	_ backend.OpTimer = (*Backend)(nil)
	_ backend.Ranger  = (*Backend)(nil)
)

// maxTimerMarks bounds one timer's marks between Resets: a Llama-3-8B pass marks
// 2 × (32 × 14 + 4) + 2 ≈ 900 points; a runaway caller gets an error, not unbounded
// events.
const maxTimerMarks = 1 << 14

// NewTimer returns a timer of stream s's work (backend.OpTimer).
func (c *Backend) NewTimer(s backend.Stream) (backend.Timer, error) {
	st, err := c.str("cuda timer", s)
	if err != nil {
		return nil, err
	}
	return &timer{st: st}, nil
}

// timer records timing events on its stream; they are created as marks need them
// and reused after Reset.
type timer struct {
	st     *stream
	events []cgo.Event
	n      int // marks since Reset
	closed bool
}

func (t *timer) Mark() (int, error) {
	switch {
	case t.closed:
		return 0, errors.New("cuda timer: closed")
	case t.st.capturing:
		return 0, fmt.Errorf("cuda timer mark: %w", errCapturing)
	case t.n == maxTimerMarks:
		return 0, fmt.Errorf("cuda timer mark: %d marks since the last reset, the most there can be", maxTimerMarks)
	}
	if t.n == len(t.events) {
		e, err := cgo.EventCreate(true)
		if err != nil {
			return 0, fmt.Errorf("cuda timer mark: %w", err)
		}
		t.events = append(t.events, e)
	}
	if err := t.events[t.n].Record(t.st.s); err != nil {
		return 0, fmt.Errorf("cuda timer mark: %w", err)
	}
	t.n++
	return t.n - 1, nil
}

func (t *timer) Elapsed(i, j int) (int64, error) {
	if t.closed || i < 0 || j < 0 || i >= t.n || j >= t.n {
		return 0, fmt.Errorf("cuda timer elapsed: marks %d and %d of %d", i, j, t.n)
	}
	if err := t.events[j].Sync(); err != nil {
		return 0, fmt.Errorf("cuda timer elapsed: %w", err)
	}
	ms, err := cgo.ElapsedMs(t.events[i], t.events[j])
	if err != nil {
		return 0, fmt.Errorf("cuda timer elapsed: %w", err)
	}
	return int64(float64(ms) * 1e6), nil
}

func (t *timer) Reset() { t.n = 0 }

func (t *timer) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	for _, e := range t.events {
		errs = append(errs, e.Destroy())
	}
	t.events, t.n = nil, 0
	return errors.Join(errs...)
}

// RangeID registers an NVTX range name (backend.Ranger).
func (c *Backend) RangeID(name string, color uint32) (int, error) {
	id, err := cgo.NVTXRangeID(name, color)
	if err != nil {
		return 0, fmt.Errorf("cuda nvtx range %q: %w", name, err)
	}
	return id, nil
}

// PushRange opens an NVTX range on the calling thread.
func (c *Backend) PushRange(id int) { cgo.NVTXPush(id) }

// PopRange closes the calling thread's innermost NVTX range.
func (c *Backend) PopRange() { cgo.NVTXPop() }
