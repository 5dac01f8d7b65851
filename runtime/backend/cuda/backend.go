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
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// Options configure the CUDA backend.
type Options struct {
	// Activations is the activation and KV-cache type: backend.F16 (default) or BF16.
	Activations backend.DType
	// GPUMemoryUtilization is the fraction of device memory the process may hold when
	// AllocKV sizes the cache from free memory (blocks <= 0). Default 0.9.
	GPUMemoryUtilization float64
	// W8A8 says which MatMul calls with int8 weights quantize their activations per
	// token and run the int8 tensor-core kernels: W8A8Prompt ("", the default) the calls
	// whose rows are prompt tokens (backend.Epilogue.Prompt: the model marks prefill
	// chunks), W8A8Off none (W8A16 throughout), W8A8All every one (op checks: the W8A8
	// kernels on every case). Never the row count: a generated row runs W8A16 in a step
	// of any size, a prompt row W8A8, so a row's numerics follow its role.
	W8A8 W8A8Mode
	// Log receives what the backend decides on the user's behalf (such as converting
	// GGUF block-quantized weights to int8); nil discards it.
	Log *zap.Logger
	// Sparse24 keeps 2:4 sparse weights compressed and runs the 2:4 kernels
	// (sparse24.cu). Off by default: those kernels have not yet been verified on a GPU
	// (GPU run C), so 2:4 weights are expanded to their dense masked matrices.
	Sparse24 bool
	// Kernels selects the attention, sampling and int8-weight matmul kernels: KernelsV2
	// (the default: the split-KV decode and tensor-core prefill attention of
	// attention2.cu, the parallel sampler of sampling2.cu, which samples every row on the
	// device, and the cp.async multi-stage tensor-core matmuls of matmul2*.cu with
	// split-K, their plans from kmodel) or KernelsV1 (attention.cu, sampling.cu,
	// matmul_*.cu). v1 stays selectable until GPU run C has verified v2 on a card, path
	// by path. Float weights, and int8 products v2 does not take (k % 16 != 0, operands
	// not 16-byte aligned), run v1's matmuls under either setting.
	Kernels Kernels
	// LoRA turns on the LoRA op (lora.cu: per-row adapters, backend.LoRAer). Off by
	// default until GPU run C verifies the kernel: without it, LoRA answers "not
	// supported" and LoRAReady refuses adapter slots (model.NewLoRASet).
	LoRA bool
	// MMTuning overrides the v2 matmuls' dispatch policy (kmodel.ParseTuning: e.g.
	// "w8a16=1,split16=4"); "" keeps kmodel's defaults.
	MMTuning string
	// MM2Fault makes every v2 matmul launch carry a deliberate bug (vireo-check ops
	// -mm2-fault: the on-card demonstration that the op checks catch a broken kernel).
	// Never set it outside that check.
	MM2Fault cgo.MM2Fault
	// W4A16 takes GGUF Q4_0 and Q4_K matrices as blocks (backend.BlockLoader), keeps
	// them as 4-bit weights with the file's group scales (runtime/quant/w4) and
	// multiplies them with kernels v2's W4A16 kernels (matmul2_w4a16.cu): 4.5 bits per
	// weight read instead of int8's 8. It needs Kernels v2. Off by default until GPU run
	// C verifies the kernels: without it those weights become int8 at load. Q5_K and
	// the other block types, and embedding tables, stay int8 either way.
	W4A16 bool
}

// Kernels names a generation of the attention, sampling and int8 matmul kernels.
type Kernels string

const (
	KernelsV1 Kernels = "v1"
	KernelsV2 Kernels = "v2"
)

// ParseKernels reads a --kernels value: "v1", "v2", or "" for the default (v2).
func ParseKernels(s string) (Kernels, error) {
	switch Kernels(s) {
	case "", KernelsV2:
		return KernelsV2, nil
	case KernelsV1:
		return KernelsV1, nil
	}
	return "", fmt.Errorf("kernels %q: want v1 or v2", s)
}

// W8A8Mode says which int8 products run W8A8 (Options.W8A8).
type W8A8Mode string

