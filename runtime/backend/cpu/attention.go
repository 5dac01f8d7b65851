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
	// One task per (query row, kv head): the group's query heads share each K/V row read.
	c.parallel(q.Rows*nkv, work, func(t0, t1 int) {
		att := make([]float32, group*maxCtx)
		for t := t0; t < t1; t++ {
			row, g := t/nkv, t%nkv
			si := rowSeq[row]
			rowOut := o[row*q.Cols : (row+1)*q.Cols]
			if si < 0 { // a row no sequence claims stays zero
				clear(rowOut[g*group*hd : (g+1)*group*hd])
				continue
			}
			s := &b.Seqs[si]
			ctx := s.Pos + (row - s.Q0) + 1
			rowQ := qs[row*q.Cols : (row+1)*q.Cols]
			// Scores, block by block.
			for p, bi := 0, 0; p < ctx; bi++ {
				base := (int(s.Blocks[bi])*nkv + g) * bs * hd
				n := min(bs, ctx-p)
				for j := 0; j < n; j++ {
					krow := kc[base+j*hd : base+(j+1)*hd]
					for h := 0; h < group; h++ {
						qh := rowQ[(g*group+h)*hd : (g*group+h+1)*hd]
						att[h*maxCtx+p+j] = kern.Dot(qh, krow) * scale
					}
				}
				p += n
			}
			// Softmax per head, in ascending position order.
			for h := 0; h < group; h++ {
				a := att[h*maxCtx : h*maxCtx+ctx]
				mx := a[0]
				for _, v := range a[1:] {
					mx = max(mx, v)
				}
				var sum float32
				for p, v := range a {
					e := expf(v - mx)
					a[p] = e
					sum += e
				}
				inv := 1 / sum
				for p := range a {
					a[p] *= inv
				}
				clear(rowOut[(g*group+h)*hd : (g*group+h+1)*hd])
			}
			// Weighted values, block by block.
			for p, bi := 0, 0; p < ctx; bi++ {
				base := (int(s.Blocks[bi])*nkv + g) * bs * hd
				n := min(bs, ctx-p)
				for j := 0; j < n; j++ {
					vrow := vc[base+j*hd : base+(j+1)*hd]
					for h := 0; h < group; h++ {
						kern.Axpy(rowOut[(g*group+h)*hd:(g*group+h+1)*hd], att[h*maxCtx+p+j], vrow)
					}
				}
				p += n
			}
		}
	})
	return nil
}
