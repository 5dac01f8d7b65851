package engine

import "github.com/vireo-ai/vireo/runtime/backend"

// GraphMode says how decode steps run.
type GraphMode string

const (
	// GraphsEager: every decode step is issued op by op (the CPU backend, or graphs
	// disabled, or not yet possible — see graphMode).
	GraphsEager GraphMode = "eager"
	// GraphsReplay: decode steps replay a graph captured per batch-size bucket at
	// start-up, K steps per host round trip through a backend.DecodeLooper.
	GraphsReplay GraphMode = "replay"
)

// graphMode decides, at start-up, whether decode steps can be captured and replayed,
// and says why not when they cannot. Capture needs a backend.DecodeLooper (device
// sampling between replays) and a decode step whose inputs live in fixed device
// buffers. model.Forward today takes host index slices (ids, positions, slots, block
// tables) whose lengths set the kernels' grids and reads the logits back with a
// synchronous Download, so even on a backend that captures graphs the engine keeps the
// eager path and reports it: a capture attempted through it would fail at the first
// Download (the CUDA backend refuses host waits while capturing). The engine's
// stream/event ordering (fences.go) is the same in both modes.
func graphMode(be backend.Backend, disabled bool) (GraphMode, string) {
	if disabled {
		return GraphsEager, "disabled by Options.DisableCUDAGraphs (--cuda-graphs=false)"
	}
	if _, ok := be.(backend.GraphCapturer); !ok {
		return GraphsEager, "the " + be.Name() + " backend does not capture graphs"
	}
	if _, ok := be.(backend.DecodeLooper); !ok {
		return GraphsEager, "the " + be.Name() + " backend captures graphs but has no device decode loop yet; " +
			"model.Forward needs device-resident step inputs before a decode step can be captured"
	}
	return GraphsEager, "model.Forward takes host index inputs and reads logits synchronously: decode steps are not capturable yet"
}
