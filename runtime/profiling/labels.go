package profiling

import (
	"context"
	"runtime/pprof"
)

// Go pprof labels: Go's own CPU profiles (/debug/pprof/profile) attribute each sample to
// the labels of the goroutine it was taken on, so `go tool pprof -tagfocus` (or
// -tags) tells the server's time per request from the engine's scheduling and its
// passes. Keys:
const (
	GoLabelRequestID = "request_id" // the server's request id (X-Request-Id), on its handler goroutine
	GoLabelPhase     = "phase"      // GoPhase
)

// GoPhase is the part of the serving stack a goroutine runs.
type GoPhase uint8

const (
	GoServer   GoPhase = iota // an HTTP handler: parsing, tokenizing, streaming the response
	GoSchedule                // the engine's loop: intake, scheduling, commit, delivery
	GoPrefill                 // an engine lane running a prefill group: its passes and sampling
	GoDecode                  // the engine's decode lane: its passes (or replays) and sampling
	numGoPhases
)

var goPhaseNames = [numGoPhases]string{"server", "schedule", "prefill", "decode"}

func (p GoPhase) String() string {
	if p < numGoPhases {
		return goPhaseNames[p]
	}
	return "?"
}

// phaseCtx holds one labelled context per phase, made once: setting a goroutine's
// labels from it allocates nothing.
var phaseCtx = func() (c [numGoPhases]context.Context) {
	for p := range c {
		c[p] = pprof.WithLabels(context.Background(), pprof.Labels(GoLabelPhase, goPhaseNames[p]))
	}
	return c
}()

// SetGoPhase labels the calling goroutine with phase p (replacing its labels); the
// goroutines it starts afterwards inherit them.
func SetGoPhase(p GoPhase) {
	if p < numGoPhases {
		pprof.SetGoroutineLabels(phaseCtx[p])
	}
}

// WithRequest returns ctx labelled with a request id and phase "server"; set them on a
// handler goroutine with pprof.SetGoroutineLabels (and set the request's own context
// back when the handler returns: a connection's goroutine serves its next request).
func WithRequest(ctx context.Context, id string) context.Context {
	return pprof.WithLabels(ctx, pprof.Labels(GoLabelRequestID, id, GoLabelPhase, goPhaseNames[GoServer]))
}
