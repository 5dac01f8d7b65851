// Package cpu is the pure-Go backend: the reference every other backend is checked
// against, and a fast fallback. Ops run synchronously on the calling goroutine (a
// stream is a lane); large ops split their output rows across the cores. Every output
// element is computed by the same sequence of float operations whatever the batch or
// the split, so results are batch-invariant and comparable by exact equality.
package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// buf is CPU storage; exactly one slice is set.
type buf struct {
	f32 []float32
	i8  []int8
	i32 []int32
	u8  []byte // a block-quantized weight's bytes
	// t is a small f32 weight matrix [Out][In] transposed to [In][Out] (see
	// cachedWeightBytes); nil otherwise.
	t []float32
}

func (b *buf) Len() int {
	switch {
	case b.f32 != nil:
		return len(b.f32)
	case b.i8 != nil:
		return len(b.i8)
	case b.u8 != nil:
		return len(b.u8)
	}
	return len(b.i32)
}

var _ backend.Backend = (*Backend)(nil)

// Backend is the CPU backend. The zero value is not usable; call New.
type Backend struct {
	threads int
	w8a8    bool // Options.W8A8
	streams atomic.Int32
	pool    *pool // threads-1 workers
}

// Options configure the CPU backend.
type Options struct {
	Threads int // worker goroutines per op; 0 means GOMAXPROCS
	// W8A8 makes MatMul honour Epilogue.Prompt as a device does: a prompt call with a
	// dense int8 weight (a low-rank pair's int8 factors included) first rounds each
	// activation row to the int8 grid of its own absolute maximum (scale = amax/127,
	// round half to even, clamped to ±127: CUDA's vireo_quantize_rows), then multiplies
	// as usual. Off (the default), the CPU ignores the flag and every row keeps its
	// activations: quantizing would cost accuracy and buy no speed here. Tests turn it
	// on to check that the model gives each row the precision of its role.
	W8A8 bool
}

// New returns a CPU backend.
func New(o Options) *Backend {
	t := o.Threads
	if t <= 0 {
		t = runtime.GOMAXPROCS(0)
	}
	return &Backend{threads: t, w8a8: o.W8A8, pool: newPool(t - 1)}
}

// Close stops the backend's worker goroutines. Tensors stay valid (they are Go
// memory), but ops must not be called afterwards.
func (c *Backend) Close() error {
	c.pool.close()
	return nil
}

// Threads is the number of workers an op may use.
func (c *Backend) Threads() int { return c.threads }

func (c *Backend) Name() string { return "cpu" }

// Activations is F32: the CPU computes in float32 throughout.
func (c *Backend) Activations() backend.DType { return backend.F32 }

// F32 wraps a host slice as a tensor without copying.
func F32(data []float32, rows, cols int) backend.Tensor {
	return backend.Tensor{DType: backend.F32, Rows: rows, Cols: cols, Buf: &buf{f32: data}}
}

// Float32s returns the float view of a CPU tensor (aliasing its storage).
func Float32s(t backend.Tensor) []float32 {
	b := t.Buf.(*buf)
	return b.f32[t.Off : t.Off+t.Rows*t.Cols]
}

func (c *Backend) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if rows < 0 || cols < 0 || (cols > 0 && rows > (1<<40)/cols) {
		return backend.Tensor{}, fmt.Errorf("cpu alloc: bad shape [%d][%d]", rows, cols)
	}
	n := rows * cols
	b := &buf{}
	switch dt {
	case backend.F32:
		b.f32 = make([]float32, n)
	case backend.I8:
		b.i8 = make([]int8, n)
	case backend.I32:
		b.i32 = make([]int32, n)
	default:
		return backend.Tensor{}, fmt.Errorf("cpu alloc: dtype %s not supported", dt)
	}
	return backend.Tensor{DType: dt, Rows: rows, Cols: cols, Buf: b}, nil
}

func rawBytes(t backend.Tensor) ([]byte, error) {
	b, ok := t.Buf.(*buf)
	if !ok {
		return nil, fmt.Errorf("cpu: tensor %s is not a CPU tensor", t)
	}
	n := t.Rows * t.Cols
	switch t.DType {
	case backend.F32:
		return backend.Bytes(b.f32[t.Off : t.Off+n]), nil
	case backend.I8:
		return backend.Bytes(b.i8[t.Off : t.Off+n]), nil
	case backend.I32:
		return backend.Bytes(b.i32[t.Off : t.Off+n]), nil
	}
	return nil, fmt.Errorf("cpu: dtype %s not supported", t.DType)
}

// Upload copies src into dst; the CPU converts nothing, so dt must be dst's type.
func (c *Backend) Upload(dst backend.Tensor, src []byte, dt backend.DType) error {
	d, err := rawBytes(dst)
	if err != nil {
		return err
	}
	if dt != dst.DType {
		return fmt.Errorf("cpu upload to %s: %s data: not supported (no conversion)", dst, dt)
	}
	if len(src) != len(d) {
		return fmt.Errorf("cpu upload to %s: %d bytes for %d", dst, len(src), len(d))
	}
	copy(d, src)
	return nil
}

// Download copies src into dst; dt must be src's type.
func (c *Backend) Download(dst []byte, dt backend.DType, src backend.Tensor) error {
	s, err := rawBytes(src)
	if err != nil {
		return err
	}
	if dt != src.DType {
		return fmt.Errorf("cpu download from %s: as %s: not supported (no conversion)", src, dt)
	}
	if len(s) != len(dst) {
		return fmt.Errorf("cpu download from %s: %d bytes for %d", src, len(dst), len(s))
	}
	copy(dst, s)
	return nil
}

