//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// Options configure the CUDA backend.
type Options struct {
	// Activations is the activation and KV-cache type: backend.F16 (default) or BF16.
	Activations backend.DType
	// GPUMemoryUtilization is the fraction of device memory the process may hold when
	// AllocKV sizes the cache from free memory (blocks <= 0). Default 0.9.
	GPUMemoryUtilization float64
	// W8A8Rows: MatMul with int8 weights and at least this many rows quantizes the
	// activations per token and runs the int8 tensor-core kernel (prefill). 0 means the
	// default, 128; negative disables W8A8 (W8A16 throughout).
	W8A8Rows int
	// Log receives what the backend decides on the user's behalf (such as converting
	// GGUF block-quantized weights to int8); nil discards it.
	Log *zap.Logger
}

// Backend is the CUDA backend on device 0.
type Backend struct {
	opt     Options
	act     backend.DType
	Info    cgo.DeviceInfo
	streams atomic.Int32
	// capturing counts streams recording a graph: host waits are refused meanwhile.
	capturing atomic.Int32

	mu      sync.Mutex
	bufs    map[*devBuf]struct{} // every allocation, freed by Close
	staging *devBuf              // f32 conversion buffer of Upload/Download
	rope    []ropeTable
	strs    []*stream                     // every stream, destroyed by Close with its pinned arena
	loops   map[unsafe.Pointer]*loopState // DecodeLoop state per DecodeIO (keyed by io.IDs' address)

	// blockTypes are the GGUF block types whose weights LoadWeight converted to int8,
	// each logged once (under mu).
	blockTypes map[string]bool

	// mmVariant forces a matmul kernel (tests: the SIMT reference path on every shape);
	// MMAuto lets the library choose.
	mmVariant cgo.Variant
}

type ropeTable struct {
	host []float32
	dev  *devBuf
}

// devBuf is device storage of n elements of storage type dt.
type devBuf struct {
	ptr unsafe.Pointer
	n   int
	dt  backend.DType
}

func (b *devBuf) Len() int { return b.n }

// New opens device 0.
func New(o Options) (*Backend, error) {
	if o.Activations == 0 || o.Activations == backend.F32 {
		o.Activations = backend.F16
	}
	if o.Activations != backend.F16 && o.Activations != backend.BF16 {
		return nil, fmt.Errorf("cuda: activations must be f16 or bf16, not %s", o.Activations)
	}
	if o.GPUMemoryUtilization <= 0 || o.GPUMemoryUtilization > 1 {
		o.GPUMemoryUtilization = 0.9
	}
	if o.W8A8Rows == 0 {
		o.W8A8Rows = 128
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	n, err := cgo.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("cuda: %w", cgo.ErrNoDevice)
	}
	info, err := cgo.GetDeviceInfo(0)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if v := cgo.ABIVersion(); v != cgo.HeaderABIVersion {
		return nil, fmt.Errorf("cuda: libvireo_kernels.so has ABI version %d, this binary was built against %d: rebuild the library (make cuda-lib) or use the one built with the binary", v, cgo.HeaderABIVersion)
	}
	if info.Major < 8 {
		return nil, fmt.Errorf("cuda: %s has compute capability %d.%d; the kernels need 8.0 or newer", info.Name, info.Major, info.Minor)
	}
	return &Backend{opt: o, act: o.Activations, Info: info, bufs: map[*devBuf]struct{}{}}, nil
}

func (c *Backend) Name() string { return "cuda" }

// Options returns the options in effect (defaults filled in).
func (c *Backend) Options() Options { return c.opt }

