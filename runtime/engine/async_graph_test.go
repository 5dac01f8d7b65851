package engine

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// The asynchronous fake's graphs and device decode loop, shaped like the CUDA
// backend's: ops issued on a capturing stream are recorded, not queued (and anything
// that would make the host wait fails while a stream captures); DecodeLoop queues,
// per step, one op that replays the recorded ops over the loop's device buffers,
// samples every active row with runtime/sampling (what the CUDA sampler reproduces)
// and advances ids, positions and the finished mask; its tokens land in a host slice
// before the loop's event completes. Each step op declares the KV blocks its rows may
// touch (every block up to each row's position), so the ordering checker sees graph
// replays exactly like eager passes. With refuse > 0 the "device sampler" gives up on
// a row with that probability (backend.TokenHost), as the CUDA sampler does for rows
// with too many candidates, so the engine's host fallback runs.

type fakeGraph struct {
	ops []*fakeOp
	bs  int // the KV cache's block size, seen in the captured WriteKV
}

func (g *fakeGraph) Launch(backend.Stream) error {
	return errors.New("fake: graphs are replayed through DecodeLoop only")
}

func (g *fakeGraph) Destroy() error {
	g.ops = nil
	return nil
}

func (f *asyncBackend) BeginCapture(st backend.Stream) error {
	s, err := streamOf(st)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.capture != nil {
		return errors.New("fake: stream is already capturing")
	}
	if f.failCapture > 0 && f.n.captures+1 >= f.failCapture {
		return fmt.Errorf("fake: capture %d refused", f.n.captures+1)
	}
	s.capture = &fakeGraph{}
	f.capturing++
	f.log("begin capture s%d", s.id)
	return nil
}

func (f *asyncBackend) EndCapture(st backend.Stream) (backend.Graph, error) {
	s, err := streamOf(st)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := s.capture
	if g == nil {
		return nil, errors.New("fake: stream is not capturing")
	}
	s.capture = nil
	f.capturing--
	f.n.captures++
	f.log("end capture s%d: %d ops", s.id, len(g.ops))
	if g.bs == 0 {
		return nil, errors.New("fake: the captured step wrote no KV cache")
	}
	return g, nil
}

// errCapture is what the fake says when the host would wait during a capture.
var errCapture = errors.New("fake: not allowed while a stream is capturing (it would synchronize)")

// ---- the device decode loop ----

