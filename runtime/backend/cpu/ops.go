package cpu

import (
	"fmt"
	"math"
	"sync"

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

func (c *Backend) Embed(_ backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	o, err := f32s("embed", out)
	if err != nil {
		return err
	}
	if out.Cols != table.In {
		return backend.ShapeError("embed", "out %s for a table of width %d", out, table.In)
	}
	idv, err := i32s("embed", "ids", ids, 1, out.Rows)
	if err != nil {
		return err
	}
	if quantFormats[table.W.DType] != nil {
		return embedQuant(o, table, idv)
	}
	if blockFormats[table.W.DType] != nil {
		return embedBlocks(o, table, idv)
	}
	f, q, sc, err := weightRows("embed", table)
	if err != nil {
		return err
	}
	d := table.In
	for i, id := range idv {
		dst := o[i*d : (i+1)*d]
		switch {
		case id < 0 || int(id) >= table.Out:
			clear(dst)
		case f != nil:
			copy(dst, f[int(id)*d:])
		default:
			s := sc[id]
			for k, v := range q[int(id)*d : int(id+1)*d] {
				dst[k] = float32(v) * s
			}
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

var _ backend.RMSNormQuanter = (*Backend)(nil)

// RMSNormQuant is RMSNorm (the same float steps) followed by the per-token int8
// quantization of each normalized row (QuantizeRow: the rounding CUDA's
// vireo_rmsnorm_quant and vireo_quantize_rows apply): q [n][dim] I8, scales [1][n] F32.
func (c *Backend) RMSNormQuant(s backend.Stream, q, scales, x, w backend.Tensor, eps float32) error {
	xs, err := f32s("rmsnorm quant", x)
	if err != nil {
		return err
	}
	sc, err := f32s("rmsnorm quant", scales)
	if err != nil {
		return err
	}
	qb, ok := q.Buf.(*buf)
	n, d := x.Rows, x.Cols
	if !ok || q.DType != backend.I8 || qb.i8 == nil || q.Off < 0 || q.Off+q.Len() > len(qb.i8) {
		return fmt.Errorf("rmsnorm quant: q %s is not a CPU int8 tensor", q)
	}
	if q.Rows != n || q.Cols != d || len(sc) != n {
		return backend.ShapeError("rmsnorm quant", "q %s, scales %s, x %s", q, scales, x)
	}
	qs := qb.i8[q.Off : q.Off+q.Len()]
	p := w8a8Scratch.Get().(*[]float32)
	defer w8a8Scratch.Put(p)
	for i := 0; i < n; i++ { // one row at a time: y never needs more than a row
		y := grow(p, d)
		if err := c.RMSNorm(s, F32(y, 1, d), F32(xs[i*d:(i+1)*d], 1, d), w, eps); err != nil {
			return err
		}
		sc[i] = QuantizeRow(qs[i*d:(i+1)*d], y)
	}
	return nil
}

// QuantizeRow writes row rounded to the int8 grid of its absolute maximum into q and
// returns the scale: amax/127 in float32 (1 for a zero row), q = row/scale rounded half
// to even and clamped to ±127, as CUDA's quantize kernels do.
func QuantizeRow(q []int8, row []float32) float32 {
	var amax float32
	for _, v := range row {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	scale := float32(1)
	if amax > 0 {
		scale = amax / 127
	}
	for k, v := range row {
		q[k] = int8(max(-127, min(127, math.RoundToEven(float64(v/scale)))))
	}
	return scale
}

// matmulRowBlock is how many activation rows share one pass over a weight row block,
// keeping those rows in cache while the weights stream past.
const matmulRowBlock = 64

func (c *Backend) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	if epi.SiLUGLU {
		return c.matmulGLU(s, out, x, w, epi)
	}
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
	if q != nil && epi.Prompt && c.w8a8 {
		p := w8a8Scratch.Get().(*[]float32)
		defer w8a8Scratch.Put(p)
		xs = quantizeRows(grow(p, len(xs)), xs, x.Rows, x.Cols)
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

// matmulGLU is the SiLUGLU epilogue's reference: the plain product into a scratch
// [n][2·h] (gate columns, then up columns), then out = silu(gate)·up exactly as SiLUMul
// computes it, so a fused pass gives what MatMul then SiLUMul give.
func (c *Backend) matmulGLU(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	o, err := f32s("matmul", out)
	if err != nil {
		return err
	}
	h := out.Cols
	if epi.Accumulate || 2*h != w.Out || out.Rows != x.Rows {
		return backend.ShapeError("matmul", "silu-glu out %s = x %s · %q[%d][%d]ᵀ (want 2·%d rows, no accumulate)", out, x, w.Name, w.Out, w.In, h)
	}
	gu := make([]float32, x.Rows*w.Out)
	if err := c.MatMul(s, F32(gu, x.Rows, w.Out), x, w, backend.Epilogue{Prompt: epi.Prompt}); err != nil {
		return err
	}
	for i := 0; i < x.Rows; i++ {
		row := gu[i*2*h : (i+1)*2*h]
		kern.SiLUMul(o[i*h:(i+1)*h], row[:h], row[h:])
	}
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
		i := 0
		for ; i+4 <= n; i += 4 { // four rows per weight load, bit-identical to one at a time
			kern.MatVecT4(o[i*nout+j0:], nout, xs[i*in:], in, in, a.t[j0:], nout, j1-j0, acc)
		}
		for ; i < n; i++ {
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

func (c *Backend) RoPE(_ backend.Stream, x, pt backend.Tensor, r *backend.RoPE) error {
	xs, err := f32s("rope", x)
	if err != nil {
		return err
	}
	hd := r.HeadDim
	if hd <= 0 || hd%2 != 0 || x.Cols%hd != 0 || len(r.InvFreq) != hd/2 {
		return backend.ShapeError("rope", "x %s, head dim %d, %d frequencies", x, hd, len(r.InvFreq))
	}
	pos, err := i32s("rope", "pos", pt, 1, x.Rows)
	if err != nil {
		return err
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
		if pos[i] < 0 {
			continue // idle
		}
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

// index is a KVIndex read in place.
type index struct {
	pos, seq, tables []int32
	width, seqs      int
}

func readIndex(op string, at *backend.KVIndex, n int) (x index, err error) {
	if at == nil {
		return x, backend.ShapeError(op, "no KV index")
	}
	if x.pos, err = i32s(op, "pos", at.Pos, 1, n); err != nil {
		return x, err
	}
	if x.seq, err = i32s(op, "seq", at.Seq, 1, n); err != nil {
		return x, err
	}
	if x.tables, err = i32s(op, "tables", at.Tables, at.Tables.Rows, -1); err != nil {
		return x, err
	}
	x.width, x.seqs = at.Tables.Cols, at.Tables.Rows
	return x, nil
}

// table is row i's block table, or nil when its sequence is out of range.
func (x *index) table(i int) []int32 {
	s := int(x.seq[i])
	if s < 0 || s >= x.seqs || x.width <= 0 {
		return nil
	}
	return x.tables[s*x.width : (s+1)*x.width]
}

// slot is row i's cache slot, or -1 when WriteKV skips it (see backend.KVIndex).
func (x *index) slot(i, bs, blocks int) int {
	p, t := int(x.pos[i]), x.table(i)
	if p < 0 || t == nil || p/bs >= x.width {
		return -1
	}
	blk := int(t[p/bs])
	if blk < 0 || blk >= blocks {
		return -1
	}
	return blk*bs + p%bs
}

func (c *Backend) WriteKV(_ backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, at *backend.KVIndex) error {
	if layer < 0 || layer >= kv.Layers || layer >= len(kv.K) || layer >= len(kv.V) {
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
	if bs <= 0 || k.Cols != nkv*hd || v.Cols != nkv*hd || v.Rows != k.Rows {
		return backend.ShapeError("write kv", "k %s, v %s, kv heads %d × head dim %d, block size %d", k, v, nkv, hd, bs)
	}
	x, err := readIndex("write kv", at, k.Rows)
	if err != nil {
		return err
	}
	for i := range k.Rows {
		slot := x.slot(i, bs, kv.Blocks)
		if slot < 0 {
			continue
		}
		blk, off := slot/bs, slot%bs
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

func (c *Backend) GatherRows(_ backend.Stream, out, x, rt backend.Tensor) error {
	o, err := f32s("gather rows", out)
	if err != nil {
		return err
	}
	xs, err := f32s("gather rows", x)
	if err != nil {
		return err
	}
	if out.Cols != x.Cols {
		return backend.ShapeError("gather rows", "out %s, x %s", out, x)
	}
	rows, err := i32s("gather rows", "rows", rt, 1, out.Rows)
	if err != nil {
		return err
	}
	d := x.Cols
	for i, r := range rows {
		if r < 0 || int(r) >= x.Rows {
			clear(o[i*d : (i+1)*d])
			continue
		}
		copy(o[i*d:(i+1)*d], xs[int(r)*d:])
	}
	return nil
}

// w8a8Scratch holds a prompt call's activations rounded to the int8 grid (Options.W8A8).
var w8a8Scratch = sync.Pool{New: func() any { return new([]float32) }}

// quantizeRows writes into dst each of the n rows of xs [n][d] rounded to the int8 grid
// of its own absolute maximum, as CUDA's vireo_quantize_rows quantizes a W8A8 product's
// activations (scale = amax/127 in float32, or 1 for a zero row; q = x/scale rounded
// half to even, clamped to ±127), and returns dst: each value is q·scale, which the
// int8 weights then multiply as usual. A row's values depend on that row alone.
func quantizeRows(dst, xs []float32, n, d int) []float32 {
	var q []int8
	for i := 0; i < n; i++ {
		row, out := xs[i*d:(i+1)*d], dst[i*d:(i+1)*d]
		q = grow(&q, d)
		scale := QuantizeRow(q, row)
		for k, v := range q {
			out[k] = float32(v) * scale
		}
	}
	return dst
}