// Close frees every device allocation. The backend is unusable afterwards.
func (c *Backend) Close() error {
	if err := cgo.DeviceSync(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for b := range c.bufs {
		if err := cgo.Free(b.ptr); err != nil {
			errs = append(errs, err)
		}
	}
	clear(c.bufs)
	c.staging = nil
	c.rope = nil
	for _, ls := range c.loops {
		errs = append(errs, ls.freeHost())
	}
	c.loops = nil
	for _, st := range c.strs {
		if st.host != nil {
			errs = append(errs, cgo.FreeHost(st.host), cgo.Free(st.devp))
			st.host, st.devp, st.cap, st.off = nil, nil, 0, 0
		}
		for _, a := range st.retired {
			errs = append(errs, cgo.FreeHost(a.host), cgo.Free(a.devp))
		}
		st.retired = nil
		st.scratch, st.sampleWS = nil, nil
		errs = append(errs, st.s.Destroy())
	}
	c.strs = nil
	return errors.Join(errs...)
}

func (c *Backend) alloc(dt backend.DType, n int) (*devBuf, error) {
	p, err := cgo.Malloc(n * dt.Size())
	if err != nil {
		return nil, err
	}
	b := &devBuf{ptr: p, n: n, dt: dt}
	c.mu.Lock()
	c.bufs[b] = struct{}{}
	c.mu.Unlock()
	return b, nil
}

func (c *Backend) free(b *devBuf) error {
	c.mu.Lock()
	_, ok := c.bufs[b]
	delete(c.bufs, b)
	c.mu.Unlock()
	if !ok {
		return nil // freed before (or by Close)
	}
	return cgo.Free(b.ptr)
}

// storage is the device type of a tensor allocated as dt.
func (c *Backend) storage(dt backend.DType) backend.DType {
	if dt == backend.F32 {
		return c.act
	}
	return dt
}

func (c *Backend) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if rows < 0 || cols < 0 || (cols > 0 && rows > (1<<40)/cols) {
		return backend.Tensor{}, fmt.Errorf("cuda alloc: bad shape [%d][%d]", rows, cols)
	}
	if dt.Size() == 0 {
		return backend.Tensor{}, fmt.Errorf("cuda alloc: dtype %s not supported", dt)
	}
	b, err := c.alloc(c.storage(dt), rows*cols)
	if err != nil {
		return backend.Tensor{}, fmt.Errorf("cuda alloc %s[%d][%d]: %w", dt, rows, cols, err)
	}
	return backend.Tensor{DType: b.dt, Rows: rows, Cols: cols, Buf: b}, nil
}

// dev returns the device address of t's first element and its storage.
func dev(op string, t backend.Tensor) (unsafe.Pointer, *devBuf, error) {
	b, ok := t.Buf.(*devBuf)
	if !ok || b == nil {
		return nil, nil, fmt.Errorf("%s: operand %s is not a CUDA tensor", op, t)
	}
	if t.Off < 0 || t.Off+t.Rows*t.Cols > b.n {
		return nil, nil, fmt.Errorf("%s: view %s at %d outside its buffer of %d", op, t, t.Off, b.n)
	}
	return unsafe.Add(b.ptr, t.Off*b.dt.Size()), b, nil
}

// stage returns a device buffer of at least n f32 for conversions; c.mu must be held.
func (c *Backend) stageLocked(n int) (*devBuf, error) {
	if c.staging != nil && c.staging.n >= n {
		return c.staging, nil
	}
	if c.staging != nil {
		delete(c.bufs, c.staging)
		if err := cgo.Free(c.staging.ptr); err != nil {
			return nil, err
		}
		c.staging = nil
	}
	p, err := cgo.Malloc(4 * n)
	if err != nil {
		return nil, err
	}
	c.staging = &devBuf{ptr: p, n: n, dt: backend.F32}
	c.bufs[c.staging] = struct{}{}
	return c.staging, nil
}

// stageElems bounds the f32 staging buffer of Upload/Download conversions: larger
// tensors are converted in chunks, so loading a vocabulary-sized f32 matrix does not
// leave gigabytes of staging allocated (KVBlocks sizes the cache from what is free).
const stageElems = 1 << 24 // 64 MiB

