package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress shows how many requests have finished, on stderr: a bar redrawn in place on
// a terminal, a plain line every 10% otherwise (logs, CI). A nil *Progress does nothing.
type Progress struct {
	mu         sync.Mutex
	w          io.Writer
	tty        bool
	label      string
	total      int
	done, fail int
	start      time.Time
	lastDraw   time.Time
	lastDecile int
}

// NewProgress reports to w; it draws a bar when w is a terminal.
func NewProgress(w io.Writer, label string, total int) *Progress {
	return &Progress{w: w, tty: isTerminal(w), label: label, total: total, start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Done counts one finished request.
func (p *Progress) Done(ok bool) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if !ok {
		p.fail++
	}
	now := time.Now()
	if p.tty {
		if p.done == p.total || now.Sub(p.lastDraw) > 100*time.Millisecond {
			p.lastDraw = now
			const width = 30
			n := width * p.done / max(1, p.total)
			fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d  %d failed  %.1fs", p.label, strings.Repeat("#", n), strings.Repeat(".", width-n),
				p.done, p.total, p.fail, now.Sub(p.start).Seconds())
			if p.done == p.total {
				fmt.Fprintln(p.w)
			}
		}
		return
	}
	if d := 10 * p.done / max(1, p.total); d > p.lastDecile || p.done == p.total {
		p.lastDecile = d
		fmt.Fprintf(p.w, "%s: %d/%d requests done, %d failed, %.1fs\n", p.label, p.done, p.total, p.fail, now.Sub(p.start).Seconds())
	}
}
