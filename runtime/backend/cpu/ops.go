package cpu

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

func f32s(op string, t backend.Tensor) ([]float32, error) {
	b, ok := t.Buf.(*buf)
	if !ok || t.DType != backend.F32 || b.f32 == nil {
		return nil, fmt.Errorf("%s: operand %s is not a CPU f32 tensor", op, t)
	}
	return b.f32[t.Off : t.Off+t.Rows*t.Cols], nil
}

// weightRows returns the weight's storage: f32 rows, or int8 rows and scales.
func weightRows(op string, w *backend.Weight) (f []float32, q []int8, scales []float32, err error) {
	if w.Kind != backend.Dense {
		return nil, nil, nil, fmt.Errorf("%s: weight %q is %s, not dense", op, w.Name, w.Kind)
	}
	b, ok := w.W.Buf.(*buf)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s: weight %q is not on the CPU", op, w.Name)
	}
	n := w.Out * w.In
	switch w.W.DType {
	case backend.F32:
		return b.f32[w.W.Off : w.W.Off+n], nil, nil, nil
	case backend.I8:
		s, err := f32s(op, w.Scales)
		if err != nil {
			return nil, nil, nil, err
		}
		return nil, b.i8[w.W.Off : w.W.Off+n], s, nil
	}
	return nil, nil, nil, fmt.Errorf("%s: weight %q has dtype %s; the CPU backend takes f32 or i8", op, w.Name, w.W.DType)
}

// transposed returns the transposed copy LoadWeight keeps of a small f32 matrix, or nil.
func transposed(w *backend.Weight) []float32 {
	if b, ok := w.W.Buf.(*buf); ok && w.W.Off == 0 && len(b.t) == w.Out*w.In {
		return b.t
	}
	return nil
}

func (c *Backend) Embed(_ backend.Stream, out backend.Tensor, table *backend.Weight, ids []int32) error {
	o, err := f32s("embed", out)
	if err != nil {
		return err
	}
	if out.Rows != len(ids) || out.Cols != table.In {
		return backend.ShapeError("embed", "out %s for %d ids of width %d", out, len(ids), table.In)
	}
	if quantFormats[table.W.DType] != nil {
		return embedQuant(o, table, ids)
	}
	if blockFormats[table.W.DType] != nil {
		return embedBlocks(o, table, ids)
	}
	f, q, sc, err := weightRows("embed", table)
	if err != nil {
		return err
	}
	d := table.In
	for i, id := range ids {
		if id < 0 || int(id) >= table.Out {
			return fmt.Errorf("embed: token id %d outside the vocabulary [0, %d)", id, table.Out)
		}
		dst := o[i*d : (i+1)*d]
		if f != nil {
			copy(dst, f[int(id)*d:])
			continue
		}
		s := sc[id]
		for k, v := range q[int(id)*d : int(id+1)*d] {
			dst[k] = float32(v) * s
		}
	}
	return nil
}

// RMSNorm computes each row as llama.cpp's CPU backend does, step for step: the
// squares rounded to float32 and summed in float64 in order, the mean rounded to
// float32, scale = 1/sqrt(mean+eps) in float32, out = w·(x·scale). The same bits as
// llama.cpp matter downstream: a quantized-activation matmul rounds to a grid, and an
// activation on a rounding tie goes the way its last bit says (see
// model.TestGGUFNative).
func (c *Backend) RMSNorm(_ backend.Stream, out, x, w backend.Tensor, eps float32) error {
	o, err := f32s("rmsnorm", out)
	if err != nil {
		return err
	}
	xs, err := f32s("rmsnorm", x)
	if err != nil {
		return err
	}
	ws, err := f32s("rmsnorm", w)
	if err != nil {
		return err
	}
	d := x.Cols
	if out.Rows != x.Rows || out.Cols != d || len(ws) != d {
		return backend.ShapeError("rmsnorm", "out %s, x %s, w %s", out, x, w)
	}
	for i := 0; i < x.Rows; i++ {
		row := xs[i*d : (i+1)*d]
		var sum float64
		for _, v := range row {
			sum += float64(float32(v * v))
		}
		mean := float32(sum / float64(d))
		inv := 1 / float32(math.Sqrt(float64(mean+eps)))
		dst := o[i*d : (i+1)*d]
		for k, v := range row {
			dst[k] = ws[k] * (inv * v)
		}
	}
	return nil
}

