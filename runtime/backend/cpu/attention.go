package cpu

import (
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// Attention is causal paged attention for a mixed batch: every query row attends to its
// sequence's positions 0..pos through the block table, one head at a time, scores and
// weighted values summed in ascending position order.
func (c *Backend) Attention(_ backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, b *backend.AttnBatch) error {
	o, err := f32s("attention", out)
	if err != nil {
		return err
	}
	qs, err := f32s("attention", q)
	if err != nil {
		return err
	}
	if layer < 0 || layer >= kv.Layers {
		return fmt.Errorf("attention: layer %d of %d", layer, kv.Layers)
	}
	kc, err := f32s("attention", kv.K[layer])
	if err != nil {
		return err
	}
	vc, err := f32s("attention", kv.V[layer])
	if err != nil {
		return err
	}
	nh, nkv, hd, bs := b.Heads, b.KVHeads, b.HeadDim, kv.BlockSize
	if nkv != kv.KVHeads || hd != kv.HeadDim || nkv <= 0 || nh%nkv != 0 || q.Cols != nh*hd || out.Cols != q.Cols || out.Rows != q.Rows {
		return backend.ShapeError("attention", "out %s, q %s, heads %d, kv heads %d (cache %d), head dim %d (cache %d)", out, q, nh, nkv, kv.KVHeads, hd, kv.HeadDim)
	}
	// rowSeq maps each query row to its sequence; validate the batch up front.
	rowSeq := make([]int32, q.Rows)
	for i := range rowSeq {
		rowSeq[i] = -1
	}
	maxCtx, work := 0, 0
	for si, s := range b.Seqs {
		ctx := s.Pos + s.NQ
		if s.Q0 < 0 || s.NQ < 0 || s.Q0+s.NQ > q.Rows || s.Pos < 0 || (ctx+bs-1)/bs > len(s.Blocks) {
			return fmt.Errorf("attention: sequence %d (rows %d+%d at position %d, %d blocks) does not fit %d rows", si, s.Q0, s.NQ, s.Pos, len(s.Blocks), q.Rows)
		}
		for _, blk := range s.Blocks[:(ctx+bs-1)/bs] {
			if blk < 0 || int(blk) >= kv.Blocks {
				return fmt.Errorf("attention: sequence %d: block %d outside the cache of %d", si, blk, kv.Blocks)
			}
		}
		for r := s.Q0; r < s.Q0+s.NQ; r++ {
			if rowSeq[r] >= 0 {
				return fmt.Errorf("attention: query row %d belongs to two sequences", r)
			}
			rowSeq[r] = int32(si)
		}
		maxCtx = max(maxCtx, ctx)
		work += s.NQ * ctx * nh * hd * 2
	}
	group := nh / nkv
	scale := b.Scale
	c.parallel(q.Rows*nh, work, func(t0, t1 int) {
		att := make([]float32, maxCtx)
		for t := t0; t < t1; t++ {
			row, h := t/nh, t%nh
			si := rowSeq[row]
			dst := o[row*q.Cols+h*hd : row*q.Cols+(h+1)*hd]
			if si < 0 { // a row no sequence claims stays zero
				clear(dst)
				continue
			}
			s := &b.Seqs[si]
			ctx := s.Pos + (row - s.Q0) + 1
			g := h / group
			qh := qs[row*q.Cols+h*hd : row*q.Cols+(h+1)*hd]
			mx := float32(-3.4e38)
			for p := 0; p < ctx; p++ {
				off := ((int(s.Blocks[p/bs])*nkv+g)*bs + p%bs) * hd
				v := kern.Dot(qh, kc[off:off+hd]) * scale
				att[p] = v
				mx = max(mx, v)
			}
			var sum float32
			for p := 0; p < ctx; p++ {
				e := expf(att[p] - mx)
				att[p] = e
				sum += e
			}
			inv := 1 / sum
			clear(dst)
			for p := 0; p < ctx; p++ {
				a := att[p] * inv
				off := ((int(s.Blocks[p/bs])*nkv+g)*bs + p%bs) * hd
				for d, v := range vc[off : off+hd] {
					dst[d] += a * v
				}
			}
		}
	})
	return nil
}
