package engine

import (
	"context"
	"sync"
)

// outbox is a request's unbounded event queue: the step loop never blocks on a slow
// reader, and a pump goroutine hands events to the reader's channel in order.
type outbox struct {
	mu     sync.Mutex
	q      []Event
	notify chan struct{} // capacity 1: "something is queued"
	open   int           // completions not yet finished
	out    chan Event
}

func newOutbox(ctx context.Context, completions int) *outbox {
	o := &outbox{notify: make(chan struct{}, 1), open: completions, out: make(chan Event)}
	go o.pump(ctx)
	return o
}

// push queues an event; a final event (Finish set) counts one completion done.
func (o *outbox) push(ev Event) {
	o.mu.Lock()
	o.q = append(o.q, ev)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

func (o *outbox) pump(ctx context.Context) {
	defer close(o.out)
	var batch []Event
	for {
		o.mu.Lock()
		batch, o.q = o.q, batch[:0]
		o.mu.Unlock()
		for i, ev := range batch {
			select {
			case o.out <- ev:
			case <-ctx.Done():
				// The reader is gone; the engine aborts the request. Keep draining so
				// the final events are consumed, but deliver nothing more. The final
				// events already taken from the queue count too, or drain would wait
				// for them forever (and the channel would never close).
				for _, rest := range batch[i:] {
					if rest.Finish != "" {
						o.open--
					}
				}
				o.drain()
				return
			}
			if ev.Finish != "" {
				o.open--
				if o.open == 0 {
					return
				}
			}
		}
		select {
		case <-o.notify:
		case <-ctx.Done():
			o.drain()
			return
		}
	}
}

// drain discards events until every completion has finished, so nothing the engine
// pushes later can pile up.
func (o *outbox) drain() {
	for {
		o.mu.Lock()
		for _, ev := range o.q {
			if ev.Finish != "" {
				o.open--
			}
		}
		o.q = o.q[:0]
		done := o.open <= 0
		o.mu.Unlock()
		if done {
			return
		}
		<-o.notify
	}
}