const (
	W8A8Prompt W8A8Mode = "prompt" // calls of prompt rows (backend.Epilogue.Prompt)
	W8A8Off    W8A8Mode = "off"
	W8A8All    W8A8Mode = "all"
)

// ParseW8A8 reads a -w8a8 value: "prompt", "off", "all", or "" for the default (prompt).
func ParseW8A8(s string) (W8A8Mode, error) {
	switch m := W8A8Mode(s); m {
	case "":
		return W8A8Prompt, nil
	case W8A8Prompt, W8A8Off, W8A8All:
		return m, nil
	}
	return "", fmt.Errorf("w8a8 %q: want prompt, off or all", s)
}

// w8a8 says whether a MatMul call with an int8 weight and epilogue epi quantizes its
// activations (Options.W8A8); the kernel must also take the shape (k % 32 == 0 on v1).
func (c *Backend) w8a8(epi backend.Epilogue) bool {
	switch c.opt.W8A8 {
	case W8A8All:
		return true
	case W8A8Off:
		return false
	}
	return epi.Prompt // W8A8Prompt, and "" in a Backend built without New (tests)
}

// Backend is the CUDA backend on device 0.
type Backend struct {
	opt     Options
	act     backend.DType
	Info    cgo.DeviceInfo
	streams atomic.Int32
	// capturing counts streams recording a graph: host waits are refused meanwhile.
	capturing atomic.Int32

	mu   sync.Mutex
	bufs map[*devBuf]struct{} // every allocation, freed by Close
	rope []ropeTable

	// xfer is Upload's and Download's transfer state (its own stream, pinned staging);
	// events is a free list of events for host waits on one stream's work.
	xferMu sync.Mutex
	xfer   *xfer
	evMu   sync.Mutex
	events []cgo.Event
	strs   []*stream                     // every stream, destroyed by Close with its pinned arena
	loops  map[unsafe.Pointer]*loopState // DecodeLoop state per DecodeIO (keyed by io.IDs' address)

	// blockTypes are the GGUF block types whose weights LoadWeight converted to int8,
	// each logged once (under mu); sparse24Noted, that 2:4 weights became dense.
	blockTypes    map[string]bool
	sparse24Noted bool

	// mm2 is kernels v2's dispatch policy (Options.Kernels == KernelsV2).
	mm2 kmodel.Policy

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
	// writer is the stream of the last op issued with this buffer as its output (a
	// graph replay or a DecodeLoop counts for what its capture wrote), nil when none
	// has since it was allocated or last uploaded. Download waits for that stream's
	// work, and Upload orders itself after it, instead of synchronizing the device.
	writer atomic.Pointer[stream]
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
	w8, err := ParseW8A8(string(o.W8A8))
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	o.W8A8 = w8
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	k, err := ParseKernels(string(o.Kernels))
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	o.Kernels = k
	tu, err := kmodel.ParseTuning(o.MMTuning)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
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
	return &Backend{opt: o, act: o.Activations, Info: info, bufs: map[*devBuf]struct{}{},
		mm2: kmodel.Policy{SMs: info.Multiprocessors, Tuning: tu}}, nil
}

func (c *Backend) Name() string { return "cuda" }

