package cpu

import (
	"fmt"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
)

var _ backend.IndexedOps = (*Backend)(nil)

// The indexed ops read their index tensors in place and hand the rows they compute to
// the host-slice ops (a contiguous run of valid rows at a time, or one attention
// sequence per row), so a row's result is bit-identical to the host-slice op's; rows
// the semantics of backend.IndexedOps exclude are zeroed or skipped here.

// i32s returns the elements of a CPU i32 tensor that must be [rows][cols] (cols < 0:
// any width).
func i32s(op, name string, t backend.Tensor, rows, cols int) ([]int32, error) {
	b, ok := t.Buf.(*buf)
	if !ok || b == nil {
		return nil, fmt.Errorf("%s: %s %s is not a CPU tensor", op, name, t)
	}
	if t.DType != backend.I32 || b.i32 == nil || t.Rows != rows || (cols >= 0 && t.Cols != cols) || t.Cols < 0 {
		want := fmt.Sprintf("i32[%d][%d]", rows, cols)
		if cols < 0 {
			want = fmt.Sprintf("i32[%d][*]", rows)
		}
		return nil, backend.ShapeError(op, "%s %s, want %s", name, t, want)
	}
	if t.Off < 0 || t.Off+t.Len() > len(b.i32) {
		return nil, backend.ShapeError(op, "%s %s at %d outside its buffer of %d", name, t, t.Off, len(b.i32))
	}
	return b.i32[t.Off : t.Off+t.Len()], nil
}

