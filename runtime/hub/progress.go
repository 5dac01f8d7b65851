package hub

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// IsTerminal reports whether w is a terminal (a character device), where a progress
// bar may be drawn; pipes, files and buffers get log lines instead.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress reports a pull: a bar redrawn on a terminal (cfg.Progress), otherwise log
// lines, one per file done and one every logEvery.
type progress struct {
	cfg   *Config
	log   *zap.Logger
	name  string
	total int64
	done  atomic.Int64
	begin time.Time

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex // serializes drawing
}

const (
	barEvery = 200 * time.Millisecond
	logEvery = 10 * time.Second
)

func newProgress(cfg *Config, name string, total int64, log *zap.Logger) *progress {
	return &progress{cfg: cfg, log: log, name: name, total: total, stop: make(chan struct{})}
}

func (p *progress) start() {
	p.begin = time.Now()
	if p.total <= 0 {
		return
	}
	every := logEvery
	if p.cfg.Progress != nil {
		every = barEvery
	}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.report(false)
			}
		}
	})
}

func (p *progress) add(n int64) { p.done.Add(n) }

func (p *progress) elapsed() time.Duration { return time.Since(p.begin) }

// fileDone logs a finished file (not on a terminal, where the bar says it).
func (p *progress) fileDone(file string, size int64) {
	if p.cfg.Progress == nil {
		p.log.Info("file downloaded and verified", zap.String("file", file), zap.Int64("bytes", size))
	}
}

func (p *progress) finish(ok bool) {
	if p.total <= 0 {
		return
	}
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
	if p.cfg.Progress != nil {
		p.report(true)
		p.mu.Lock()
		fmt.Fprintln(p.cfg.Progress)
		p.mu.Unlock()
	}
}

// report draws the bar or logs a progress line.
func (p *progress) report(final bool) {
	done := min(p.done.Load(), p.total)
	secs := time.Since(p.begin).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	frac := float64(done) / float64(p.total)
	eta := ""
	if rate > 0 && done < p.total {
		eta = " ETA " + time.Duration(float64(p.total-done)/rate*float64(time.Second)).Round(time.Second).String()
	}
	if p.cfg.Progress == nil {
		p.log.Info("download progress", zap.String("model", p.name), zap.Int64("bytes", done), zap.Int64("total_bytes", p.total),
			zap.String("percent", fmt.Sprintf("%.1f", 100*frac)), zap.String("rate", humanBytes(int64(rate))+"/s"))
		return
	}
	const width = 30
	fill := int(frac * width)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.cfg.Progress, "\r\033[Kpulling %s %s %3.0f%% %s/%s %s/s%s", p.name, bar, 100*frac,
		humanBytes(done), humanBytes(p.total), humanBytes(int64(rate)), eta)
}
