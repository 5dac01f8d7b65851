package engine

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/kv"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// asyncBackend is the CPU backend made to look like a GPU: every op is queued on its
// stream and runs later, in stream order, only when the fake decides — when the host
// needs a result (Download, Sync, Upload), when a queued Wait needs another stream's
// event, or, with probability progress, when the host polls an event (Event.Done).
// So a prefill chunk that returns no logits is still pending when the engine commits
// its plan, and events complete long after Record.
//
// It keeps a trace of launches, records, waits and executions and checks, as each op
// runs, the two hazards the engine must prevent:
//   - an op touching a KV block while an op issued earlier on another stream, touching
//     the same block with at least one of the two writing, has not run yet (a decode
//     reading a prefill's blocks before that prefill's event, a chunk on one lane
//     reading the previous chunk written on another, a reused block written while
//     the old owner's work still reads it);
//   - (checkPool, from the engine's loop) a block back in the pool — refcount zero,
//     free or evictable — while work issued on it has not run;
//   - an op (or a Download) reading a buffer whose upload was not ordered before it,
//     and an Upload into a buffer that work issued earlier still uses.
//
// Uploads are modelled as the CUDA backend does them: Upload and LoadWeight queue
// their copy on the backend's own transfer stream and wait for that stream (only)
// before returning, so every op issued afterwards reads landed bytes; before the copy
// they wait for the buffer's writer stream. With unorderedUploads the fake returns with
// the copy still queued, as a cudaMemcpy from pageable memory on the legacy stream
// may (the bug of issue 18): the first op that reads the buffer before its copy has
// run is reported, and the copy is then made to land so that the run goes on.
type asyncBackend struct {
	*cpu.Backend
	mu       sync.Mutex
	rng      *rand.Rand
	progress float64 // chance that polling a pending event runs its stream up to it
	streams  []*fakeStream
	seq      uint64
	pending  map[int32][]access // per block: issued, not yet executed accesses
	writer   map[backend.Buffer]*fakeStream

	unorderedUploads bool                       // Upload returns before its copy ran (the old bug)
	xfer             *fakeStream                // the transfer stream of Upload and LoadWeight
	landing          map[backend.Buffer]*fakeOp // uploads whose copy has not run yet

	capturing   int              // streams capturing a graph
	failCapture int              // > 0: BeginCapture fails from this capture on
	refuse      float64          // chance the device sampler gives a row back to the host
	sampler     sampling.Sampler // the "device" sampler of DecodeLoop

	trace      []string // the last traceCap entries
	violations []string
	n          struct {
		launches, records, waits, crossWaits, pendingPolls int
		captures, loops, loopSteps, refused                int
	}
}

const traceCap = 4096

type fakeStream struct {
	id      int
	q       []*fakeOp
	touched []int32    // KV blocks of ops since the last Record
	capture *fakeGraph // recording instead of queueing
}

func (s *fakeStream) ID() int { return s.id }

type fakeOp struct {
	seq    uint64
	s      *fakeStream
	name   string
	run    func() error // nil for markers
	record *fakeEvent
	wait   *fakeEvent
	reads  []int32
	writes []int32
	bufs   []backend.Buffer // buffers the op reads or writes (the upload checks)
	done   bool
}

type access struct {
	op    *fakeOp
	write bool
}

type fakeEvent struct {
	f      *asyncBackend
	op     *fakeOp // the record marker
	blocks []int32
	done   bool
}

func newAsyncBackend(seed uint64, progress float64) *asyncBackend {
	return &asyncBackend{Backend: cpu.New(cpu.Options{}), rng: rand.New(rand.NewPCG(seed, 7)), progress: progress,
		pending: map[int32][]access{}, writer: map[backend.Buffer]*fakeStream{},
		xfer: &fakeStream{id: -1}, landing: map[backend.Buffer]*fakeOp{}}
}