// matmulRowBlock is how many activation rows share one pass over a weight row block,
// keeping those rows in cache while the weights stream past.
const matmulRowBlock = 64

func (c *Backend) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	o, err := f32s("matmul", out)
	if err != nil {
		return err
	}
	xs, err := f32s("matmul", x)
	if err != nil {
		return err
	}
	if x.Cols != w.In || out.Cols != w.Out || out.Rows != x.Rows {
		return backend.ShapeError("matmul", "out %s = x %s · %q[%d][%d]ᵀ", out, x, w.Name, w.Out, w.In)
	}
	if w.Kind != backend.Dense {
		return c.matmulKind(s, out, x, o, xs, w, epi)
	}
	if quantFormats[w.W.DType] != nil {
		return c.matmulQuant(o, xs, w, x.Rows, epi.Accumulate)
	}
	if blockFormats[w.W.DType] != nil {
		return c.matmulBlocks(o, xs, w, x.Rows, epi.Accumulate)
	}
	f, q, sc, err := weightRows("matmul", w)
	if err != nil {
		return err
	}
	a := matmulArgs{o: o, xs: xs, f: f, q: q, sc: sc, n: x.Rows, in: w.In, nout: w.Out, acc: epi.Accumulate}
	if f != nil {
		a.t = transposed(w)
	}
	if c.chunks(a.nout, a.n*a.nout*a.in) <= 1 {
		a.run(0, a.nout)
		return nil
	}
	pa := a // only the parallel path pays for a heap copy
	c.parallel(a.nout, 4, a.n*a.nout*a.in, pa.run)
	return nil
}

type matmulArgs struct {
	o, xs, f, sc []float32
	q            []int8
	t            []float32 // small f32 weights, transposed: see cachedWeightBytes
	n, in, nout  int
	acc          bool
}

// cachedWeightBytes bounds the f32 matrices that LoadWeight also keeps transposed
// (small models: stories260K's are under 50 KB each). Those multiply with
// kern.MatVecT, one activation row at a time against all outputs, which needs no
// per-output horizontal sums: at widths of 64, Dot4's reductions cost more than its
// multiply-adds. MatVecT sums in a different order than Dot; the choice depends only on
// the matrix, never on the batch, so results stay batch-invariant.
const cachedWeightBytes = 256 << 10

// run computes output columns [j0, j1) for every row.
func (a *matmulArgs) run(j0, j1 int) {
	o, xs, f, q, sc, n, in, nout, acc := a.o, a.xs, a.f, a.q, a.sc, a.n, a.in, a.nout, a.acc
	var r4 [4]float32
	if a.t != nil {
		for i := 0; i < n; i++ {
			kern.MatVecT(o[i*nout+j0:i*nout+j1], xs[i*in:(i+1)*in], a.t[j0:], nout, acc)
		}
		return
	}
	for i0 := 0; i0 < n; i0 += matmulRowBlock {
		i1 := min(i0+matmulRowBlock, n)
		for j := j0; j < j1; j++ {
			scale := float32(1)
			if q != nil {
				scale = sc[j]
			}
			i := i0
			for ; i+4 <= i1; i += 4 {
				if f != nil {
					kern.Dot4(&r4, xs[i*in:], in, in, f[j*in:(j+1)*in])
				} else {
					kern.Dot4Q8(&r4, xs[i*in:], in, in, q[j*in:(j+1)*in])
				}
				for r := 0; r < 4; r++ {
					v := r4[r]
					if q != nil {
						v *= scale
					}
					if acc {
						o[(i+r)*nout+j] += v
					} else {
						o[(i+r)*nout+j] = v
					}
				}
			}
			for ; i < i1; i++ {
				var v float32
				if f != nil {
					v = kern.Dot(xs[i*in:(i+1)*in], f[j*in:(j+1)*in])
				} else {
					v = kern.DotQ8(xs[i*in:(i+1)*in], q[j*in:(j+1)*in]) * scale
				}
				if acc {
					o[i*nout+j] += v
				} else {
					o[i*nout+j] = v
				}
			}
		}
	}
}

