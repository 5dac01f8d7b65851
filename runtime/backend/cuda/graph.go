//go:build cuda

package cuda

import (
	"errors"
	"fmt"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// CUDA graphs over the kernel library's vireo_graph_* calls (relaxed-mode stream
// capture). UNTESTED ON A GPU: this compiles and follows the CUDA runtime's rules as
// documented, but no capture or replay has run yet (no GPU was lent when it was
// written). What it guards against, by construction:
//   - host waits during capture: Upload and Download (which wait for a stream's work),
//     Sync and Stage refuse while any stream of this backend is capturing; a stream's
//     scratch buffer refuses to grow (growing syncs and frees) and a new RoPE table is
//     not uploaded while any stream captures, so a step is issued once before it is
//     captured (model.CaptureDecode does), which sizes them;
//   - a captured graph keeps the address of the scratch its stream used, so once
//     captured it is never freed before Close (growing later allocates anew and keeps
//     the old one);
//   - a step meant for replay reads its index inputs from fixed device buffers
//     (backend.DecodeIO), which DecodeLoop rewrites between replays, never from the
//     staging arena (Stage refuses), and WriteKV and Attention derive their kernels'
//     metadata from them on the device.
//
// The DecodeLooper (decode.go) replays such a step K times per host round trip with
// sampling, the finished mask and the token copy on the device; it too has never run
// on a GPU. Whether the engine uses it is runtime/engine's decision (graphs.go).

type graph struct {
	g cgo.Graph
	x cgo.GraphExec
	// What the captured paged ops were shaped for, so that DecodeLoop can refuse rows
	// the step would silently zero: the smallest MaxCtx of its Attention calls and the
	// block size of its caches (0: none captured; blockSize -1: several).
	maxCtx, blockSize int
	// writes are the buffers the captured ops wrote: each replay writes them again, so
	// Launch and DecodeLoop make the replaying stream their writer.
	writes []*devBuf
}

func (g *graph) markWrites(st *stream) {
	for _, b := range g.writes {
		b.writer.Store(st)
	}
}

// BeginCapture starts recording the ops issued on s.
func (c *Backend) BeginCapture(s backend.Stream) error {
	st, err := c.str("cuda begin capture", s)
	if err != nil {
		return err
	}
	if st.capturing {
		return errors.New("cuda begin capture: stream is already capturing")
	}
	if err := cgo.BeginCapture(st.s); err != nil {
		return fmt.Errorf("cuda begin capture: %w", err)
	}
	st.capturing = true
	st.capMaxCtx, st.capBlockSize = 0, 0
	st.capWrites = nil
	c.capturing.Add(1)
	return nil
}

// EndCapture stops recording on s and instantiates the graph.
func (c *Backend) EndCapture(s backend.Stream) (backend.Graph, error) {
	st, err := c.str("cuda end capture", s)
	if err != nil {
		return nil, err
	}
	if !st.capturing {
		return nil, errors.New("cuda end capture: stream is not capturing")
	}
	g, err := cgo.EndCapture(st.s)
	st.capturing = false
	c.capturing.Add(-1)
	writes := make([]*devBuf, 0, len(st.capWrites))
	for b := range st.capWrites {
		writes = append(writes, b)
	}
	st.capWrites = nil
	if err != nil {
		return nil, fmt.Errorf("cuda end capture: %w", err)
	}
	x, err := g.Instantiate()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cuda graph instantiate: %w", err), g.Destroy())
	}
	return &graph{g: g, x: x, maxCtx: st.capMaxCtx, blockSize: st.capBlockSize, writes: writes}, nil
}

// Launch replays the graph on s.
func (g *graph) Launch(s backend.Stream) error {
	st, ok := s.(*stream)
	if !ok || st == nil {
		return fmt.Errorf("cuda graph launch: stream %v is not a CUDA stream", s)
	}
	g.markWrites(st)
	if err := g.x.Launch(st.s); err != nil {
		return fmt.Errorf("cuda graph launch: %w", err)
	}
	return nil
}

// Destroy frees the executable graph and its template.
func (g *graph) Destroy() error {
	return errors.Join(g.x.Destroy(), g.g.Destroy())
}

// errCapturing is returned by anything that would make the host wait for the device
// while a capture is recording.
var errCapturing = errors.New("not allowed while a stream is capturing a graph (it would synchronize)")

var _ backend.GraphCapturer = (*Backend)(nil)
