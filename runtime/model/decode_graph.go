package model

import (
	"errors"
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// DecodeGraph is a decode step of a fixed batch-size bucket captured once as a graph:
// every input that varies per step lives in IO's device buffers, every launch is sized
// for Rows sequences of up to MaxCtx positions. Replay it through a
// backend.DecodeLooper.
type DecodeGraph struct {
	IO     backend.DecodeIO
	MaxCtx int
	Graph  backend.Graph
	be     backend.Backend
}

// NewDecodeIO allocates a bucket's fixed inputs on the model's backend: ids, positions,
// sequence numbers (0..rows-1, written once) and block tables of rows sequences of up
// to maxCtx positions, and a logits view of ws (which must have at least rows logit
// rows). The rows start idle (pos = -1).
func (m *Model) NewDecodeIO(ws *Workspace, kv *backend.KVCache, rows, maxCtx int) (*backend.DecodeIO, error) {
	switch {
	case rows <= 0 || rows > ws.MaxTokens || rows > ws.MaxLogitRows:
		return nil, fmt.Errorf("decode step: %d rows for a workspace of %d tokens and %d logit rows", rows, ws.MaxTokens, ws.MaxLogitRows)
	case maxCtx <= 0 || maxCtx > m.Config.MaxSeqLen:
		return nil, fmt.Errorf("decode step: context %d outside the model's 1..%d", maxCtx, m.Config.MaxSeqLen)
	}
	io := &backend.DecodeIO{Rows: rows, MaxBlocks: (maxCtx + kv.BlockSize - 1) / kv.BlockSize}
	idle, seq := make([]int32, rows), make([]int32, rows)
	for i := range idle {
		idle[i], seq[i] = -1, int32(i)
	}
	for _, a := range []struct {
		t          *backend.Tensor
		rows, cols int
		data       []int32
	}{
		{&io.IDs, 1, rows, make([]int32, rows)}, {&io.Pos, 1, rows, idle}, {&io.Seq, 1, rows, seq},
		{&io.Tables, rows, io.MaxBlocks, make([]int32, rows*io.MaxBlocks)},
	} {
		var err error
		if *a.t, err = m.be.Alloc(backend.I32, a.rows, a.cols); err != nil {
			return nil, fmt.Errorf("decode step: %w", err)
		}
		if err := m.be.Upload(*a.t, backend.Bytes(a.data), backend.I32); err != nil {
			return nil, fmt.Errorf("decode step: %w", err)
		}
	}
	io.Logits = ws.logits.SliceRows(0, rows)
	return io, nil
}

// DecodeStep issues, on ws's stream, one decode step over io: Forward's pass over
// inputs that live in io's fixed buffers. Row i computes the token io.IDs[i] at
// position io.Pos[i] through block table row i, writing its K/V and its logits to
// io.Logits row i; idle rows (pos < 0) write nothing to the cache. It is the step
// CaptureDecode records, issued eagerly; for the rows it computes it gives the logits
// Forward gives for the same one-token sequences.
func (m *Model) DecodeStep(ws *Workspace, kv *backend.KVCache, io *backend.DecodeIO, maxCtx int) error {
	if io.Logits.Rows != io.Rows {
		return fmt.Errorf("decode step: logits %s for %d rows", io.Logits, io.Rows)
	}
	// io.Seq, 0..Rows-1, doubles as the rows whose logits are kept: all of them.
	info := PassInfo{Kind: "decode step", Phase: PhaseDecode, Tokens: io.Rows, Seqs: io.Rows, LogitRows: io.Rows}
	return m.pass(ws, kv, &Batch{IDs: io.IDs, KV: io.Index(maxCtx), Rows: io.Seq}, io.Logits, info)
}

// CaptureDecode records the decode step of a bucket of rows sequences (contexts up to
// maxCtx) on ws's stream as a graph. It first issues the step once with every row idle
// and waits for it, so that any scratch the backend grows on first use exists before
// the capture (growing synchronizes, which a capture refuses). ws and kv must outlive
// the graph: it reads and writes their buffers at every replay, and the workspace may
// run other passes between replays on the same stream.
func (m *Model) CaptureDecode(ws *Workspace, kv *backend.KVCache, rows, maxCtx int) (*DecodeGraph, error) {
	gc, ok := m.be.(backend.GraphCapturer)
	if !ok {
		return nil, fmt.Errorf("decode graph: the %s backend does not capture graphs", m.be.Name())
	}
	// Neither the warm-up nor the capture is traced: a replay runs no host code, and a
	// tracer's device events would become nodes of the graph.
	defer ws.SetTracer(ws.tracer)
	ws.tracer = nil
	io, err := m.NewDecodeIO(ws, kv, rows, maxCtx)
	if err != nil {
		return nil, err
	}
	if err := m.DecodeStep(ws, kv, io, maxCtx); err != nil {
		return nil, fmt.Errorf("decode graph: warm-up: %w", err)
	}
	if err := m.be.Sync(ws.stream); err != nil {
		return nil, fmt.Errorf("decode graph: warm-up: %w", err)
	}
	if err := gc.BeginCapture(ws.stream); err != nil {
		return nil, fmt.Errorf("decode graph: %w", err)
	}
	stepErr := m.DecodeStep(ws, kv, io, maxCtx)
	g, endErr := gc.EndCapture(ws.stream) // always end: the stream must leave capture mode
	if stepErr != nil || endErr != nil {
		if g != nil {
			endErr = errors.Join(endErr, g.Destroy())
		}
		return nil, fmt.Errorf("decode graph of %d rows: %w", rows, errors.Join(stepErr, endErr))
	}
	return &DecodeGraph{IO: *io, MaxCtx: maxCtx, Graph: g, be: m.be}, nil
}

// Destroy frees the graph; it must not be running.
func (g *DecodeGraph) Destroy() error { return g.Graph.Destroy() }