func (c *Backend) RoPE(_ backend.Stream, x backend.Tensor, pos []int32, r *backend.RoPE) error {
	xs, err := f32s("rope", x)
	if err != nil {
		return err
	}
	hd := r.HeadDim
	if hd <= 0 || hd%2 != 0 || x.Cols%hd != 0 || len(pos) != x.Rows || len(r.InvFreq) != hd/2 {
		return backend.ShapeError("rope", "x %s, %d positions, head dim %d, %d frequencies", x, len(pos), hd, len(r.InvFreq))
	}
	half := hd / 2
	var cs [2 * 256]float32
	var cosSin []float32
	if hd <= 256 {
		cosSin = cs[:hd]
	} else {
		cosSin = make([]float32, hd)
	}
	for i := 0; i < x.Rows; i++ {
		p := float64(pos[i])
		for k := 0; k < half; k++ {
			s, c := math.Sincos(p * float64(r.InvFreq[k]))
			cosSin[2*k], cosSin[2*k+1] = float32(c), float32(s)
		}
		row := xs[i*x.Cols : (i+1)*x.Cols]
		for h := 0; h < x.Cols; h += hd {
			head := row[h : h+hd]
			for k := 0; k < half; k++ {
				c, s := cosSin[2*k], cosSin[2*k+1]
				a, b := 2*k, 2*k+1
				if r.Style == backend.RopeRotateHalf {
					a, b = k, k+half
				}
				v0, v1 := head[a], head[b]
				head[a] = v0*c - v1*s
				head[b] = v0*s + v1*c
			}
		}
	}
	return nil
}

func (c *Backend) WriteKV(_ backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, slots []int32) error {
	if layer < 0 || layer >= kv.Layers {
		return fmt.Errorf("write kv: layer %d of %d", layer, kv.Layers)
	}
	ks, err := f32s("write kv", k)
	if err != nil {
		return err
	}
	vs, err := f32s("write kv", v)
	if err != nil {
		return err
	}
	kc, err := f32s("write kv", kv.K[layer])
	if err != nil {
		return err
	}
	vc, err := f32s("write kv", kv.V[layer])
	if err != nil {
		return err
	}
	hd, nkv, bs := kv.HeadDim, kv.KVHeads, kv.BlockSize
	if k.Cols != nkv*hd || v.Cols != nkv*hd || k.Rows != len(slots) || v.Rows != len(slots) {
		return backend.ShapeError("write kv", "k %s, v %s, %d slots, kv heads %d × head dim %d", k, v, len(slots), nkv, hd)
	}
	for i, slot := range slots {
		if slot < 0 || int(slot) >= kv.Blocks*bs {
			return fmt.Errorf("write kv: slot %d outside the cache (%d blocks of %d)", slot, kv.Blocks, bs)
		}
		blk, off := int(slot)/bs, int(slot)%bs
		for g := 0; g < nkv; g++ {
			dst := ((blk*nkv+g)*bs + off) * hd
			copy(kc[dst:dst+hd], ks[i*k.Cols+g*hd:])
			copy(vc[dst:dst+hd], vs[i*v.Cols+g*hd:])
		}
	}
	return nil
}

func (c *Backend) SiLUMul(_ backend.Stream, out, gate, up backend.Tensor) error {
	o, err := f32s("silu mul", out)
	if err != nil {
		return err
	}
	g, err := f32s("silu mul", gate)
	if err != nil {
		return err
	}
	u, err := f32s("silu mul", up)
	if err != nil {
		return err
	}
	if len(o) != len(g) || len(g) != len(u) || out.Cols != gate.Cols || gate.Cols != up.Cols {
		return backend.ShapeError("silu mul", "out %s, gate %s, up %s", out, gate, up)
	}
	kern.SiLUMul(o, g, u)
	return nil
}

func (c *Backend) GatherRows(_ backend.Stream, out, x backend.Tensor, rows []int32) error {
	o, err := f32s("gather rows", out)
	if err != nil {
		return err
	}
	xs, err := f32s("gather rows", x)
	if err != nil {
		return err
	}
	if out.Rows != len(rows) || out.Cols != x.Cols {
		return backend.ShapeError("gather rows", "out %s, x %s, %d rows", out, x, len(rows))
	}
	d := x.Cols
	for i, r := range rows {
		if r < 0 || int(r) >= x.Rows {
			return fmt.Errorf("gather rows: row %d of %d", r, x.Rows)
		}
		copy(o[i*d:(i+1)*d], xs[int(r)*d:])
	}
	return nil
}