func (f *asyncBackend) DecodeLoop(st backend.Stream, step backend.Graph, io *backend.DecodeIO, rows []backend.DecodeRow, steps int) ([]int32, backend.Event, error) {
	g, ok := step.(*fakeGraph)
	if !ok || g.ops == nil {
		return nil, nil, fmt.Errorf("fake decode loop: %v is not a live fake graph", step)
	}
	if len(rows) > io.Rows || steps < 1 {
		return nil, nil, fmt.Errorf("fake decode loop: %d rows for a bucket of %d, %d steps", len(rows), io.Rows, steps)
	}
	rs := make([]backend.DecodeRow, len(rows)) // copied at issue, as into pinned staging
	for i, r := range rows {
		if r.Pos < 0 || r.Limit <= r.Pos || len(r.Blocks) > io.MaxBlocks || (int(r.Limit)+g.bs-1)/g.bs > len(r.Blocks) || len(r.Stop) > backend.MaxStopIDs {
			return nil, nil, fmt.Errorf("fake decode loop: row %d: positions %d..%d, %d blocks of %d (table of %d), %d stop ids",
				i, r.Pos, r.Limit, len(r.Blocks), g.bs, io.MaxBlocks, len(r.Stop))
		}
		r.Blocks, r.History, r.Stop = slices.Clone(r.Blocks), slices.Clone(r.History), slices.Clone(r.Stop)
		rs[i] = r
	}
	tokens := make([]int32, steps*io.Rows)
	ids, pos := make([]int32, io.Rows), make([]int32, io.Rows)
	tables := make([]int32, io.Rows*io.MaxBlocks)
	for i := range pos {
		pos[i] = -1
		if i < len(rs) {
			ids[i], pos[i] = rs[i].ID, rs[i].Pos
			copy(tables[i*io.MaxBlocks:], rs[i].Blocks)
		}
	}
	upload := func() error {
		return errors.Join(f.Backend.Upload(io.IDs, backend.Bytes(ids), backend.I32), f.Backend.Upload(io.Pos, backend.Bytes(pos), backend.I32))
	}
	ioBufs := bufsOf(io.IDs, io.Pos, io.Tables, io.Logits)
	if err := f.enqueue(st, &fakeOp{name: "decode-loop upload", bufs: ioBufs, run: func() error {
		return errors.Join(upload(), f.Backend.Upload(io.Tables, backend.Bytes(tables), backend.I32))
	}}, io.IDs.Buf); err != nil {
		return nil, nil, err
	}
	logits := make([]float32, io.Rows*io.Logits.Cols)
	V := io.Logits.Cols
	stepBufs := slices.Clone(ioBufs) // a replay reads what its captured ops read
	for _, op := range g.ops {
		stepBufs = append(stepBufs, op.bufs...)
	}
	for k := 0; k < steps; k++ {
		var reads, writes []int32
		for _, r := range rs {
			p := int(r.Pos) + k
			if p >= int(r.Limit) {
				continue
			}
			reads = append(reads, r.Blocks[:p/g.bs+1]...)
			writes = append(writes, r.Blocks[p/g.bs])
		}
		reads = slices.Compact(slices.Sorted(slices.Values(reads)))
		writes = slices.Compact(slices.Sorted(slices.Values(writes)))
		if err := f.enqueue(st, &fakeOp{name: fmt.Sprintf("decode-loop step %d", k), reads: reads, writes: writes, bufs: stepBufs, run: func() error {
			for _, op := range g.ops {
				if err := op.run(); err != nil {
					return fmt.Errorf("replay %s: %w", op.name, err)
				}
			}
			if err := f.Backend.Download(backend.Bytes(logits), backend.F32, io.Logits); err != nil {
				return err
			}
			for i := range io.Rows {
				tok := int32(backend.TokenEnded)
				if i < len(rs) && pos[i] >= 0 {
					r := &rs[i]
					tok = f.deviceSample(logits[i*V:(i+1)*V], r)
					switch {
					case tok < 0:
						pos[i] = -1
					case slices.Contains(r.Stop, tok) || pos[i]+1 >= r.Limit:
						r.History = append(r.History, tok)
						r.Index++
						pos[i] = -1
					default:
						r.History = append(r.History, tok)
						r.Index++
						ids[i], pos[i] = tok, pos[i]+1
					}
				}
				tokens[k*io.Rows+i] = tok
			}
			return upload()
		}}, io.Logits.Buf); err != nil {
			return nil, nil, err
		}
	}
	f.mu.Lock()
	f.n.loops++
	f.n.loopSteps += steps
	f.mu.Unlock()
	ev, err := f.Record(st)
	return tokens, ev, err
}

// deviceSample samples one row as the device would, or refuses it (f.mu held, from
// an op's run).
func (f *asyncBackend) deviceSample(logits []float32, r *backend.DecodeRow) int32 {
	if f.refuse > 0 && f.rng.Float64() < f.refuse {
		f.n.refused++
		return backend.TokenHost
	}
	p := sampling.Params{Temperature: r.Temperature, TopK: r.TopK, TopP: r.TopP, MinP: r.MinP,
		RepetitionPenalty: r.RepetitionPenalty, PresencePenalty: r.PresencePenalty, FrequencyPenalty: r.FrequencyPenalty, Seed: r.Seed}
	return int32(f.sampler.Sample(logits, &p, r.Index, r.History))
}

var _ backend.DecodeLooper = (*asyncBackend)(nil)
