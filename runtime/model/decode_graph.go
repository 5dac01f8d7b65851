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

// NewDecodeIO allocates a bucket's fixed inputs on the model's backend: ids, positions
// and block tables of rows sequences of up to maxCtx positions, and a logits view of
// ws (which must have at least rows logit rows). The buffers start idle (pos = -1).
func (m *Model) NewDecodeIO(ws *Workspace, kv *backend.KVCache, rows, maxCtx int) (*backend.DecodeIO, error) {
	switch {
	case rows <= 0 || rows > ws.MaxTokens || rows > ws.MaxLogitRows:
		return nil, fmt.Errorf("decode step: %d rows for a workspace of %d tokens and %d logit rows", rows, ws.MaxTokens, ws.MaxLogitRows)
	case maxCtx <= 0 || maxCtx > m.Config.MaxSeqLen:
		return nil, fmt.Errorf("decode step: context %d outside the model's 1..%d", maxCtx, m.Config.MaxSeqLen)
	}
	io := &backend.DecodeIO{Rows: rows, MaxBlocks: (maxCtx + kv.BlockSize - 1) / kv.BlockSize}
	var err error
	for _, a := range []struct {
		t          *backend.Tensor
		rows, cols int
	}{{&io.IDs, 1, rows}, {&io.Pos, 1, rows}, {&io.Tables, rows, io.MaxBlocks}} {
		if *a.t, err = m.be.Alloc(backend.I32, a.rows, a.cols); err != nil {
			return nil, fmt.Errorf("decode step: %w", err)
		}
	}
	idle := make([]int32, rows)
	for i := range idle {
		idle[i] = -1
	}
	if err := m.be.Upload(io.Pos, i32Bytes(idle)); err != nil {
		return nil, fmt.Errorf("decode step: %w", err)
	}
	clear(idle)
	if err := m.be.Upload(io.IDs, i32Bytes(idle)); err != nil {
		return nil, fmt.Errorf("decode step: %w", err)
	}
	if err := m.be.Upload(io.Tables, i32Bytes(make([]int32, rows*io.MaxBlocks))); err != nil {
		return nil, fmt.Errorf("decode step: %w", err)
	}
	io.Logits = ws.logits.SliceRows(0, rows)
	return io, nil
}

// DecodeStepAt issues, on ws's stream, one decode step over io: row i computes the
// token io.IDs[i] at position io.Pos[i] through block table row i, writing its K/V and
// its logits to io.Logits row i; idle rows (pos < 0) write nothing to the cache. It is
// the step CaptureDecode records, issued eagerly; for the rows it computes it gives
// the logits Forward gives for the same one-token sequences. The backend must
// implement backend.IndexedOps.
func (m *Model) DecodeStepAt(ws *Workspace, kv *backend.KVCache, io *backend.DecodeIO, maxCtx int) error {
	ix, ok := m.be.(backend.IndexedOps)
	if !ok {
		return fmt.Errorf("decode step: the %s backend has no indexed ops", m.be.Name())
	}
	n := io.Rows
	if n > ws.MaxTokens || n > ws.MaxLogitRows || io.Logits.Rows != n {
		return fmt.Errorf("decode step: %d rows (logits %s) for a workspace of %d tokens and %d logit rows", n, io.Logits, ws.MaxTokens, ws.MaxLogitRows)
	}
	st := ws.stream
	o := m.issuer(ws, "decode step", indexed{
		rope:  func(x backend.Tensor) error { return ix.RoPEAt(st, x, io.Pos, &m.rope) },
		write: func(l int, k, v backend.Tensor) error { return ix.WriteKVAt(st, kv, l, k, v, io.Pos, io.Tables) },
		attend: func(l int, out, q backend.Tensor) error {
			return ix.AttentionAt(st, out, q, kv, l, io.Pos, io.Tables, &ws.attn, maxCtx)
		},
	})
	x, xl := ws.x.SliceRows(0, n), ws.xl.SliceRows(0, n)
	if o.err == nil {
		o.check("embed", ix.EmbedAt(st, x, m.embed, io.IDs))
	}
	m.layerStack(o, ws, n)
	o.rmsNorm("output norm", xl, x, m.outNorm)
	o.matmul("classifier", io.Logits, xl, m.output, backend.Epilogue{})
	return o.err
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
	io, err := m.NewDecodeIO(ws, kv, rows, maxCtx)
	if err != nil {
		return nil, err
	}
	if err := m.DecodeStepAt(ws, kv, io, maxCtx); err != nil {
		return nil, fmt.Errorf("decode graph: warm-up: %w", err)
	}
	if err := m.be.Sync(ws.stream); err != nil {
		return nil, fmt.Errorf("decode graph: warm-up: %w", err)
	}
	if err := gc.BeginCapture(ws.stream); err != nil {
		return nil, fmt.Errorf("decode graph: %w", err)
	}
	stepErr := m.DecodeStepAt(ws, kv, io, maxCtx)
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
