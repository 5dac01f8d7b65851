package cpu

import (
	"fmt"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// Attention is causal paged attention: every query row attends to its sequence's
// positions 0..pos through the block table, one head at a time, scores and weighted
// values summed in ascending position order. Consecutive rows of one sequence at
// consecutive positions (a prefill chunk) share each key read, up to rowBlock at a
// time; a row's result does not depend on that grouping.
func (c *Backend) Attention(_ backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, at *backend.KVIndex, h *backend.AttnHeads) error {
	o, err := f32s("attention", out)
	if err != nil {
		return err
	}
	qs, err := f32s("attention", q)
	if err != nil {
		return err
	}
	if layer < 0 || layer >= kv.Layers || layer >= len(kv.K) || layer >= len(kv.V) {
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
	nh, nkv, hd, bs := h.Heads, h.KVHeads, h.HeadDim, kv.BlockSize
	if nkv != kv.KVHeads || hd != kv.HeadDim || nkv <= 0 || bs <= 0 || nh%nkv != 0 || q.Cols != nh*hd || out.Cols != q.Cols || out.Rows != q.Rows {
		return backend.ShapeError("attention", "out %s, q %s, heads %d, kv heads %d (cache %d), head dim %d (cache %d)", out, q, nh, nkv, kv.KVHeads, hd, kv.HeadDim)
	}
	x, err := readIndex("attention", at, q.Rows)
	if err != nil {
		return err
	}
	if at.MaxCtx <= 0 {
		return backend.ShapeError("attention", "max context %d", at.MaxCtx)
	}
	sc := scratchPool.Get().(*attnScratch)
	defer scratchPool.Put(sc)
	spans := sc.spans[:0]
	maxCtx, work := 0, 0
	for r := range q.Rows {
		t, ctx := x.table(r), int(x.pos[r])+1
		if !attends(t, ctx, at.MaxCtx, bs, kv.Blocks) {
			clear(o[r*q.Cols : (r+1)*q.Cols])
			continue
		}
		if n := len(spans); n > 0 {
			if sp := &spans[n-1]; sp.n < rowBlock && int(sp.row+sp.n) == r && x.seq[sp.row] == x.seq[r] && int(sp.ctx+sp.n) == ctx {
				sp.n++
				maxCtx, work = max(maxCtx, ctx), work+ctx*nh*hd*2
				continue
			}
		}
		spans = append(spans, rowSpan{row: int32(r), n: 1, ctx: int32(ctx), blocks: t})
		maxCtx, work = max(maxCtx, ctx), work+ctx*nh*hd*2
	}
	a := attnArgs{o: o, qs: qs, kc: kc, vc: vc, spans: spans, nkv: nkv, hd: hd, bs: bs,
		group: nh / nkv, cols: q.Cols, maxCtx: maxCtx, scale: h.Scale}
	// One task per (span of up to 4 query rows, kv head): the rows share each K row
	// read, and so do the group's query heads.
	tasks := len(spans) * nkv
	if c.chunks(tasks, work) <= 1 {
		a.run(0, tasks)
	} else {
		pa := a
		c.parallel(tasks, 1, work, pa.run)
	}
	clear(spans) // drop the references to the tables before pooling
	sc.spans = spans[:0]
	return nil
}

// attends reports whether a row with block table t and context ctx (its position+1)
// is computed: a valid table, 1 <= ctx <= maxCtx, and every entry it reads in the cache.
func attends(t []int32, ctx, maxCtx, bs, blocks int) bool {
	nb := (ctx + bs - 1) / bs
	if t == nil || ctx < 1 || ctx > maxCtx || nb > len(t) {
		return false
	}
	for _, blk := range t[:nb] {
		if blk < 0 || int(blk) >= blocks {
			return false
		}
	}
	return true
}

type attnArgs struct {
	o, qs, kc, vc            []float32
	spans                    []rowSpan
	nkv, hd, bs, group, cols int
	maxCtx                   int
	scale                    float32
}

// rowBlock is how many query rows of one sequence share a pass over its keys.
const rowBlock = 4

// rowSpan is n (up to rowBlock) consecutive query rows from row, of one sequence at
// consecutive positions: the first row's context is ctx, blocks is their table.
type rowSpan struct {
	row, n, ctx int32
	blocks      []int32
}

type attnScratch struct {
	spans []rowSpan
	att   []float32
}

var scratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}

// run computes tasks [t0, t1): task t is row span t/nkv, kv head t%nkv. Each row's
// scores are the same float operations whether it is scored alone or in a span of
// four (kern.Dot4 is bit-identical to kern.Dot), so spans never change results.
func (a *attnArgs) run(t0, t1 int) {
	o, qs, kc, vc := a.o, a.qs, a.kc, a.vc
	nkv, hd, bs, group, maxCtx, cols := a.nkv, a.hd, a.bs, a.group, a.maxCtx, a.cols
	sc := scratchPool.Get().(*attnScratch)
	defer scratchPool.Put(sc)
	att := grow(&sc.att, rowBlock*maxCtx)
	scale := a.scale
	var r4 [4]float32
	for t := t0; t < t1; t++ {
		sp, g := &a.spans[t/nkv], t%nkv
		blocks := sp.blocks
		row0, nr := int(sp.row), int(sp.n)
		ctx0 := int(sp.ctx)   // context of the span's first row
		ctxN := ctx0 + nr - 1 // ... and of its last
		for h := g * group; h < (g+1)*group; h++ {
			hoff := h * hd
			// Scores: row r sees positions < ctx0+r.
			for p, bi := 0, 0; p < ctxN; bi++ {
				base := (int(blocks[bi])*nkv + g) * bs * hd
				n := min(bs, ctxN-p)
				if nr == rowBlock && hd >= smallHead {
					for j := 0; j < n; j++ {
						pos := p + j
						krow := kc[base+j*hd : base+(j+1)*hd]
						if pos < ctx0 {
							kern.Dot4(&r4, qs[row0*cols+hoff:], cols, hd, krow)
							for r := 0; r < rowBlock; r++ {
								att[r*maxCtx+pos] = r4[r] * scale
							}
							continue
						}
						for r := pos - ctx0 + 1; r < nr; r++ {
							att[r*maxCtx+pos] = kern.Dot(qs[(row0+r)*cols+hoff:(row0+r)*cols+hoff+hd], krow) * scale
						}
					}
				} else {
					for r := 0; r < nr; r++ {
						if m := min(n, ctx0+r-p); m > 0 {
							q := qs[(row0+r)*cols+hoff : (row0+r)*cols+hoff+hd]
							scoreRows(att[r*maxCtx+p:r*maxCtx+p+m], q, kc[base:base+m*hd], scale)
						}
					}
				}
				p += n
			}
			for r := 0; r < nr; r++ {
				ctx := ctx0 + r
				w := att[r*maxCtx : r*maxCtx+ctx]
				// Softmax in ascending position order.
				mx := kern.Max(w) // scores are finite: no NaN handling needed
				inv := 1 / kern.ExpShift(w, mx)
				// Weighted values, block by block, normalized once at the end.
				out := o[(row0+r)*cols+hoff : (row0+r)*cols+hoff+hd]
				clear(out)
				for p, bi := 0, 0; p < ctx; bi++ {
					base := (int(blocks[bi])*nkv + g) * bs * hd
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
		kern.Scores8(dst, q, k, scale)
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
		kern.Weigh8(out, w, v)
	case hd >= smallHead:
		kern.WeighRows(out, w, v[:len(w)*hd])
	default:
		for j, a := range w {
			r := v[j*hd : (j+1)*hd]
			for d := range out {
				out[d] += a * r[d]
			}
		}
	}
}