func (f *asyncBackend) log(format string, args ...any) {
	if len(f.trace) >= traceCap {
		f.trace = f.trace[traceCap/2:]
	}
	f.trace = append(f.trace, fmt.Sprintf(format, args...))
}

func (f *asyncBackend) NewStream() (backend.Stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeStream{id: len(f.streams)}
	f.streams = append(f.streams, s)
	return s, nil
}

func streamOf(st backend.Stream) (*fakeStream, error) {
	s, ok := st.(*fakeStream)
	if !ok {
		return nil, fmt.Errorf("fake: stream %v is not the fake's", st)
	}
	return s, nil
}

func (f *asyncBackend) enqueue(st backend.Stream, op *fakeOp, out backend.Buffer) error {
	s, err := streamOf(st)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enqueueLocked(s, op, out)
}

func (f *asyncBackend) enqueueLocked(s *fakeStream, op *fakeOp, out backend.Buffer) error {
	if s.capture != nil {
		if op.run == nil {
			return fmt.Errorf("fake: %s while capturing (the decode step records no events)", op.name)
		}
		s.capture.ops = append(s.capture.ops, op)
		f.log("capture s%d %s", s.id, op.name)
		return nil
	}
	f.seq++
	op.seq, op.s = f.seq, s
	s.q = append(s.q, op)
	for _, b := range op.reads {
		f.pending[b] = append(f.pending[b], access{op: op})
	}
	for _, b := range op.writes {
		f.pending[b] = append(f.pending[b], access{op: op, write: true})
	}
	s.touched = append(s.touched, op.reads...)
	s.touched = append(s.touched, op.writes...)
	if out != nil {
		f.writer[out] = s
	}
	switch {
	case op.record != nil:
		f.n.records++
		f.log("record s%d e%d", s.id, op.seq)
	case op.wait != nil:
		f.n.waits++
		if op.wait.op.s != s {
			f.n.crossWaits++
		}
		f.log("wait s%d e%d", s.id, op.wait.op.seq)
	default:
		f.n.launches++
		f.log("launch s%d #%d %s r%v w%v", s.id, op.seq, op.name, op.reads, op.writes)
	}
	return nil
}

// execFront runs the first op of s (f.mu held), first running whatever its wait needs.
func (f *asyncBackend) execFront(s *fakeStream) error {
	op := s.q[0]
	if op.wait != nil && !op.wait.done {
		if err := f.runUntil(op.wait.op); err != nil {
			return err
		}
	}
	f.check(op)
	var err error
	if op.run != nil {
		err = op.run()
	}
	op.done = true
	if op.record != nil {
		op.record.done = true
	}
	for _, b := range op.reads {
		f.unpend(b, op)
	}
	for _, b := range op.writes {
		f.unpend(b, op)
	}
	if s == f.xfer {
		for _, b := range op.bufs {
			if f.landing[b] == op {
				delete(f.landing, b)
			}
		}
	}
	s.q[0] = nil
	s.q = s.q[1:]
	f.log("exec s%d #%d", s.id, op.seq)
	if err != nil {
		return fmt.Errorf("fake: %s: %w", op.name, err)
	}
	return nil
}

func (f *asyncBackend) check(x *fakeOp) {
	if x.s != f.xfer {
		for _, b := range x.bufs {
			f.landed(b, fmt.Sprintf("s%d #%d %s", x.s.id, x.seq, x.name))
		}
	}
	seen := map[string]bool{}
	for _, acc := range [2]struct {
		blocks []int32
		write  bool
	}{{x.reads, false}, {x.writes, true}} {
		for _, b := range acc.blocks {
			for _, y := range f.pending[b] {
				if y.op == x || y.op.s == x.s || y.op.seq > x.seq || !(acc.write || y.write) {
					continue
				}
				v := fmt.Sprintf("block %d: s%d #%d %s (write %v) runs before s%d #%d %s (write %v), issued earlier, has run",
					b, x.s.id, x.seq, x.name, acc.write, y.op.s.id, y.op.seq, y.op.name, y.write)
				if !seen[v] && len(f.violations) < 100 {
					seen[v] = true
					f.violations = append(f.violations, v)
				}
			}
		}
	}
}

