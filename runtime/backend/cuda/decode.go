//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// The decode loop on the device: backend.DecodeLooper.DecodeLoop, K replays of a
// captured decode step with sampling on the device between them, one host round trip.
//
// NEVER RUN ON A GPU: this compiles against the kernel library and follows the CUDA
// runtime's rules as documented, but no GPU was lent when it was written. Its test
// (TestDecodeLoop) compares it with the same step issued eagerly and runtime/sampling
// when a device exists.
//
// The step it replays is the model's one pass over a DecodeIO's fixed buffers (its
// KVIndex): WriteKV and Attention derive the kernels' index metadata on the device
// (vireo_kv_index, into the stream's scratch), so nothing in a replay depends on the
// host. The scratch (index metadata, then attention's split-K workspace) must not grow
// while capturing: issue the step once before BeginCapture (model.CaptureDecode does),
// which sizes it. A scratch a capture used is never freed before Close, since the graph
// keeps its address. Replay the graph on the stream it was captured on, or order the
// two with events: the scratch is that stream's, shared with its eager ops.

var _ backend.DecodeLooper = (*Backend)(nil)

// ---- DecodeLoop ----

// loopState is what DecodeLoop keeps per DecodeIO between calls: device state the
// kernels update, a pinned staging area for the inputs, and the pinned token buffer
// the caller reads.
type loopState struct {
	mu   sync.Mutex
	rows int // the layout's row count

	// Device: the state block (mirrors the staging's state part: limit, stop counts,
	// stop ids, sampling params, then the history region) and the token block (next
	// [rows], then tokens [steps][rows]).
	state  *devBuf
	toks   *devBuf
	tokCap int // tokens (steps*rows) the token block and the pinned buffer hold

	// Pinned host: staging (ids, pos, tables, then the state part) and the tokens.
	stage    unsafe.Pointer
	stageCap int
	hostToks unsafe.Pointer

	// copied is recorded after the last loop's input copies (the staging may be
	// rewritten once it completed); done after its token copy (the device buffers and
	// the pinned tokens may be replaced once it completed).
	copied    cgo.Event
	hasCopied bool
	done      *event
}

// Byte offsets of the state block, for rows rows: limit, stop count, stop ids,
// params, history (each part 256-aligned).
func stateLayout(rows int) (limit, count, stops, params, hist int) {
	al := func(b int) int { return (b + 255) / 256 * 256 }
	count = al(4 * rows)
	stops = count + al(4*rows)
	params = stops + al(4*rows*backend.MaxStopIDs)
	hist = params + al(cgo.SamplingParamsSize*rows)
	return 0, count, stops, params, hist
}

// freeHost frees the pinned memory and the event (the device buffers are the
// backend's, freed with it or by free).
func (ls *loopState) freeHost() error {
	var errs []error
	if ls.stage != nil {
		errs = append(errs, cgo.FreeHost(ls.stage))
	}
	if ls.hostToks != nil {
		errs = append(errs, cgo.FreeHost(ls.hostToks))
	}
	if ls.hasCopied {
		errs = append(errs, ls.copied.Destroy())
	}
	ls.stage, ls.hostToks, ls.stageCap, ls.tokCap, ls.hasCopied, ls.rows = nil, nil, 0, 0, false, 0
	return errors.Join(errs...)
}

// waitDone makes the host wait for the previous loop's last copy, and for its input
// copies: a loop whose copies failed returned after recording copied, with done still
// the loop before it, and the copies it did queue read the staging and write the state.
func (ls *loopState) waitDone() error {
	var errs []error
	if ls.hasCopied {
		errs = append(errs, ls.copied.Sync())
	}
	if ls.done != nil {
		errs = append(errs, ls.done.e.Sync())
	}
	return errors.Join(errs...)
}