// Upload copies src into dst: bytes of dst's own type, or f32 bytes for a 16-bit
// tensor (what the model, which allocates its activations as F32, sends), converted on
// the device. It waits for all device work first.
func (c *Backend) Upload(dst backend.Tensor, src []byte) error {
	p, b, err := dev("cuda upload", dst)
	if err != nil {
		return err
	}
	n := dst.Rows * dst.Cols
	convert := b.dt.Size() == 2 && len(src) == 4*n
	if len(src) != n*b.dt.Size() && !convert {
		return fmt.Errorf("cuda upload to %s: %d bytes for %d elements of %s", dst, len(src), n, b.dt)
	}
	if n == 0 {
		return nil
	}
	if c.capturing.Load() > 0 {
		return fmt.Errorf("cuda upload to %s: %w", dst, errCapturing)
	}
	if err := cgo.DeviceSync(); err != nil {
		return fmt.Errorf("cuda upload to %s: %w", dst, err)
	}
	if !convert {
		if err := cgo.MemcpyH2D(p, unsafe.Pointer(&src[0]), len(src), cgo.Stream{}); err != nil {
			return fmt.Errorf("cuda upload to %s: %w", dst, err)
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	chunk := min(n, stageElems)
	st, err := c.stageLocked(chunk)
	if err != nil {
		return fmt.Errorf("cuda upload to %s: %w", dst, err)
	}
	// Both calls go to the legacy stream, in order: the next chunk's copy into the
	// staging buffer waits for the previous chunk's conversion.
	for i := 0; i < n; i += chunk {
		m := min(chunk, n-i)
		if err := cgo.MemcpyH2D(st.ptr, unsafe.Pointer(&src[4*i]), 4*m, cgo.Stream{}); err != nil {
			return fmt.Errorf("cuda upload to %s: %w", dst, err)
		}
		if err := cgo.Convert(cgo.Stream{}, cgo.DType(b.dt), unsafe.Add(p, i*b.dt.Size()), cgo.F32, st.ptr, m); err != nil {
			return fmt.Errorf("cuda upload to %s: %w", dst, err)
		}
	}
	if err := cgo.DeviceSync(); err != nil {
		return fmt.Errorf("cuda upload to %s: %w", dst, err)
	}
	return nil
}

// Download copies src into dst as bytes of src's own type, or as f32 bytes for a 16-bit
// tensor when dst has room for exactly that (the model reads its logits so), converted
// on the device. It waits for all device work first.
func (c *Backend) Download(dst []byte, src backend.Tensor) error {
	p, b, err := dev("cuda download", src)
	if err != nil {
		return err
	}
	n := src.Rows * src.Cols
	convert := b.dt.Size() == 2 && len(dst) == 4*n
	if len(dst) != n*b.dt.Size() && !convert {
		return fmt.Errorf("cuda download from %s: %d bytes for %d elements of %s", src, len(dst), n, b.dt)
	}
	if n == 0 {
		return nil
	}
	if c.capturing.Load() > 0 {
		return fmt.Errorf("cuda download from %s: %w", src, errCapturing)
	}
	if err := cgo.DeviceSync(); err != nil {
		return fmt.Errorf("cuda download from %s: %w", src, err)
	}
	if !convert {
		if err := cgo.MemcpyD2H(unsafe.Pointer(&dst[0]), p, len(dst), cgo.Stream{}); err != nil {
			return fmt.Errorf("cuda download from %s: %w", src, err)
		}
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	chunk := min(n, stageElems)
	st, err := c.stageLocked(chunk)
	if err != nil {
		return fmt.Errorf("cuda download from %s: %w", src, err)
	}
	for i := 0; i < n; i += chunk {
		m := min(chunk, n-i)
		if err := cgo.Convert(cgo.Stream{}, cgo.F32, st.ptr, cgo.DType(b.dt), unsafe.Add(p, i*b.dt.Size()), m); err != nil {
			return fmt.Errorf("cuda download from %s: %w", src, err)
		}
		if err := cgo.MemcpyD2H(unsafe.Pointer(&dst[4*i]), st.ptr, 4*m, cgo.Stream{}); err != nil {
			return fmt.Errorf("cuda download from %s: %w", src, err)
		}
	}
	return nil
}

// Free releases a tensor's whole allocation (backendtest.Freer).
func (c *Backend) Free(t backend.Tensor) error {
	b, ok := t.Buf.(*devBuf)
	if !ok {
		return fmt.Errorf("cuda free: %s is not a CUDA tensor", t)
	}
	return c.free(b)
}

// FreeWeight releases a weight's device memory.
func (c *Backend) FreeWeight(w *backend.Weight) error {
	err := c.Free(w.W)
	if w.Scales.Buf != nil {
		err = errors.Join(err, c.Free(w.Scales))
	}
	return err
}

// FreeKV releases a cache's device memory.
func (c *Backend) FreeKV(kv *backend.KVCache) error {
	var errs []error
	for l := range kv.K {
		errs = append(errs, c.Free(kv.K[l]), c.Free(kv.V[l]))
	}
	return errors.Join(errs...)
}

func f32Bytes(f []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f))), 4*len(f))
}

func i8Bytes(q []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), len(q))
}