// landed reports who reading b while b's upload is still queued (f.mu held), then lets
// the copy land so that the run goes on with the right bytes.
func (f *asyncBackend) landed(b backend.Buffer, who string) {
	up := f.landing[b]
	if up == nil || up.done {
		return
	}
	if len(f.violations) < 100 {
		f.violations = append(f.violations, fmt.Sprintf("%s reads a buffer whose upload (#%d, %s) was not ordered before it", who, up.seq, up.name))
	}
	if err := f.runUntil(up); err != nil {
		panic(err) // the fake's copies do not fail on valid input
	}
}

// bufsOf lists the buffers of tensors (the zero tensor's nil buffer left out).
func bufsOf(ts ...backend.Tensor) []backend.Buffer {
	var out []backend.Buffer
	for _, t := range ts {
		if t.Buf != nil {
			out = append(out, t.Buf)
		}
	}
	return out
}

func weightBufs(w *backend.Weight) []backend.Buffer { return bufsOf(w.W, w.Scales) }

func (f *asyncBackend) unpend(b int32, op *fakeOp) {
	p := f.pending[b]
	k := 0
	for _, a := range p {
		if a.op != op {
			p[k] = a
			k++
		}
	}
	if k == 0 {
		delete(f.pending, b)
		return
	}
	f.pending[b] = p[:k]
}

func (f *asyncBackend) runUntil(op *fakeOp) error {
	for !op.done {
		if err := f.execFront(op.s); err != nil {
			return err
		}
	}
	return nil
}

func (f *asyncBackend) drain(s *fakeStream) error {
	for len(s.q) > 0 {
		if err := f.execFront(s); err != nil {
			return err
		}
	}
	return nil
}

// checkPool reports blocks back in the pool while work issued on them is pending.
func (f *asyncBackend) checkPool(stage string, pool *kv.BlockPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for b, accs := range f.pending {
		if pool.RefCount(b) == 0 && len(f.violations) < 100 {
			f.violations = append(f.violations, fmt.Sprintf("after %s: block %d is back in the pool while s%d #%d %s is pending",
				stage, b, accs[0].op.s.id, accs[0].op.seq, accs[0].op.name))
		}
	}
}

func (f *asyncBackend) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.violations)
}

// ---- events ----

func (e *fakeEvent) Done() bool {
	f := e.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.done {
		return true
	}
	f.n.pendingPolls++
	if f.rng.Float64() < f.progress {
		if err := f.runUntil(e.op); err != nil {
			panic(err) // the fake's own ops do not fail on valid input
		}
	}
	return e.done
}

func (f *asyncBackend) Record(st backend.Stream) (backend.Event, error) {
	s, err := streamOf(st)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	blocks := slices.Compact(slices.Sorted(slices.Values(s.touched)))
	s.touched = s.touched[:0]
	f.mu.Unlock()
	ev := &fakeEvent{f: f, blocks: blocks}
	ev.op = &fakeOp{name: "record", record: ev}
	return ev, f.enqueue(st, ev.op, nil)
}

func (f *asyncBackend) Wait(st backend.Stream, e backend.Event) error {
	ev, ok := e.(*fakeEvent)
	if !ok {
		return fmt.Errorf("fake: event %v is not the fake's", e)
	}
	return f.enqueue(st, &fakeOp{name: "wait", wait: ev}, nil)
}

func (f *asyncBackend) Sync(st backend.Stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.capturing > 0 {
		return errCapture
	}
	return f.drain(st.(*fakeStream))
}