// EmbedAt writes table row ids[i] into out row i, or zeros where ids[i] is outside
// [0, vocab). ids [1][n] i32; out [n][dim].
func (c *Backend) EmbedAt(s backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	const op = "embed at"
	o, err := f32s(op, out)
	if err != nil {
		return err
	}
	if out.Cols != table.In {
		return backend.ShapeError(op, "out %s for a table of width %d", out, table.In)
	}
	id, err := i32s(op, "ids", ids, 1, out.Rows)
	if err != nil {
		return err
	}
	if quantFormats[table.W.DType] != nil {
		if _, _, err := quantRows(op, table); err != nil {
			return err
		}
	} else if blockFormats[table.W.DType] != nil {
		if _, _, err := blockRows(op, table); err != nil {
			return err
		}
	} else if _, _, _, err := weightRows(op, table); err != nil {
		return err
	}
	valid := func(i int) bool { return id[i] >= 0 && int(id[i]) < table.Out }
	d := out.Cols
	for lo := 0; lo < len(id); {
		if !valid(lo) {
			clear(o[lo*d : (lo+1)*d])
			lo++
			continue
		}
		hi := lo + 1
		for hi < len(id) && valid(hi) {
			hi++
		}
		if err := c.Embed(s, out.SliceRows(lo, hi), table, id[lo:hi]); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// RoPEAt rotates row i of x to position pos[i]; rows with pos[i] < 0 stay as they are.
// pos [1][n] i32; x [n][heads*HeadDim].
func (c *Backend) RoPEAt(s backend.Stream, x backend.Tensor, pos backend.Tensor, r *backend.RoPE) error {
	const op = "rope at"
	if _, err := f32s(op, x); err != nil {
		return err
	}
	hd := r.HeadDim
	if hd <= 0 || hd%2 != 0 || x.Cols%hd != 0 || len(r.InvFreq) != hd/2 {
		return backend.ShapeError(op, "x %s, head dim %d, %d frequencies", x, hd, len(r.InvFreq))
	}
	p, err := i32s(op, "pos", pos, 1, x.Rows)
	if err != nil {
		return err
	}
	for lo := 0; lo < len(p); {
		if p[lo] < 0 {
			lo++
			continue
		}
		hi := lo + 1
		for hi < len(p) && p[hi] >= 0 {
			hi++
		}
		if err := c.RoPE(s, x.SliceRows(lo, hi), p[lo:hi], r); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// WriteKVAt stores k, v row i at position pos[i] of the sequence whose block table is
// tables row i, skipping idle rows and rows whose table entry is out of range.
// pos [1][n] i32; tables [n][maxBlocks] i32; k, v [n][kvHeads*headDim].
func (c *Backend) WriteKVAt(s backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, pos, tables backend.Tensor) error {
	const op = "write kv at"
	if layer < 0 || layer >= kv.Layers || layer >= len(kv.K) || layer >= len(kv.V) {
		return fmt.Errorf("%s: layer %d of %d", op, layer, kv.Layers)
	}
	for _, t := range [...]backend.Tensor{k, v, kv.K[layer], kv.V[layer]} {
		if _, err := f32s(op, t); err != nil {
			return err
		}
	}
	n, hd, nkv, bs := k.Rows, kv.HeadDim, kv.KVHeads, kv.BlockSize
	if bs <= 0 || k.Cols != nkv*hd || v.Cols != nkv*hd || v.Rows != n {
		return backend.ShapeError(op, "k %s, v %s, kv heads %d × head dim %d, block size %d", k, v, nkv, hd, bs)
	}
	p, tb, w, err := posTables(op, pos, tables, n)
	if err != nil {
		return err
	}
	var stack [64]int32
	slots := stack[:0]
	if n > len(stack) {
		slots = make([]int32, 0, n)
	}
	for i, pi := range p {
		slot := int32(-1)
		if pi >= 0 && int(pi)/bs < w {
			if blk := tb[i*w+int(pi)/bs]; blk >= 0 && int(blk) < kv.Blocks {
				slot = int32(int(blk)*bs + int(pi)%bs)
			}
		}
		slots = append(slots, slot)
	}
	for lo := 0; lo < n; {
		if slots[lo] < 0 {
			lo++
			continue
		}
		hi := lo + 1
		for hi < n && slots[hi] >= 0 {
			hi++
		}
		if err := c.WriteKV(s, kv, layer, k.SliceRows(lo, hi), v.SliceRows(lo, hi), slots[lo:hi]); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// posTables reads the positions [1][n] and block tables [n][w] of an indexed op.
func posTables(op string, pos, tables backend.Tensor, n int) (p, tb []int32, w int, err error) {
	if p, err = i32s(op, "pos", pos, 1, n); err != nil {
		return nil, nil, 0, err
	}
	if tb, err = i32s(op, "tables", tables, n, -1); err != nil {
		return nil, nil, 0, err
	}
	return p, tb, tables.Cols, nil
}

// atScratch is AttentionAt's per-call batch, pooled: ops may run concurrently.
type atScratch struct {
	batch backend.AttnBatch
	seqs  []backend.AttnSeq
}

var atPool = sync.Pool{New: func() any { return new(atScratch) }}

// AttentionAt is Attention for one decode token per row: row i attends to positions
// 0..pos[i] through tables row i. Idle rows, rows whose context exceeds maxCtx or the
// table, and rows with a block entry out of range within their context are zero.
// pos [1][n] i32; tables [n][maxBlocks] i32; out, q [n][heads*headDim].
func (c *Backend) AttentionAt(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, pos, tables backend.Tensor, b *backend.AttnBatch, maxCtx int) error {
	const op = "attention at"
	n, bs := q.Rows, kv.BlockSize
	if b == nil || maxCtx <= 0 || bs <= 0 {
		return backend.ShapeError(op, "max context %d, block size %d, batch %v", maxCtx, bs, b != nil)
	}
	p, tb, w, err := posTables(op, pos, tables, n)
	if err != nil {
		return err
	}
	sc := atPool.Get().(*atScratch)
	defer atPool.Put(sc)
	seqs := sc.seqs[:0]
rows:
	for i, pi := range p {
		ctx := int(pi) + 1
		if pi < 0 || ctx > maxCtx || (ctx+bs-1)/bs > w {
			continue
		}
		row := tb[i*w : (i+1)*w]
		for _, blk := range row[:(ctx+bs-1)/bs] {
			if blk < 0 || int(blk) >= kv.Blocks {
				continue rows
			}
		}
		seqs = append(seqs, backend.AttnSeq{Q0: i, NQ: 1, Pos: int(pi), Blocks: row})
	}
	sc.batch = *b
	sc.batch.Seqs = seqs
	err = c.Attention(s, out, q, kv, layer, &sc.batch)
	clear(seqs) // drop the references to tables before pooling
	sc.seqs, sc.batch = seqs[:0], backend.AttnBatch{}
	return err
}