// ReadsHostWeights is true: LoadWeight keeps the host slices and the ops read them.
func (c *Backend) ReadsHostWeights() bool { return true }

var _ backend.HostReader = (*Backend)(nil)

// LoadWeight keeps the host slices as they are: no copy (block-quantized weights stay
// in the file's mapping, multiplied natively; small f32 matrices also get a transposed
// copy).
func (c *Backend) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if h.Kind != backend.Dense {
		return c.loadKind(h)
	}
	w := &backend.Weight{Name: h.Name, Out: h.Out, In: h.In}
	n := h.Out * h.In
	if h.Blocks != nil {
		if !c.LoadsBlocks(h.BlockType) {
			return nil, fmt.Errorf("cpu: weight %q: no kernels for %s blocks", h.Name, h.BlockType)
		}
		w.W = backend.Tensor{DType: h.BlockType, Rows: h.Out, Cols: h.In, Buf: &buf{u8: h.Blocks[:h.Out*h.BlockType.RowBytes(h.In)]}}
		return w, nil
	}
	if h.F32 != nil {
		b := &buf{f32: h.F32[:n]}
		if 4*n <= cachedWeightBytes {
			b.t = transpose(h.F32[:n], h.Out, h.In)
		}
		w.W = backend.Tensor{DType: backend.F32, Rows: h.Out, Cols: h.In, Buf: b}
	} else {
		w.W = backend.Tensor{DType: backend.I8, Rows: h.Out, Cols: h.In, Buf: &buf{i8: h.I8[:n]}}
		w.Scales = backend.Tensor{DType: backend.F32, Rows: 1, Cols: h.Out, Buf: &buf{f32: h.Scales[:h.Out]}}
	}
	return w, nil
}

// transpose returns m [rows][cols] as [cols][rows].
func transpose(m []float32, rows, cols int) []float32 {
	t := make([]float32, len(m))
	for r := 0; r < rows; r++ {
		for c, v := range m[r*cols : (r+1)*cols] {
			t[c*rows+r] = v
		}
	}
	return t
}

func (c *Backend) AllocKV(layers, blocks, blockSize, kvHeads, headDim int) (*backend.KVCache, error) {
	if layers <= 0 || blocks <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0 {
		return nil, fmt.Errorf("cpu kv cache: bad shape layers=%d blocks=%d block=%d kv_heads=%d head_dim=%d", layers, blocks, blockSize, kvHeads, headDim)
	}
	kv := &backend.KVCache{Layers: layers, Blocks: blocks, BlockSize: blockSize, KVHeads: kvHeads, HeadDim: headDim}
	rows := blocks * kvHeads * blockSize
	for l := 0; l < layers; l++ {
		k, err := c.Alloc(backend.F32, rows, headDim)
		if err != nil {
			return nil, err
		}
		v, err := c.Alloc(backend.F32, rows, headDim)
		if err != nil {
			return nil, err
		}
		kv.K = append(kv.K, k)
		kv.V = append(kv.V, v)
	}
	return kv, nil
}

// Stage wraps v as an I32 tensor without copying: the ops read it in place.
func (c *Backend) Stage(_ backend.Stream, v []int32) (backend.Tensor, error) {
	if v == nil {
		v = []int32{}
	}
	return backend.Tensor{DType: backend.I32, Rows: 1, Cols: len(v), Buf: &buf{i32: v}}, nil
}

type stream int

func (s stream) ID() int { return int(s) }

// NewStream returns a lane: ops on it run on the calling goroutine.
func (c *Backend) NewStream() (backend.Stream, error) {
	return stream(c.streams.Add(1) - 1), nil
}

type doneEvent struct{}

func (doneEvent) Done() bool { return true }

// Record returns an event that is already complete: CPU ops finish before returning.
func (c *Backend) Record(backend.Stream) (backend.Event, error) { return doneEvent{}, nil }
func (c *Backend) Wait(backend.Stream, backend.Event) error     { return nil }
func (c *Backend) Sync(backend.Stream) error                    { return nil }

// minChunkWork is the least work (multiply-adds, or comparable element operations)
// worth handing to another goroutine: a few microseconds of arithmetic, well above the
// cost of waking a worker (under a microsecond when it is polling, several when it is
// parked). stories260K's ops (under 40k multiply-adds each) all run inline.
const minChunkWork = 1 << 16

// chunks is how many goroutines an op over n items with the given work shares: one
// per core at most, and none with less than minChunkWork.
func (c *Backend) chunks(n, work int) int {
	return max(1, min(c.threads, work/minChunkWork, n))
}

// parallel runs fn over [0,n), cut at multiples of align, on up to c.chunks(n, work)
// goroutines; small ops run inline on the caller.
func (c *Backend) parallel(n, align, work int, fn func(lo, hi int)) {
	chunks := c.chunks(n, work)
	if chunks <= 1 {
		fn(0, n)
		return
	}
	if c.pool.run(n, chunks, align, fn) {
		return
	}
	// Another lane holds the pool: split over fresh goroutines.
	align = max(align, 1)
	per := ((n+chunks-1)/chunks + align - 1) / align * align
	var wg sync.WaitGroup
	for lo := per; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() { fn(lo, hi) })
	}
	fn(0, min(per, n))
	wg.Wait()
}