// LoadWeight copies a weight to the device: int8 rows and f32 scales as they are, f32
// weights converted to the 16-bit activation type. Weights dequantized from a GGUF
// block-quantized type (h.Source: Q4_0 … Q6_K, Q8_0) are stored as int8 with one scale
// per row instead, 1 byte per weight, until the backend has kernels for those types;
// the log says so once per type. On failure nothing stays allocated.
func (c *Backend) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if q, ok := backend.Int8FromBlocks(h); ok {
		c.noteBlockType(h.Source)
		h = q
	}
	n := h.Out * h.In
	w := &backend.Weight{Name: h.Name, Out: h.Out, In: h.In}
	if h.F32 != nil {
		b, err := c.alloc(c.act, n)
		if err != nil {
			return nil, fmt.Errorf("cuda load weight %q [%d][%d]: %w", h.Name, h.Out, h.In, err)
		}
		w.W = backend.Tensor{DType: c.act, Rows: h.Out, Cols: h.In, Buf: b}
		if err := c.Upload(w.W, f32Bytes(h.F32[:n])); err != nil {
			return nil, errors.Join(fmt.Errorf("cuda load weight %q: %w", h.Name, err), c.free(b))
		}
		return w, nil
	}
	q, err := c.alloc(backend.I8, n)
	if err != nil {
		return nil, fmt.Errorf("cuda load weight %q [%d][%d]: %w", h.Name, h.Out, h.In, err)
	}
	s, err := c.alloc(backend.F32, h.Out)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cuda load weight %q scales [%d]: %w", h.Name, h.Out, err), c.free(q))
	}
	w.W = backend.Tensor{DType: backend.I8, Rows: h.Out, Cols: h.In, Buf: q}
	w.Scales = backend.Tensor{DType: backend.F32, Rows: 1, Cols: h.Out, Buf: s}
	if err := c.Upload(w.W, i8Bytes(h.I8[:n])); err != nil {
		return nil, errors.Join(fmt.Errorf("cuda load weight %q: %w", h.Name, err), c.free(q), c.free(s))
	}
	if err := c.Upload(w.Scales, f32Bytes(h.Scales[:h.Out])); err != nil {
		return nil, errors.Join(fmt.Errorf("cuda load weight %q scales: %w", h.Name, err), c.free(q), c.free(s))
	}
	return w, nil
}

// noteBlockType logs, once per type, that weights of a GGUF block type become int8.
func (c *Backend) noteBlockType(typ string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blockTypes[typ] {
		return
	}
	if c.blockTypes == nil {
		c.blockTypes = map[string]bool{}
	}
	c.blockTypes[typ] = true
	c.opt.Log.Info("cuda: converting GGUF block-quantized weights to int8 at load (one scale per row): no CUDA kernels for this type yet",
		zap.String("type", typ))
}

// KVBlocks is how many cache blocks fit in the memory the process may still take:
// GPUMemoryUtilization of the total, less what the device already holds.
func (c *Backend) KVBlocks(layers, blockSize, kvHeads, headDim int) (int, error) {
	free, total, err := cgo.MemInfo()
	if err != nil {
		return 0, fmt.Errorf("cuda kv sizing: %w", err)
	}
	budget := c.opt.GPUMemoryUtilization*float64(total) - float64(total-free)
	per := float64(2 * layers * kvHeads * blockSize * headDim * c.act.Size())
	if budget < per || per <= 0 {
		return 0, fmt.Errorf("cuda kv sizing: %.0f MiB left under utilization %.2f, one block of %d layers needs %.0f KiB",
			budget/(1<<20), c.opt.GPUMemoryUtilization, layers, per/1024)
	}
	// Slots are int32 (the block tables and the kernels' slot arguments).
	return min(int(budget/per), math.MaxInt32/blockSize), nil
}