// Upload and Download take no stream. Upload, as the CUDA backend's: runs the stream
// that last wrote the buffer, queues the copy on the transfer stream and (unless
// unorderedUploads) runs that stream before returning; an Upload into a buffer that a
// queued op still uses is reported. Download runs the stream that last wrote the
// buffer, and what that stream waits for.
func (f *asyncBackend) Upload(dst backend.Tensor, src []byte, dt backend.DType) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.capturing > 0 {
		return errCapture
	}
	if dst.Buf == nil {
		return f.Backend.Upload(dst, src, dt) // the CPU backend's own error
	}
	for _, s := range f.streams {
		for _, op := range s.q {
			if slices.Contains(op.bufs, dst.Buf) && len(f.violations) < 100 {
				f.violations = append(f.violations, fmt.Sprintf("upload into a buffer that s%d #%d %s, issued earlier, still uses", s.id, op.seq, op.name))
			}
		}
	}
	if s := f.writer[dst.Buf]; s != nil {
		if err := f.drain(s); err != nil {
			return err
		}
		delete(f.writer, dst.Buf)
	}
	data := slices.Clone(src)
	return f.queueCopy("upload", dst.Buf, func() error { return f.Backend.Upload(dst, data, dt) })
}

// LoadWeight keeps the CPU backend's weight (which holds the host slices) and models
// the device copy: one queued copy per buffer on the transfer stream, ordered like
// Upload's.
func (f *asyncBackend) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	w, err := f.Backend.LoadWeight(h)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range weightBufs(w) {
		if err := f.queueCopy("load weight "+h.Name, b, func() error { return nil }); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// queueCopy queues a host-to-device copy into b on the transfer stream and, unless
// unorderedUploads, waits for it (f.mu held).
func (f *asyncBackend) queueCopy(name string, b backend.Buffer, run func() error) error {
	op := &fakeOp{name: name, run: run, bufs: []backend.Buffer{b}}
	if err := f.enqueueLocked(f.xfer, op, nil); err != nil {
		return err
	}
	f.landing[b] = op
	if f.unorderedUploads {
		return nil
	}
	return f.drain(f.xfer)
}

func (f *asyncBackend) Download(dst []byte, dt backend.DType, src backend.Tensor) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.capturing > 0 {
		return errCapture
	}
	f.landed(src.Buf, "download")
	if s := f.writer[src.Buf]; s != nil {
		if err := f.drain(s); err != nil {
			return err
		}
	}
	return f.Backend.Download(dst, dt, src)
}

// ---- ops: staged index data is copied at issue, as a device backend copies it into
// its staging arena ----

func (f *asyncBackend) Stage(s backend.Stream, v []int32) (backend.Tensor, error) {
	return f.Backend.Stage(s, slices.Clone(v))
}

func (f *asyncBackend) Embed(s backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	return f.enqueue(s, &fakeOp{name: "embed", bufs: append(weightBufs(table), bufsOf(out, ids)...),
		run: func() error { return f.Backend.Embed(s, out, table, ids) }}, out.Buf)
}

func (f *asyncBackend) RMSNorm(s backend.Stream, out, x, w backend.Tensor, eps float32) error {
	return f.enqueue(s, &fakeOp{name: "rmsnorm", bufs: bufsOf(out, x, w),
		run: func() error { return f.Backend.RMSNorm(s, out, x, w, eps) }}, out.Buf)
}

func (f *asyncBackend) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	return f.enqueue(s, &fakeOp{name: "matmul", bufs: append(weightBufs(w), bufsOf(out, x)...),
		run: func() error { return f.Backend.MatMul(s, out, x, w, epi) }}, out.Buf)
}

func (f *asyncBackend) RoPE(s backend.Stream, x, pos backend.Tensor, r *backend.RoPE) error {
	return f.enqueue(s, &fakeOp{name: "rope", bufs: bufsOf(x, pos), run: func() error { return f.Backend.RoPE(s, x, pos, r) }}, x.Buf)
}