// Activations is the activation and KV-cache type of Options (F16 or BF16).
func (c *Backend) Activations() backend.DType { return c.act }

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
	c.rope = nil
	if x := c.xfer; x != nil {
		errs = append(errs, x.free())
		c.xfer = nil
	}
	c.evMu.Lock()
	for _, e := range c.events {
		errs = append(errs, e.Destroy())
	}
	c.events = nil
	c.evMu.Unlock()
	for _, ls := range c.loops {
		errs = append(errs, ls.freeHost())
	}
	c.loops = nil
	for _, st := range c.strs {
		if st.host != nil {
			errs = append(errs, cgo.FreeHost(st.host), cgo.Free(st.devp))
			st.host, st.devp, st.cap, st.off = nil, nil, 0, 0
		}
		st.scratch, st.sampleWS, st.attn2WS, st.mm2WS = nil, nil, nil, nil
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

func (c *Backend) Alloc(dt backend.DType, rows, cols int) (backend.Tensor, error) {
	if rows < 0 || cols < 0 || (cols > 0 && rows > (1<<40)/cols) {
		return backend.Tensor{}, fmt.Errorf("cuda alloc: bad shape [%d][%d]", rows, cols)
	}
	if dt.Size() == 0 {
		return backend.Tensor{}, fmt.Errorf("cuda alloc: dtype %s not supported", dt)
	}
	b, err := c.alloc(dt, rows*cols)
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

// ---- Upload and Download ----
//
// Both take no stream (backend.Backend's API), yet must be ordered with the streams
// whose ops read or wrote the buffer, without synchronizing the whole device (that
// would serialize the prefill lanes):
//   - the bytes travel through pinned staging (two halves, so the host fills one while
//     the other is copied) on the backend's own non-blocking transfer stream, with the
//     16-bit conversion on that stream too;
//   - Upload returns once its copies have landed (a host wait on the transfer stream
//     only), so every op issued afterwards, on any stream, reads the new bytes. A plain
//     cudaMemcpy from pageable memory on the legacy stream gave no such guarantee to
//     ops on non-blocking streams: it may return before the DMA has landed;
//   - before either starts, the host waits for the work issued so far on the buffer's
//     writer stream (the last op that wrote it): Download reads finished results, and
//     an Upload cannot be overtaken by a still-queued write of the same buffer.
// Reads are not tracked: uploading into a buffer that queued work on some stream still
// reads is the caller's race (order it with Sync or an event first).

// xferHalf is the size of each pinned staging half and of the device conversion buffer.
const xferHalf = 8 << 20

// xfer is the transfer stream with its pinned staging halves, the events marking when
// each half's copy completed, and the device buffer of the f32 conversions.
type xfer struct {
	s       cgo.Stream
	host    [2]unsafe.Pointer
	done    [2]cgo.Event
	pending [2]bool
	conv    unsafe.Pointer // xferHalf bytes: xferHalf/4 f32
}

func (x *xfer) free() error {
	var errs []error
	for i := range x.host {
		if x.host[i] != nil {
			errs = append(errs, cgo.FreeHost(x.host[i]))
		}
		if x.done[i] != (cgo.Event{}) {
			errs = append(errs, x.done[i].Destroy())
		}
	}
	if x.conv != nil {
		errs = append(errs, cgo.Free(x.conv))
	}
	if x.s != (cgo.Stream{}) {
		errs = append(errs, x.s.Destroy())
	}
	return errors.Join(errs...)
}

// xferLocked returns the transfer state, creating it on first use; c.xferMu is held.
func (c *Backend) xferLocked() (*xfer, error) {
	if c.xfer != nil {
		return c.xfer, nil
	}
	x := &xfer{}
	var err error
	if x.s, err = cgo.StreamCreate(0); err != nil {
		return nil, err
	}
	for i := range x.host {
		if x.host[i], err = cgo.MallocHost(xferHalf); err != nil {
			return nil, errors.Join(err, x.free())
		}
		if x.done[i], err = cgo.EventCreate(false); err != nil {
			return nil, errors.Join(err, x.free())
		}
	}
	if x.conv, err = cgo.Malloc(xferHalf); err != nil {
		return nil, errors.Join(err, x.free())
	}
	c.xfer = x
	return x, nil
}

// waitHalf makes the host wait until half h's last copy completed.
func (x *xfer) waitHalf(h int) error {
	if !x.pending[h] {
		return nil
	}
	x.pending[h] = false
	return x.done[h].Sync()
}

// event returns an event from the free list (or a new one); putEvent gives it back.
func (c *Backend) event() (cgo.Event, error) {
	c.evMu.Lock()
	if n := len(c.events); n > 0 {
		e := c.events[n-1]
		c.events = c.events[:n-1]
		c.evMu.Unlock()
		return e, nil
	}
	c.evMu.Unlock()
	return cgo.EventCreate(false)
}

func (c *Backend) putEvent(e cgo.Event) {
	c.evMu.Lock()
	c.events = append(c.events, e)
	c.evMu.Unlock()
}

// waitWriter makes the host wait for the work issued so far on b's writer stream (the
// stream of the last op that wrote b): no other stream is waited for.
func (c *Backend) waitWriter(b *devBuf) error {
	w := b.writer.Load()
	if w == nil {
		return nil
	}
	e, err := c.event()
	if err != nil {
		return err
	}
	defer c.putEvent(e)
	if err := e.Record(w.s); err != nil {
		return err
	}
	return e.Sync()
}

// wrote marks s as the writer of the tensors' buffers (after an op was issued on s);
// while s captures a graph, the buffers are also remembered as the graph's outputs.
func (s *stream) wrote(ts ...backend.Tensor) {
	for _, t := range ts {
		b, ok := t.Buf.(*devBuf)
		if !ok || b == nil {
			continue
		}
		b.writer.Store(s)
		if s.capturing {
			if s.capWrites == nil {
				s.capWrites = map[*devBuf]struct{}{}
			}
			s.capWrites[b] = struct{}{}
		}
	}
}

// convertible reports whether host values of type host move to or from device storage
// of type dev: the same type, or f32 on the host for f16/bf16 storage (converted on the
// device).
func convertible(host, dev backend.DType) (convert, ok bool) {
	switch {
	case host == dev:
		return false, true
	case host == backend.F32 && (dev == backend.F16 || dev == backend.BF16):
		return true, true
	}
	return false, false
}

// Upload copies src, dst.Len() values of type dt, into dst: dt is dst's own type, or
// F32 for a 16-bit tensor (converted on the device). It returns once the bytes have
// landed: ops issued afterwards on any stream read them. It first waits for the queued
// work of dst's writer stream, never for the whole device.
func (c *Backend) Upload(dst backend.Tensor, src []byte, dt backend.DType) error {
	p, b, err := dev("cuda upload", dst)
	if err != nil {
		return err
	}
	n := dst.Rows * dst.Cols
	convert, ok := convertible(dt, b.dt)
	if !ok {
		return fmt.Errorf("cuda upload to %s: %s values into %s storage: not supported", dst, dt, b.dt)
	}
	if len(src) != n*dt.Size() {
		return fmt.Errorf("cuda upload to %s: %d bytes for %d values of %s", dst, len(src), n, dt)
	}
	if n == 0 {
		return nil
	}
	if c.capturing.Load() > 0 {
		return fmt.Errorf("cuda upload to %s: %w", dst, errCapturing)
	}
	if err := c.waitWriter(b); err != nil {
		return fmt.Errorf("cuda upload to %s: waiting for its last writer: %w", dst, err)
	}
	b.writer.Store(nil)
	if err := c.upload(p, b.dt, src, convert); err != nil {
		return fmt.Errorf("cuda upload to %s: %w", dst, err)
	}
	return nil
}

// upload copies src to p through the pinned staging on the transfer stream, converting
// f32 to dt when convert is set, and waits for the transfer stream.
func (c *Backend) upload(p unsafe.Pointer, dt backend.DType, src []byte, convert bool) error {
	c.xferMu.Lock()
	defer c.xferMu.Unlock()
	x, err := c.xferLocked()
	if err != nil {
		return err
	}
	var errs []error
	for off, h := 0, 0; off < len(src); off, h = off+xferHalf, 1-h {
		m := min(xferHalf, len(src)-off)
		if err := x.waitHalf(h); err != nil { // its previous copy still reads it
			errs = append(errs, err)
			break
		}
		copy(unsafe.Slice((*byte)(x.host[h]), m), src[off:off+m])
		if !convert {
			err = cgo.MemcpyH2D(unsafe.Add(p, off), x.host[h], m, x.s)
		} else if err = cgo.MemcpyH2D(x.conv, x.host[h], m, x.s); err == nil {
			err = cgo.Convert(x.s, cgo.DType(dt), unsafe.Add(p, off/4*dt.Size()), cgo.F32, x.conv, m/4)
		}
		if err == nil {
			err = x.done[h].Record(x.s)
			x.pending[h] = err == nil
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	// Whatever was queued must have finished before the staging is reused.
	errs = append(errs, x.s.Sync())
	x.pending = [2]bool{}
	return errors.Join(errs...)
}

// Download copies src into dst as src.Len() values of type dt: src's own type, or F32
// from a 16-bit tensor (the model reads its logits so), converted on the device. It
// waits for the queued work of src's writer stream (the stream of the last op that
// wrote src), never for the whole device.
func (c *Backend) Download(dst []byte, dt backend.DType, src backend.Tensor) error {
	p, b, err := dev("cuda download", src)
	if err != nil {
		return err
	}
	n := src.Rows * src.Cols
	convert, ok := convertible(dt, b.dt)
	if !ok {
		return fmt.Errorf("cuda download from %s: %s storage as %s values: not supported", src, b.dt, dt)
	}
	if len(dst) != n*dt.Size() {
		return fmt.Errorf("cuda download from %s: %d bytes for %d values of %s", src, len(dst), n, dt)
	}
	if n == 0 {
		return nil
	}
	if c.capturing.Load() > 0 {
		return fmt.Errorf("cuda download from %s: %w", src, errCapturing)
	}
	if err := c.waitWriter(b); err != nil {
		return fmt.Errorf("cuda download from %s: waiting for its writer: %w", src, err)
	}
	if err := c.download(dst, p, b.dt, convert); err != nil {
		return fmt.Errorf("cuda download from %s: %w", src, err)
	}
	return nil
}

// download copies from p into dst through the pinned staging on the transfer stream,
// two halves in flight: half h's chunk is copied out while the other's is copied in.
func (c *Backend) download(dst []byte, p unsafe.Pointer, dt backend.DType, convert bool) error {
	c.xferMu.Lock()
	defer c.xferMu.Unlock()
	x, err := c.xferLocked()
	if err != nil {
		return err
	}
	type chunk struct{ off, m, h int }
	var inflight []chunk
	drain := func() error {
		ch := inflight[0]
		inflight = inflight[1:]
		if err := x.waitHalf(ch.h); err != nil {
			return err
		}
		copy(dst[ch.off:ch.off+ch.m], unsafe.Slice((*byte)(x.host[ch.h]), ch.m))
		return nil
	}
	var errs []error
	for off, h := 0, 0; off < len(dst); off, h = off+xferHalf, 1-h {
		m := min(xferHalf, len(dst)-off)
		if len(inflight) == 2 {
			if err := drain(); err != nil {
				errs = append(errs, err)
				break
			}
		}
		if !convert {
			err = cgo.MemcpyD2H(x.host[h], unsafe.Add(p, off), m, x.s)
		} else if err = cgo.Convert(x.s, cgo.F32, x.conv, cgo.DType(dt), unsafe.Add(p, off/4*dt.Size()), m/4); err == nil {
			err = cgo.MemcpyD2H(x.host[h], x.conv, m, x.s)
		}
		if err == nil {
			err = x.done[h].Record(x.s)
			x.pending[h] = err == nil
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
		inflight = append(inflight, chunk{off, m, h})
	}
	for len(errs) == 0 && len(inflight) > 0 {
		if err := drain(); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, x.s.Sync())
	x.pending = [2]bool{}
	return errors.Join(errs...)
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
	if w.Kind != backend.Dense {
		return c.freeKind(w)
	}
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

// LoadWeight copies a weight to the device: int8 rows and f32 scales as they are, f32
// weights converted to the 16-bit activation type. Weights dequantized from a GGUF
// block-quantized type (h.Source: Q4_0 … Q6_K, Q8_0) are stored as int8 with one scale
// per row instead, 1 byte per weight, until the backend has kernels for those types;
// the log says so once per type. Blocks (h.Blocks: Q4_0 and Q4_K, which LoadsBlocks
// reports with Options.W4A16) become W4A16 weights (w4a16.go). On failure nothing stays
// allocated.
func (c *Backend) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if h.Kind != backend.Dense {
		return c.loadKind(h)
	}
	if h.Blocks != nil {
		return c.loadW4(h)
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
		if err := c.Upload(w.W, backend.Bytes(h.F32[:n]), backend.F32); err != nil {
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
	if err := c.Upload(w.W, backend.Bytes(h.I8[:n]), backend.I8); err != nil {
		return nil, errors.Join(fmt.Errorf("cuda load weight %q: %w", h.Name, err), c.free(q), c.free(s))
	}
	if err := c.Upload(w.Scales, backend.Bytes(h.Scales[:h.Out]), backend.F32); err != nil {
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
	why := "no CUDA kernels for this type yet"
	switch {
	case c.LoadsBlocks(backend.Q4_0) && (typ == "Q4_0" || typ == "Q4_K"):
		why = "an embedding table (W4A16 weights are multiplied, not gathered)"
	case c.LoadsBlocks(backend.Q4_0) && typ == "Q5_K":
		why = "Q5_K stays int8 under W4A16: rounding its 5-bit levels to 4 bits would lose more than int8 does (runtime/quant/w4)"
	}
	c.opt.Log.Info("cuda: converting GGUF block-quantized weights to int8 at load (one scale per row): "+why,
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

// stream is a CUDA stream with a pinned staging arena for the index data Stage copies
// and a device scratch buffer.
type stream struct {
	id int
	s  cgo.Stream
	be *Backend

	host, devp unsafe.Pointer // arena: pinned host and device, cap bytes each
	cap, off   int

	scratch *devBuf // bytes (I8 storage)

	// A graph captured on the stream holds the address of the scratch it used and reads
	// it at every replay, so once captured it is never freed before Close: growing then
	// allocates anew and keeps the old one (in Backend.bufs). (Stage refuses while
	// capturing, so no graph reads the arena.)
	scratchCaptured bool

	// sampleWS is DecodeLoop's sampler workspace: vireo_sample's (v1), whose counts part
	// is zero for sampleShape (rows, vocab, 0), the last shape it was used with, or
	// vireo_sample2's (v2), all of whose must-be-zero parts are zero for sampleShape
	// (rows, vocab, chunk).
	sampleWS    *devBuf
	sampleShape [3]int

	// attn2WS is vireo_attention2's workspace (split counters, which every call leaves
	// zero, the tile plan and the splits' partial results): zeroed when allocated, kept
	// apart from the scratch, which other ops overwrite. A graph captured with it reads
	// it at every replay: once captured it is never freed before Close (attn2Captured),
	// as the scratch.
	attn2WS       *devBuf
	attn2Captured bool

	// mm2WS is kernels v2's split-K workspace: partials and one counter per tile, the
	// counters zero between calls (every call leaves them so). Captured like scratch:
	// a graph keeps its address, so once captured it is never freed before Close.
	mm2WS         *devBuf
	mm2WSCaptured bool

	capturing bool // between BeginCapture and EndCapture
	// capWrites are the buffers the ops of the capture in progress wrote: a replay of
	// the graph writes them again (see wrote).
	capWrites map[*devBuf]struct{}
	// During a capture: the smallest MaxCtx of the Attention calls and the block size of
	// the caches WriteKV and Attention used (see graph).
	capMaxCtx, capBlockSize int
}

func (s *stream) ID() int { return s.id }

// NewStream creates a non-blocking CUDA stream at default priority.
func (c *Backend) NewStream() (backend.Stream, error) {
	cs, err := cgo.StreamCreate(0)
	if err != nil {
		return nil, fmt.Errorf("cuda new stream: %w", err)
	}
	st := &stream{id: int(c.streams.Add(1) - 1), s: cs, be: c}
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
		if err := s.s.Sync(); err != nil {
			return nil, err
		}
		s.off = 0
		if need > s.cap {
			if s.host != nil {
				cgo.FreeHost(s.host)
				cgo.Free(s.devp)
				s.host, s.devp, s.cap = nil, nil, 0
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
	if s.capturing || c.capturing.Load() > 0 { // growing syncs and frees: not while any stream captures
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

// mm2Workspace returns kernels v2's split-K workspace of at least n bytes, its counters
// zero, valid for the stream's next ops (growing it synchronizes the stream first, and
// is refused during a capture, like scratchBytes).
func (c *Backend) mm2Workspace(s *stream, n int) (unsafe.Pointer, int, error) {
	if s.mm2WS != nil && s.mm2WS.n >= n {
		s.mm2WSCaptured = s.mm2WSCaptured || s.capturing
		return s.mm2WS.ptr, s.mm2WS.n, nil
	}
	if s.capturing || c.capturing.Load() > 0 {
		have := 0
		if s.mm2WS != nil {
			have = s.mm2WS.n
		}
		return nil, 0, fmt.Errorf("matmul split-K workspace must grow from %d to %d bytes during a capture (issue the step once before capturing, so that it is sized): %w", have, n, errCapturing)
	}
	if err := s.s.Sync(); err != nil {
		return nil, 0, err
	}
	if s.mm2WS != nil {
		if !s.mm2WSCaptured {
			if err := c.free(s.mm2WS); err != nil {
				return nil, 0, err
			}
		}
		s.mm2WS, s.mm2WSCaptured = nil, false
	}
	b, err := c.alloc(backend.I8, max(n, 1<<20))
	if err != nil {
		return nil, 0, err
	}
	if err := cgo.Memset(b.ptr, 0, b.n, s.s); err != nil {
		return nil, 0, errors.Join(err, c.free(b))
	}
	s.mm2WS = b
	return b.ptr, b.n, nil
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
	// A new table needs cudaMalloc, an upload and, on failure, cudaFree: refused before
	// allocating while any stream captures (cudaFree during a capture invalidates it).
	if c.capturing.Load() > 0 {
		return nil, fmt.Errorf("new RoPE frequency table of %d entries: %w", len(f), errCapturing)
	}
	b, err := c.alloc(backend.F32, len(f))
	if err != nil {
		return nil, err
	}
	if err := c.Upload(backend.Tensor{DType: backend.F32, Rows: 1, Cols: len(f), Buf: b}, backend.Bytes(f), backend.F32); err != nil {
		return nil, errors.Join(err, c.free(b))
	}
	c.mu.Lock()
	c.rope = append(c.rope, ropeTable{host: slices.Clone(f), dev: b})
	c.mu.Unlock()
	return b.ptr, nil
}

var _ backend.Backend = (*Backend)(nil)

// LoadRandomWeight draws a synthetic float weight on the device: uniform(-a, a) from
// seed (vireo_fill_uniform's Philox stream), stored in the activation type. It is what
// model.Synthetic uses on this backend (backend.RandomWeightLoader), so that an 8B
// shape is not drawn and converted on one host thread (16 GB of 16-bit weights in
// milliseconds instead of tens of seconds). The values differ from the host's draw of
// the same seed: synthetic float models are for speed, not for comparison.
func (c *Backend) LoadRandomWeight(name string, out, in int, seed uint64, a float32) (*backend.Weight, error) {
	if out <= 0 || in <= 0 || out > (1<<40)/in {
		return nil, fmt.Errorf("cuda random weight %q: bad shape [%d][%d]", name, out, in)
	}
	if c.capturing.Load() > 0 {
		return nil, fmt.Errorf("cuda random weight %q: %w", name, errCapturing)
	}
	b, err := c.alloc(c.act, out*in)
	if err != nil {
		return nil, fmt.Errorf("cuda random weight %q [%d][%d]: %w", name, out, in, err)
	}
	c.xferMu.Lock()
	x, err := c.xferLocked()
	if err == nil {
		err = cgo.FillUniform(x.s, cgo.DType(c.act), b.ptr, out*in, seed, a)
		err = errors.Join(err, x.s.Sync())
	}
	c.xferMu.Unlock()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cuda random weight %q [%d][%d]: %w", name, out, in, err), c.free(b))
	}
	return &backend.Weight{Name: name, Out: out, In: in, W: backend.Tensor{DType: c.act, Rows: out, Cols: in, Buf: b}}, nil
}

var _ backend.RandomWeightLoader = (*Backend)(nil)