// AllocKV allocates the paged cache; blocks <= 0 sizes it from free memory (KVBlocks).
// On failure nothing stays allocated.
func (c *Backend) AllocKV(layers, blocks, blockSize, kvHeads, headDim int) (*backend.KVCache, error) {
	if layers <= 0 || blockSize <= 0 || kvHeads <= 0 || headDim <= 0 {
		return nil, fmt.Errorf("cuda kv cache: bad shape layers=%d blocks=%d block=%d kv_heads=%d head_dim=%d", layers, blocks, blockSize, kvHeads, headDim)
	}
	if blocks <= 0 {
		var err error
		if blocks, err = c.KVBlocks(layers, blockSize, kvHeads, headDim); err != nil {
			return nil, err
		}
	}
	if blocks > math.MaxInt32/blockSize {
		return nil, fmt.Errorf("cuda kv cache: %d blocks of %d slots overflow the int32 slot numbers", blocks, blockSize)
	}
	kv := &backend.KVCache{Layers: layers, Blocks: blocks, BlockSize: blockSize, KVHeads: kvHeads, HeadDim: headDim}
	rows := blocks * kvHeads * blockSize
	for l := 0; l < layers; l++ {
		for _, dst := range []*[]backend.Tensor{&kv.K, &kv.V} {
			t, err := c.Alloc(c.act, rows, headDim)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("cuda kv cache layer %d of %d (%d blocks): %w", l, layers, blocks, err), c.freeTensors(kv.K, kv.V))
			}
			*dst = append(*dst, t)
		}
	}
	return kv, nil
}

// freeTensors frees the allocations of the given tensors (an error path's cleanup).
func (c *Backend) freeTensors(lists ...[]backend.Tensor) error {
	var errs []error
	for _, ts := range lists {
		for _, t := range ts {
			errs = append(errs, c.Free(t))
		}
	}
	return errors.Join(errs...)
}

// ---- streams and events ----

// stream is a CUDA stream with a pinned staging arena for the host slices of its ops
// and a device scratch buffer.
type stream struct {
	id int
	s  cgo.Stream

	host, devp unsafe.Pointer // arena: pinned host and device, cap bytes each
	cap, off   int

	scratch *devBuf // bytes (I8 storage)

	// A graph captured on the stream holds the addresses of the arena and the scratch it
	// used and reads them at every replay, so once captured they are never freed before
	// Close: growing then allocates anew and keeps the old one (retired, for the arena;
	// the scratch stays in Backend.bufs).
	arenaCaptured, scratchCaptured bool
	retired                        []arena

	// sampleWS is DecodeLoop's vireo_sample workspace; its counts part is zero for
	// sampleShape (rows, vocab), the last shape it was used with.
	sampleWS    *devBuf
	sampleShape [2]int

	capturing bool // between BeginCapture and EndCapture
	// During a capture: the smallest maxCtx of the AttentionAt calls and the block size
	// of the caches the indexed ops used (see graph).
	capMaxCtx, capBlockSize int
}

type arena struct{ host, devp unsafe.Pointer }

func (s *stream) ID() int { return s.id }

// NewStream creates a non-blocking CUDA stream at default priority.
func (c *Backend) NewStream() (backend.Stream, error) {
	cs, err := cgo.StreamCreate(0)
	if err != nil {
		return nil, fmt.Errorf("cuda new stream: %w", err)
	}
	st := &stream{id: int(c.streams.Add(1) - 1), s: cs}
	c.mu.Lock()
	c.strs = append(c.strs, st)
	c.mu.Unlock()
	return st, nil
}

func (c *Backend) str(op string, s backend.Stream) (*stream, error) {
	st, ok := s.(*stream)
	if !ok || st == nil {
		return nil, fmt.Errorf("%s: stream %v is not a CUDA stream", op, s)
	}
	return st, nil
}

const arenaAlign = 256