// kvBlocks lists the cache blocks the rows of at touch: the block of each row's
// position (a write), or every block up to it (attention's reads). An eager pass's
// index is staged, so its values, read here at issue, are those the op will see; a
// captured op's are not known until a replay, whose DecodeLoop step declares them
// (nil here).
func (f *asyncBackend) kvBlocks(st backend.Stream, c *backend.KVCache, at *backend.KVIndex, n int, upTo bool) ([]int32, error) {
	if fs, ok := st.(*fakeStream); ok {
		f.mu.Lock()
		capturing := fs.capture != nil
		if capturing {
			fs.capture.bs = c.BlockSize
		}
		f.mu.Unlock()
		if capturing {
			return nil, nil
		}
	}
	read := func(t backend.Tensor) ([]int32, error) {
		v := make([]int32, t.Len())
		return v, f.Backend.Download(backend.Bytes(v), backend.I32, t)
	}
	pos, err := read(at.Pos)
	if err != nil {
		return nil, err
	}
	seq, err := read(at.Seq)
	if err != nil {
		return nil, err
	}
	tables, err := read(at.Tables)
	if err != nil {
		return nil, err
	}
	bs, w := c.BlockSize, at.Tables.Cols
	var blocks []int32
	for i := range min(n, len(pos), len(seq)) {
		p, sq := int(pos[i]), int(seq[i])
		if p < 0 || sq < 0 || sq >= at.Tables.Rows || p/bs >= w {
			continue
		}
		row := tables[sq*w : (sq+1)*w]
		if upTo {
			blocks = append(blocks, row[:p/bs+1]...)
		} else {
			blocks = append(blocks, row[p/bs])
		}
	}
	return slices.Compact(slices.Sorted(slices.Values(blocks))), nil
}

func (f *asyncBackend) WriteKV(s backend.Stream, c *backend.KVCache, layer int, k, v backend.Tensor, at *backend.KVIndex) error {
	w, err := f.kvBlocks(s, c, at, k.Rows, false)
	if err != nil {
		return err
	}
	ac := *at
	return f.enqueue(s, &fakeOp{name: fmt.Sprintf("writekv l%d", layer), writes: w, bufs: bufsOf(k, v, at.Pos, at.Seq, at.Tables),
		run: func() error { return f.Backend.WriteKV(s, c, layer, k, v, &ac) }}, nil)
}

func (f *asyncBackend) Attention(s backend.Stream, out, q backend.Tensor, c *backend.KVCache, layer int, at *backend.KVIndex, h *backend.AttnHeads) error {
	r, err := f.kvBlocks(s, c, at, q.Rows, true)
	if err != nil {
		return err
	}
	ac, hc := *at, *h
	return f.enqueue(s, &fakeOp{name: fmt.Sprintf("attention l%d", layer), reads: r, bufs: bufsOf(out, q, at.Pos, at.Seq, at.Tables),
		run: func() error { return f.Backend.Attention(s, out, q, c, layer, &ac, &hc) }}, out.Buf)
}

func (f *asyncBackend) SiLUMul(s backend.Stream, out, gate, up backend.Tensor) error {
	return f.enqueue(s, &fakeOp{name: "silumul", bufs: bufsOf(out, gate, up),
		run: func() error { return f.Backend.SiLUMul(s, out, gate, up) }}, out.Buf)
}

func (f *asyncBackend) GatherRows(s backend.Stream, out, x, rows backend.Tensor) error {
	return f.enqueue(s, &fakeOp{name: "gather", bufs: bufsOf(out, x, rows), run: func() error { return f.Backend.GatherRows(s, out, x, rows) }}, out.Buf)
}

var _ backend.Backend = (*asyncBackend)(nil)

// pendingEvent reports, without making progress, whether ev has not completed.
func (f *asyncBackend) pendingEvent(ev backend.Event) bool {
	fe, ok := ev.(*fakeEvent)
	if !ok {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !fe.done
}