// FreeDecodeIO releases what DecodeLoop keeps for io (device state, pinned staging and
// tokens), after waiting for its last loop. The tokens that loop returned become
// invalid. Without it, the state lives until Close.
func (c *Backend) FreeDecodeIO(io *backend.DecodeIO) error {
	if io == nil {
		return nil
	}
	key, _, err := dev("cuda free decode io", io.IDs)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ls := c.loops[key]
	delete(c.loops, key)
	c.mu.Unlock()
	if ls == nil {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	err = ls.waitDone()
	errs := []error{err, ls.freeHost()}
	if ls.state != nil {
		errs = append(errs, c.free(ls.state))
	}
	if ls.toks != nil {
		errs = append(errs, c.free(ls.toks))
	}
	ls.state, ls.toks = nil, nil
	return errors.Join(errs...)
}

// checkIO validates io's buffers and returns their device addresses and the logits'
// storage type and width (the vocabulary).
func checkIO(io *backend.DecodeIO) (ids, pos, tables, logits unsafe.Pointer, ldt backend.DType, vocab int, err error) {
	const op = "decode loop"
	if io == nil || io.Rows <= 0 || io.MaxBlocks <= 0 || io.Rows > math.MaxInt32/max(io.MaxBlocks, backend.MaxStopIDs) {
		if io == nil {
			return nil, nil, nil, nil, 0, 0, backend.ShapeError(op, "no decode io")
		}
		return nil, nil, nil, nil, 0, 0, backend.ShapeError(op, "decode io of %d rows and %d blocks per table", io.Rows, io.MaxBlocks)
	}
	n := io.Rows
	if ids, err = i32Dev(op, "io.IDs", io.IDs, 1, n); err != nil {
		return
	}
	if pos, err = i32Dev(op, "io.Pos", io.Pos, 1, n); err != nil {
		return
	}
	if tables, err = i32Dev(op, "io.Tables", io.Tables, n, io.MaxBlocks); err != nil {
		return
	}
	var lb *devBuf
	if logits, lb, err = dev(op, io.Logits); err != nil {
		return
	}
	ldt, vocab = lb.dt, io.Logits.Cols
	if io.Logits.Rows != n || vocab <= 0 || (ldt != backend.F32 && ldt != backend.F16 && ldt != backend.BF16) {
		err = backend.ShapeError(op, "io.Logits %s stored as %s for %d rows (want f32, f16 or bf16)", io.Logits, ldt, n)
	}
	return
}

// DecodeLoop runs step steps times on s with sampling on the device, as
// backend.DecodeLooper specifies. Per call it: checks rows (besides the interface's
// rules, a row's Limit must not pass the MaxCtx its Attention calls were captured
// with, and its Blocks must cover Limit at the captured caches' block size: the step
// would silently zero or skip such a row); copies every row's inputs
// (ids, positions, block tables into io; limits, stop ids, sampling params and the
// penalty histories into state of its own) from pinned staging in four asynchronous
// copies; then per step replays step, samples io.Logits into a device array
// (vireo_sample) and advances the rows (vireo_decode_advance), writing the step's
// tokens into a device [steps][io.Rows] array; finally copies the tokens into pinned
// memory and records done. The host waits only when the staging is still being read
// by the previous loop's copies, or when buffers grow (then for the previous loop).
//
// A row's history is copied only when its parameters penalize (otherwise the sampler
// never reads it); each row gets room for steps appended tokens. Rows that end have
// their parameters turned greedy on the device, which changes no reported token.
// NEVER RUN ON A GPU (see the top of this file).
func (c *Backend) DecodeLoop(s backend.Stream, step backend.Graph, io *backend.DecodeIO, rows []backend.DecodeRow, steps int) ([]int32, backend.Event, error) {
	const op = "cuda decode loop"
	st, err := c.str(op, s)
	if err != nil {
		return nil, nil, err
	}
	g, ok := step.(*graph)
	if !ok || g == nil {
		return nil, nil, fmt.Errorf("%s: step %v is not a graph of this backend", op, step)
	}
	idsP, posP, tabP, logP, ldt, vocab, err := checkIO(io)
	if err != nil {
		return nil, nil, err
	}
	R, MB := io.Rows, io.MaxBlocks
	if steps < 1 || steps > math.MaxInt32/R {
		return nil, nil, fmt.Errorf("%s: %d steps of %d rows (want 1 .. %d)", op, steps, R, math.MaxInt32/R)
	}
	if len(rows) > R {
		return nil, nil, fmt.Errorf("%s: %d rows for a bucket of %d", op, len(rows), R)
	}
	hist := 0 // ids of the history region
	for i := range rows {
		r := &rows[i]
		switch {
		case r.Pos < 0 || r.Pos >= r.Limit:
			return nil, nil, fmt.Errorf("%s: row %d: position %d with limit %d (want 0 <= pos < limit)", op, i, r.Pos, r.Limit)
		case r.ID < 0 || int(r.ID) >= vocab:
			return nil, nil, fmt.Errorf("%s: row %d: token id %d outside the vocabulary [0, %d)", op, i, r.ID, vocab)
		case len(r.Blocks) > MB:
			return nil, nil, fmt.Errorf("%s: row %d: %d blocks for tables of %d", op, i, len(r.Blocks), MB)
		case len(r.Stop) > backend.MaxStopIDs:
			return nil, nil, fmt.Errorf("%s: row %d: %d stop ids (at most %d)", op, i, len(r.Stop), backend.MaxStopIDs)
		case g.maxCtx > 0 && int(r.Limit) > g.maxCtx:
			return nil, nil, fmt.Errorf("%s: row %d: limit %d beyond the context of %d the step was captured for (its attention would give zeros)", op, i, r.Limit, g.maxCtx)
		case g.blockSize > 0 && len(r.Blocks)*g.blockSize < int(r.Limit):
			return nil, nil, fmt.Errorf("%s: row %d: %d blocks of %d positions do not cover its limit %d", op, i, len(r.Blocks), g.blockSize, r.Limit)
		}
		h := steps
		if r.Penalizes() {
			h += len(r.History)
		}
		if h > math.MaxInt32 || hist > math.MaxInt32-h {
			return nil, nil, fmt.Errorf("%s: row %d: history of %d ids and %d steps overflow the int32 history length", op, i, len(r.History), steps)
		}
		hist += h
	}
	hist = max(hist, 1)
	if st.capturing || c.capturing.Load() > 0 {
		return nil, nil, fmt.Errorf("%s: %w", op, errCapturing)
	}

	c.mu.Lock()
	if c.loops == nil {
		c.loops = map[unsafe.Pointer]*loopState{}
	}
	ls := c.loops[idsP]
	if ls == nil {
		ls = &loopState{}
		c.loops[idsP] = ls
	}
	c.mu.Unlock()
	ls.mu.Lock()
	defer ls.mu.Unlock()

	// Buffers, grown (after the previous loop finished with them) when too small.
	lim, cnt, stp, par, his := stateLayout(R)
	stateBytes := his + 4*hist
	tablesOff := (8*R + 255) / 256 * 256
	stateOff := tablesOff + (4*R*MB+255)/256*256
	stageBytes := stateOff + stateBytes
	ntok := steps * R
	tokOff := (4*R + 255) / 256 * 256 // the token block: next [R], then the tokens
	if ls.rows != R || ls.state == nil || ls.state.n < stateBytes || ls.stageCap < stageBytes || ls.toks == nil || ls.tokCap < ntok {
		if err := ls.waitDone(); err != nil {
			return nil, nil, wrap(op, err, "waiting for the previous loop before growing its buffers")
		}
		if err := c.growLoop(ls, R, stateBytes, stageBytes, tokOff, ntok); err != nil {
			return nil, nil, wrap(op, err, "%d rows, history of %d ids, %d steps", R, hist, steps)
		}
	}
	// The sampler: v2 (vireo_sample2, every row on the device) or v1 (vireo_sample).
	var sws unsafe.Pointer
	var s2 *cgo.Sample2Config
	if c.opt.Kernels != KernelsV1 {
		cfg := c.sample2Config(R, vocab)
		need, err := cgo.Sample2WorkspaceBytes(R, vocab, cfg.Chunk)
		if err == nil {
			sws, err = c.sample2Workspace(st, need, [3]int{R, vocab, cfg.Chunk})
		}
		if err != nil {
			return nil, nil, wrap(op, err, "v2 sample workspace for %d rows of %d (%s)", R, vocab, cfg)
		}
		s2 = cgoSample2(cfg)
	} else if sws, err = c.sampleWorkspace(st, R, vocab); err != nil {
		return nil, nil, wrap(op, err, "sample workspace for %d rows of %d", R, vocab)
	}
	if ls.hasCopied {
		if err := ls.copied.Sync(); err != nil { // the previous loop's copies read the staging
			return nil, nil, wrap(op, err, "waiting for the previous loop's input copies")
		}
	}

	// Staging: every row of the bucket; rows past len(rows) idle. Table entries past a
	// row's Blocks are -1, so a row that outruns its table (Limit beyond what Blocks
	// covers) is skipped by WriteKV and zeroed by Attention rather than writing into
	// block 0.
	base := ls.stage
	ids := unsafe.Slice((*int32)(base), R)
	pos := unsafe.Slice((*int32)(unsafe.Add(base, 4*R)), R)
	tab := unsafe.Slice((*int32)(unsafe.Add(base, tablesOff)), R*MB)
	sb := unsafe.Add(base, stateOff)
	limit := unsafe.Slice((*int32)(unsafe.Add(sb, lim)), R)
	count := unsafe.Slice((*int32)(unsafe.Add(sb, cnt)), R)
	stops := unsafe.Slice((*int32)(unsafe.Add(sb, stp)), R*backend.MaxStopIDs)
	params := unsafe.Slice((*cgo.SamplingParams)(unsafe.Add(sb, par)), R)
	history := unsafe.Slice((*int32)(unsafe.Add(sb, his)), hist)
	for i := range tab {
		tab[i] = -1
	}
	clear(stops)
	off, end := 0, 0 // history: next row's offset, end of the last copied history
	for i := 0; i < R; i++ {
		if i >= len(rows) {
			ids[i], pos[i], limit[i], count[i] = 0, -1, 0, 0
			params[i] = cgo.SamplingParams{TopP: 1, RepetitionPenalty: 1, HistoryOff: int64(off)}
			continue
		}
		r := &rows[i]
		ids[i], pos[i], limit[i], count[i] = r.ID, r.Pos, r.Limit, int32(len(r.Stop))
		copy(tab[i*MB:], r.Blocks)
		copy(stops[i*backend.MaxStopIDs:], r.Stop)
		topK := r.TopK
		if topK > math.MaxInt32 || topK < 0 {
			topK = 0 // disabled either way (the sampler takes k <= 0 or k >= vocab so)
		}
		p := cgo.SamplingParams{
			Temperature: r.Temperature, TopP: r.TopP, MinP: r.MinP, RepetitionPenalty: r.RepetitionPenalty,
			PresencePenalty: r.PresencePenalty, FrequencyPenalty: r.FrequencyPenalty, TopK: int32(topK),
			HistoryOff: int64(off), Seed: r.Seed, TokenIndex: r.Index,
		}
		if r.Penalizes() {
			copy(history[off:], r.History)
			p.HistoryLen = int32(len(r.History))
			end = off + len(r.History)
		}
		params[i] = p
		off += int(p.HistoryLen) + steps
	}
	used := his + 4*end // the state bytes to copy: the room after the last history need not travel

	// Order after the previous loop on io (it may have run on another stream), then copy.
	if ls.done != nil {
		if err := st.s.Wait(ls.done.e); err != nil {
			return nil, nil, wrap(op, err, "waiting on the previous loop's event")
		}
	}
	copyErr := errors.Join(
		cgo.MemcpyH2D(idsP, unsafe.Pointer(&ids[0]), 4*R, st.s),
		cgo.MemcpyH2D(posP, unsafe.Pointer(&pos[0]), 4*R, st.s),
		cgo.MemcpyH2D(tabP, unsafe.Pointer(&tab[0]), 4*R*MB, st.s),
		cgo.MemcpyH2D(ls.state.ptr, sb, used, st.s),
	)
	// Recorded even after a failed copy: the others may be pending on the staging.
	// Without the record, the next loop could rewrite the staging under them: wait here.
	if err := ls.copied.Record(st.s); err != nil {
		copyErr = errors.Join(copyErr, err, st.s.Sync())
	}
	if copyErr != nil {
		return nil, nil, wrap(op, copyErr, "input copies of %d rows", R)
	}

	// The loop writes ids, positions and (through the replays) whatever the step's
	// capture wrote, logits included: Download of any of them waits for st.
	st.wrote(io.IDs, io.Pos, io.Tables, io.Logits)
	g.markWrites(st)
	dst := ls.state.ptr
	next := ls.toks.ptr
	toks := unsafe.Add(ls.toks.ptr, tokOff)
	adv := cgo.DecodeAdvanceArgs{
		Rows: R, IDs: idsP, Pos: posP, Limit: unsafe.Add(dst, lim), StopIDs: unsafe.Add(dst, stp),
		StopCount: unsafe.Add(dst, cnt), Next: next, Params: unsafe.Add(dst, par), History: unsafe.Add(dst, his),
	}
	sample := func() error {
		return cgo.Sample(st.s, cgo.DType(ldt), logP, vocab, R, vocab, adv.Params, adv.History, next, sws, st.sampleWS.n)
	}
	if s2 != nil {
		sample = func() error {
			return cgo.Sample2(st.s, cgo.DType(ldt), logP, vocab, R, vocab, adv.Params, adv.History, next, sws, st.sampleWS.n, s2)
		}
	}
	loopErr := func() error {
		for k := 0; k < steps; k++ {
			if err := g.x.Launch(st.s); err != nil {
				return wrap(op, err, "step %d of %d: graph launch", k, steps)
			}
			if err := sample(); err != nil {
				return wrap(op, err, "step %d of %d: sample %d rows of %d (%s)", k, steps, R, vocab, ldt)
			}
			adv.Out = unsafe.Add(toks, 4*k*R)
			if err := cgo.DecodeAdvance(st.s, &adv); err != nil {
				return wrap(op, err, "step %d of %d: advance %d rows", k, steps, R)
			}
		}
		return wrap(op, cgo.MemcpyD2H(ls.hostToks, toks, 4*ntok, st.s), "copying %d tokens to the host", ntok)
	}()
	// Recorded after a failure too: whatever was queued must finish before the buffers
	// are reused.
	ev, err := c.Record(s)
	if err != nil {
		// ls.done still marks the loop before: the next one would free or rewrite the
		// state, the tokens and the pinned buffer under this loop's pending work.
		return nil, nil, errors.Join(loopErr, wrap(op, err, "recording the loop's end"), st.s.Sync())
	}
	ls.done = ev.(*event)
	if loopErr != nil {
		return nil, nil, loopErr
	}
	return unsafe.Slice((*int32)(ls.hostToks), ntok), ev, nil
}

// growLoop (re)allocates what of ls is too small for rows rows, stateBytes of device
// state, stageBytes of staging and ntok tokens (after tokOff bytes of next); the
// previous loop on ls has completed. The state and the staging grow geometrically:
// with penalties, the histories lengthen by the steps of every loop.
func (c *Backend) growLoop(ls *loopState, rows, stateBytes, stageBytes, tokOff, ntok int) error {
	if !ls.hasCopied {
		e, err := cgo.EventCreate(false)
		if err != nil {
			return err
		}
		ls.copied, ls.hasCopied = e, true
	}
	grow := func(have, need int) int {
		if have > 0 && 2*have > need && 2*have-need < 1<<30 {
			return 2 * have
		}
		return need
	}
	if ls.rows != rows || ls.state == nil || ls.state.n < stateBytes {
		have := 0
		if ls.state != nil {
			if ls.rows == rows {
				have = ls.state.n
			}
			if err := c.free(ls.state); err != nil {
				return err
			}
			ls.state = nil
		}
		b, err := c.alloc(backend.I8, grow(have, stateBytes))
		if err != nil {
			return err
		}
		ls.state = b
	}
	if ls.stageCap < stageBytes {
		have := ls.stageCap
		if ls.stage != nil {
			if err := cgo.FreeHost(ls.stage); err != nil {
				return err
			}
			ls.stage, ls.stageCap = nil, 0
		}
		n := grow(have, stageBytes)
		p, err := cgo.MallocHost(n)
		if err != nil {
			return err
		}
		ls.stage, ls.stageCap = p, n
	}
	if ls.rows != rows || ls.toks == nil || ls.hostToks == nil || ls.tokCap < ntok {
		if ls.toks != nil {
			if err := c.free(ls.toks); err != nil {
				return err
			}
			ls.toks = nil
		}
		if ls.hostToks != nil {
			if err := cgo.FreeHost(ls.hostToks); err != nil {
				return err
			}
			ls.hostToks, ls.tokCap = nil, 0
		}
		b, err := c.alloc(backend.I8, tokOff+4*ntok)
		if err != nil {
			return err
		}
		ls.toks = b
		p, err := cgo.MallocHost(4 * ntok)
		if err != nil {
			return err
		}
		ls.hostToks, ls.tokCap = p, ntok
	}
	ls.rows = rows
	return nil
}

// sampleWorkspace returns the stream's vireo_sample workspace for rows×vocab with its
// counts part zero: allocated zeroed when it must grow (after the stream's work), and
// its counts part zeroed again when the shape changes (vireo_sample keeps the counts of
// its own shape zero, but another shape's parts overlap them).
func (c *Backend) sampleWorkspace(st *stream, rows, vocab int) (unsafe.Pointer, error) {
	need, err := cgo.SampleWorkspaceBytes(rows, vocab)
	if err != nil {
		return nil, err
	}
	shape := [3]int{rows, vocab, 0}
	if st.sampleWS == nil || st.sampleWS.n < need {
		if err := st.s.Sync(); err != nil {
			return nil, err
		}
		if st.sampleWS != nil {
			if err := c.free(st.sampleWS); err != nil {
				return nil, err
			}
			st.sampleWS = nil
		}
		b, err := c.alloc(backend.I8, need)
		if err != nil {
			return nil, err
		}
		if err := cgo.Memset(b.ptr, 0, need, st.s); err != nil {
			return nil, errors.Join(err, c.free(b))
		}
		st.sampleWS, st.sampleShape = b, shape
		return b.ptr, nil
	}
	if st.sampleShape != shape {
		counts := (4*rows*vocab + 255) / 256 * 256 // vireo_sample's layout: counts first
		if err := cgo.Memset(st.sampleWS.ptr, 0, counts, st.s); err != nil {
			return nil, err
		}
		st.sampleShape = shape
	}
	return st.sampleWS.ptr, nil
}