// ints copies host int32 values to device memory in stream order and returns the
// device address. The arena is bump-allocated; when full, the stream is synchronized
// before it is reused (or grown), so no copy still pending is overwritten.
func (s *stream) ints(v []int32) (unsafe.Pointer, error) {
	bytes := 4 * len(v)
	if bytes == 0 {
		bytes = 4
	}
	need := (bytes + arenaAlign - 1) / arenaAlign * arenaAlign
	if s.off+need > s.cap {
		if s.capturing {
			return nil, fmt.Errorf("staging arena of %d bytes full: %w", s.cap, errCapturing)
		}
		if err := s.s.Sync(); err != nil {
			return nil, err
		}
		s.off = 0
		if need > s.cap {
			if s.host != nil {
				if s.arenaCaptured {
					s.retired = append(s.retired, arena{s.host, s.devp}) // a graph copies from it
				} else {
					cgo.FreeHost(s.host)
					cgo.Free(s.devp)
				}
				s.host, s.devp, s.cap, s.arenaCaptured = nil, nil, 0, false
			}
			nc := max(need, 1<<20)
			h, err := cgo.MallocHost(nc)
			if err != nil {
				return nil, err
			}
			d, err := cgo.Malloc(nc)
			if err != nil {
				cgo.FreeHost(h)
				return nil, err
			}
			s.host, s.devp, s.cap = h, d, nc
		}
	}
	h, d := unsafe.Add(s.host, s.off), unsafe.Add(s.devp, s.off)
	s.off += need
	s.arenaCaptured = s.arenaCaptured || s.capturing
	if len(v) > 0 {
		copy(unsafe.Slice((*int32)(h), len(v)), v)
		if err := cgo.MemcpyH2D(d, h, 4*len(v), s.s); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// scratchBytes returns device scratch of at least n bytes, valid for the stream's next
// ops (growing it synchronizes the stream first). A capture cannot grow it: issue the
// step once before capturing, so that the scratch already has the step's size.
func (c *Backend) scratchBytes(s *stream, n int) (unsafe.Pointer, error) {
	if s.scratch != nil && s.scratch.n >= n {
		s.scratchCaptured = s.scratchCaptured || s.capturing
		return s.scratch.ptr, nil
	}
	if s.capturing {
		have := 0
		if s.scratch != nil {
			have = s.scratch.n
		}
		return nil, fmt.Errorf("stream scratch must grow from %d to %d bytes during a capture (issue the step once before capturing, so that it is sized): %w", have, n, errCapturing)
	}
	if err := s.s.Sync(); err != nil {
		return nil, err
	}
	if s.scratch != nil {
		if !s.scratchCaptured { // else a graph still writes it: it stays allocated until Close
			if err := c.free(s.scratch); err != nil {
				return nil, err
			}
		}
		s.scratch, s.scratchCaptured = nil, false
	}
	b, err := c.alloc(backend.I8, max(n, 1<<20))
	if err != nil {
		return nil, err
	}
	s.scratch = b
	return b.ptr, nil
}

type event struct{ e cgo.Event }

// Done reports whether the stream passed the recorded point (false on error).
func (e *event) Done() bool {
	ok, err := e.e.Query()
	return ok && err == nil
}

func (c *Backend) Record(s backend.Stream) (backend.Event, error) {
	st, err := c.str("cuda record", s)
	if err != nil {
		return nil, err
	}
	ce, err := cgo.EventCreate(false)
	if err != nil {
		return nil, fmt.Errorf("cuda record: %w", err)
	}
	if err := ce.Record(st.s); err != nil {
		ce.Destroy()
		return nil, fmt.Errorf("cuda record: %w", err)
	}
	ev := &event{e: ce}
	runtime.SetFinalizer(ev, func(ev *event) { ev.e.Destroy() })
	return ev, nil
}

func (c *Backend) Wait(s backend.Stream, e backend.Event) error {
	st, err := c.str("cuda wait", s)
	if err != nil {
		return err
	}
	ev, ok := e.(*event)
	if !ok {
		return fmt.Errorf("cuda wait: event %v is not a CUDA event", e)
	}
	if err := st.s.Wait(ev.e); err != nil {
		return fmt.Errorf("cuda wait: %w", err)
	}
	runtime.KeepAlive(ev)
	return nil
}

func (c *Backend) Sync(s backend.Stream) error {
	st, err := c.str("cuda sync", s)
	if err != nil {
		return err
	}
	if st.capturing {
		return fmt.Errorf("cuda sync: %w", errCapturing)
	}
	if err := st.s.Sync(); err != nil {
		return fmt.Errorf("cuda sync: %w", err)
	}
	st.off = 0
	return nil
}

// invFreq returns the device copy of a RoPE frequency table, uploading each distinct
// table once.
func (c *Backend) invFreq(f []float32) (unsafe.Pointer, error) {
	c.mu.Lock()
	for _, t := range c.rope {
		if slices.Equal(t.host, f) {
			c.mu.Unlock()
			return t.dev.ptr, nil
		}
	}
	c.mu.Unlock()
	b, err := c.alloc(backend.F32, len(f))
	if err != nil {
		return nil, err
	}
	if err := c.Upload(backend.Tensor{DType: backend.F32, Rows: 1, Cols: len(f), Buf: b}, f32Bytes(f)); err != nil {
		return nil, errors.Join(err, c.free(b))
	}
	c.mu.Lock()
	c.rope = append(c.rope, ropeTable{host: slices.Clone(f), dev: b})
	c.mu.Unlock()
	return b.ptr, nil
}

var _ backend.Backend = (*Backend)(nil)
