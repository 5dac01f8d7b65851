package cpu

import (
	"fmt"
	"sync"

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
	sc := scratchPool.Get().(*attnScratch)
	defer scratchPool.Put(sc)
	rowSeq := grow(&sc.rowSeq, q.Rows)
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
	a := attnArgs{o: o, qs: qs, kc: kc, vc: vc, b: b, rowSeq: rowSeq, nkv: nkv, hd: hd, bs: bs,
		group: nh / nkv, cols: q.Cols, maxCtx: maxCtx}
	// One task per (query row, kv head): the group's query heads share each K/V row read.
	tasks := q.Rows * nkv
	if c.chunks(tasks, work) <= 1 {
		a.run(0, tasks)
		return nil
	}
	pa := a
	c.parallel(tasks, work, pa.run)
	return nil
}

type attnArgs struct {
	o, qs, kc, vc            []float32
	b                        *backend.AttnBatch
	rowSeq                   []int32
	nkv, hd, bs, group, cols int
	maxCtx                   int
}

type attnScratch struct {
	rowSeq []int32
	att    []float32
}

var scratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}

// run computes tasks [t0, t1): task t is query row t/nkv, kv head t%nkv.
func (a *attnArgs) run(t0, t1 int) {
	o, qs, kc, vc, b := a.o, a.qs, a.kc, a.vc, a.b
	nkv, hd, bs, group, maxCtx := a.nkv, a.hd, a.bs, a.group, a.maxCtx
	sc := scratchPool.Get().(*attnScratch)
	defer scratchPool.Put(sc)
	att := grow(&sc.att, group*maxCtx)
	scale := b.Scale
	for t := t0; t < t1; t++ {
		row, g := t/nkv, t%nkv
		si := a.rowSeq[row]
		rowOut := o[row*a.cols : (row+1)*a.cols]
		if si < 0 { // a row no sequence claims stays zero
			clear(rowOut[g*group*hd : (g+1)*group*hd])
			continue
		}
		s := &b.Seqs[si]
		ctx := s.Pos + (row - s.Q0) + 1
		rowQ := qs[row*a.cols : (row+1)*a.cols]
		// Scores, head by head and block by block.
		for h := 0; h < group; h++ {
			qh := rowQ[(g*group+h)*hd : (g*group+h+1)*hd]
			w := att[h*maxCtx : h*maxCtx+ctx]
			for p, bi := 0, 0; p < ctx; bi++ {
				base := (int(s.Blocks[bi])*nkv + g) * bs * hd
				n := min(bs, ctx-p)
				scoreRows(w[p:p+n], qh, kc[base:base+n*hd], scale)
				p += n
			}
			// Softmax in ascending position order.
			mx := w[0]
			for _, v := range w[1:] {
				mx = max(mx, v)
			}
			inv := 1 / expShift(w, mx)
			// Weighted values, block by block, normalized once at the end.
			out := rowOut[(g*group+h)*hd : (g*group+h+1)*hd]
			clear(out)
			for p, bi := 0, 0; p < ctx; bi++ {
				base := (int(s.Blocks[bi])*nkv + g) * bs * hd
				n := min(bs, ctx-p)
				weighRows(out, w[p:p+n], vc[base:base+n*hd])
				p += n
			}
			for d := range out {
				out[d] *= inv
			}
		}
	}
}

// smallHead is the head width below which a call into the assembly kernels costs more
// than the arithmetic; such heads (stories260K's are 8 wide) use plain loops. Which
// loop runs depends only on the head width, so results stay batch-invariant.
const smallHead = 32

// scoreRows sets dst[j] = scale·(q·k_j) for the rows k_j of k ([len(dst)][len(q)]).
func scoreRows(dst, q, k []float32, scale float32) {
	hd := len(q)
	switch {
	case hd == 8:
		q0, q1, q2, q3, q4, q5, q6, q7 := q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]
		for j := range dst {
			r := k[j*8 : j*8+8 : j*8+8]
			dst[j] = ((q0*r[0] + q2*r[2]) + (q4*r[4] + q6*r[6]) + ((q1*r[1] + q3*r[3]) + (q5*r[5] + q7*r[7]))) * scale
		}
	case hd >= smallHead:
		for j := range dst {
			dst[j] = kern.Dot(q, k[j*hd:(j+1)*hd]) * scale
		}
	default:
		for j := range dst {
			r := k[j*hd : (j+1)*hd]
			var s0, s1 float32
			i := 0
			for ; i+2 <= hd; i += 2 {
				s0 += q[i] * r[i]
				s1 += q[i+1] * r[i+1]
			}
			for ; i < hd; i++ {
				s0 += q[i] * r[i]
			}
			dst[j] = (s0 + s1) * scale
		}
	}
}

// weighRows adds Σ_j w[j]·v_j to out, rows v_j of v ([len(w)][len(out)]) in order.
func weighRows(out, w, v []float32) {
	hd := len(out)
	switch {
	case hd == 8:
		o0, o1, o2, o3, o4, o5, o6, o7 := out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]
		for j, a := range w {
			r := v[j*8 : j*8+8 : j*8+8]
			o0 += a * r[0]
			o1 += a * r[1]
			o2 += a * r[2]
			o3 += a * r[3]
			o4 += a * r[4]
			o5 += a * r[5]
			o6 += a * r[6]
			o7 += a * r[7]
		}
		out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7] = o0, o1, o2, o3, o4, o5, o6, o7
	case hd >= smallHead:
		for j, a := range w {
			kern.Axpy(out, a, v[j*hd:(j+1)*hd])
		}
	default:
		for j, a := range w {
			r := v[j*hd : (j+1)*hd]
			for d := range out {
				out[d] += a * r[d]
			}
		}
	}
}
