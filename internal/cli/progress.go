package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/model"
)

// LoadProgress reports a model load (model.Options.Progress): on a terminal a bar on
// w, redrawn at most every 100 ms and ended with a newline by Done; otherwise a log
// line when the first matrix is loaded (so a file that fails to open logs only its
// error) and one every 2 seconds while the load runs, each saying
// what is being done (reading the file, converting or dequantizing to f32,
// quantizing to int8, uploading, generating a synthetic model's weights). A nil
// LoadProgress reports nothing.
type LoadProgress struct {
	w     io.Writer // the bar's terminal, or nil for log lines
	log   *zap.Logger
	model string

	mu      sync.Mutex
	start   time.Time
	last    time.Time
	drawn   bool
	started bool // the first step was reported
}

// NewLoadProgress reports the load of model on w when w is a terminal, else as lines
// on log (nil: none).
func NewLoadProgress(w io.Writer, log *zap.Logger, model string) *LoadProgress {
	p := &LoadProgress{log: log, model: model}
	if IsTerminal(w) {
		p.w = w
	}
	if p.log == nil {
		p.log = zap.NewNop()
	}
	return p
}

// Start marks the beginning of the load.
func (p *LoadProgress) Start() {
	if p == nil {
		return
	}
	p.start, p.last = time.Now(), time.Now()
}

// Step is model.Options.Progress.
func (p *LoadProgress) Step(s model.LoadStep) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started && p.w == nil {
		p.log.Info("loading model", zap.String("model", p.model))
	}
	p.started = true
	now := time.Now()
	every := 2 * time.Second
	if p.w != nil {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every && s.Done < s.Total {
		return
	}
	p.last = now
	frac := 0.0
	if s.Total > 0 {
		frac = float64(s.Done) / float64(s.Total)
	}
	if p.w == nil {
		if s.Done < s.Total {
			p.log.Info("loading model", zap.String("model", p.model), zap.String("percent", fmt.Sprintf("%.0f", 100*frac)),
				zap.String("doing", doing(s.Action)), zap.String("tensor", s.Tensor), zap.Duration("elapsed", now.Sub(p.start).Round(time.Millisecond)))
		}
		return
	}
	const width = 24
	fill := min(width, int(frac*width))
	fmt.Fprintf(p.w, "\r\033[Kloading %s %s%s %3.0f%% %s %s", p.model, strings.Repeat("█", fill), strings.Repeat("░", width-fill),
		100*frac, doing(s.Action), s.Tensor)
	p.drawn = true
}

// Done ends the bar (the caller logs the loaded model itself).
func (p *LoadProgress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// Func is the model.Options.Progress hook (nil for a nil LoadProgress).
func (p *LoadProgress) Func() func(model.LoadStep) {
	if p == nil {
		return nil
	}
	return p.Step
}

// doing says what a load step's action costs the user's time.
func doing(action string) string {
	switch action {
	case "mapped":
		return "reading"
	case "copied":
		return "reading into 2 MiB pages"
	case "converted":
		return "reading, converting to f32"
	case "dequantized":
		return "reading, dequantizing to f32"
	case "quantized":
		return "quantizing to int8"
	case "uploaded":
		return "uploading to the device"
	case "generated":
		return "generating random weights"
	}
	return action
}
