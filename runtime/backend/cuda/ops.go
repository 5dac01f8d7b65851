//go:build cuda

package cuda

import (
	"fmt"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// Each op checks shapes and index inputs on the host exactly as the CPU backend does,
// copies the index slices in stream order, and launches one kernel (two for W8A8 and
// split attention). Kernel failures come back naming the op and the shapes.

// acts returns the device addresses of activation operands, which must all be stored in
// one 16-bit type, and that type: the kernels run in whatever the operands hold.
func acts(op string, ts ...backend.Tensor) ([]unsafe.Pointer, cgo.DType, error) {
	ps := make([]unsafe.Pointer, len(ts))
	var dt backend.DType
	for i, t := range ts {
		p, b, err := dev(op, t)
		if err != nil {
			return nil, 0, err
		}
		if b.dt != backend.F16 && b.dt != backend.BF16 {
			return nil, 0, fmt.Errorf("%s: operand %s stored as %s: not supported (f16 or bf16 activations)", op, t, b.dt)
		}
		if i > 0 && b.dt != dt {
			return nil, 0, fmt.Errorf("%s: operands of %s and %s: mixed activation dtypes not supported", op, dt, b.dt)
		}
		dt, ps[i] = b.dt, p
	}
	return ps, cgo.DType(dt), nil
}

func wrap(op string, err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s (%s): %w", op, fmt.Sprintf(format, args...), err)
}

func (c *Backend) Embed(s backend.Stream, out backend.Tensor, table *backend.Weight, ids []int32) error {
	const op = "cuda embed"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, out)
	if err != nil {
		return err
	}
	o := ps[0]
	if out.Rows != len(ids) || out.Cols != table.In {
		return backend.ShapeError("embed", "out %s for %d ids of width %d", out, len(ids), table.In)
	}
	for _, id := range ids {
		if id < 0 || int(id) >= table.Out {
			return fmt.Errorf("embed: token id %d outside the vocabulary [0, %d)", id, table.Out)
		}
	}
	tp, tdt, sp, err := embedTable(op, "embed", table)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	d, err := st.ints(ids)
	if err != nil {
		return wrap(op, err, "%d ids", len(ids))
	}
	st.wrote(out)
	return cgo.Embed(st.s, dt, o, tdt, tp, sp, d, len(ids), table.In, table.Out)
}

// embedTable returns the device addresses of an embedding table and of its scales
// (int8 tables only), and its stored type. The kernels read row id of a
// [table.Out][table.In] matrix (and scale id) at these addresses: views holding fewer
// elements would be read past their end.
func embedTable(op, name string, table *backend.Weight) (tp unsafe.Pointer, tdt cgo.DType, sp unsafe.Pointer, err error) {
	tp, tb, err := dev(op, table.W)
	if err != nil {
		return nil, 0, nil, err
	}
	if table.W.Rows*table.W.Cols < table.Out*table.In {
		return nil, 0, nil, backend.ShapeError(name, "table %q [%d][%d] stored as %s", table.Name, table.Out, table.In, table.W)
	}
	if tb.dt == backend.I8 {
		if sp, _, err = dev(op, table.Scales); err != nil {
			return nil, 0, nil, err
		}
		if table.Scales.Rows*table.Scales.Cols < table.Out {
			return nil, 0, nil, backend.ShapeError(name, "table %q [%d][%d] with scales %s", table.Name, table.Out, table.In, table.Scales)
		}
	}
	return tp, cgo.DType(tb.dt), sp, nil
}

func (c *Backend) RMSNorm(s backend.Stream, out, x, w backend.Tensor, eps float32) error {
	const op = "cuda rmsnorm"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, out, x)
	if err != nil {
		return err
	}
	o, xp := ps[0], ps[1]
	wp, wb, err := dev(op, w)
	if err != nil {
		return err
	}
	d := x.Cols
	if out.Rows != x.Rows || out.Cols != d || w.Rows*w.Cols != d {
		return backend.ShapeError("rmsnorm", "out %s, x %s, w %s", out, x, w)
	}
	st.wrote(out)
	return cgo.RMSNorm(st.s, &cgo.RMSNormArgs{DType: dt, Out: o, X: xp, WDType: cgo.DType(wb.dt), W: wp,
		N: x.Rows, Dim: d, Eps: eps})
}

func (c *Backend) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	const op = "cuda matmul"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, out, x)
	if err != nil {
		return err
	}
	o, xp := ps[0], ps[1]
	if x.Cols != w.In || out.Cols != w.Out || out.Rows != x.Rows {
		return backend.ShapeError("matmul", "out %s = x %s · %q[%d][%d]ᵀ", out, x, w.Name, w.Out, w.In)
	}
	if w.Kind != backend.Dense {
		return c.matmulKind(st, s, out, x, w, epi)
	}
	wp, wb, err := dev(op, w.W)
	if err != nil {
		return err
	}
	// The kernels read Out*In weights (and Out scales) from these addresses: a view that
	// holds fewer would be read past its end.
	if w.W.Rows*w.W.Cols != w.Out*w.In {
		return backend.ShapeError("matmul", "weight %q [%d][%d] stored as %s", w.Name, w.Out, w.In, w.W)
	}
	n := x.Rows
	if n == 0 {
		return nil
	}
	st.wrote(out)
	a := &cgo.MatMulArgs{DType: dt, Out: o, LdOut: out.Cols, X: xp, LdX: x.Cols, W: wp,
		N: n, NOut: w.Out, K: w.In, Epi: cgo.EpiNone, Var: c.mmVariant}
	if epi.Accumulate {
		a.Epi = cgo.EpiAccumulate
	}
	switch wb.dt {
	case backend.I8:
		if a.WScale, _, err = dev(op, w.Scales); err != nil {
			return err
		}
		if w.Scales.Rows*w.Scales.Cols < w.Out {
			return backend.ShapeError("matmul", "weight %q [%d][%d] with scales %s", w.Name, w.Out, w.In, w.Scales)
		}
		if c.opt.W8A8Rows > 0 && n >= c.opt.W8A8Rows && w.In%32 == 0 {
			return c.matmulW8A8(st, a, w.Name)
		}
		return wrap(op, cgo.MatMulW8A16(st.s, a), "w8a16, weight %q, %s", w.Name, a)
	case backend.DType(dt):
		return wrap(op, cgo.MatMulF16(st.s, a), "16-bit weight %q, %s", w.Name, a)
	}
	return fmt.Errorf("%s: weight %q stored as %s with %s activations: not supported", op, w.Name, wb.dt, backend.DType(dt))
}

// Row thresholds and tiles of the kernel library's matmul dispatch (matmul_*.cu): the
// library picks, for VIREO_MM_AUTO, the tensor-core kernel from kW8A16MmaRows
// (kF16MmaRows) rows when k % 32 == 0 and the rows are 16-byte aligned, else the SIMT
// kernel; MatMul itself sends int8 weights to W8A8 from Options.W8A8Rows rows.
const (
	mmaRows              = 9      // kW8A16MmaRows, kF16MmaRows
	simtTileRows         = 8      // kSimtRows
	simtTileCols         = 4      // kSimtWarps: one output column per warp
	mmaTileRows, mmaTile = 64, 64 // kMmaRows × kMmaCols
	w8a8Name, simtSuffix = "w8a8", "-simt"
)

// MatMulKernel names the kernel MatMul runs for n rows of x [n][in] times a weight
// [out][in] stored as w (I8, or the activation type), and the output tile one block of
// it computes (rows × cols): backendtest folds a failing case's error map by it. It
// mirrors the dispatch of MatMul and of the library (see the constants above) for
// operands at 16-byte aligned addresses, which every allocation and backendtest view is.
func (c *Backend) MatMulKernel(n, in, out int, w backend.DType) (name string, tileRows, tileCols int) {
	kind := "f16"
	if w == backend.I8 {
		kind = "w8a16"
		if c.opt.W8A8Rows > 0 && n >= c.opt.W8A8Rows && in%32 == 0 {
			if c.mmVariant == cgo.MMSIMT {
				return w8a8Name + simtSuffix, simtTileRows, simtTileCols
			}
			return w8a8Name + "-mma", mmaTileRows, mmaTile
		}
	}
	mma := c.mmVariant == cgo.MMMMA || (c.mmVariant == cgo.MMAuto && n >= mmaRows && in%32 == 0)
	if mma {
		return kind + "-mma", mmaTileRows, mmaTile
	}
	return kind + simtSuffix, simtTileRows, simtTileCols
}

// matmulW8A8 quantizes x per row into the stream's scratch and runs the int8 kernel.
func (c *Backend) matmulW8A8(st *stream, a *cgo.MatMulArgs, name string) error {
	const op = "cuda matmul w8a8"
	qBytes := (a.N*a.K + 255) / 256 * 256
	sc, err := c.scratchBytes(st, qBytes+4*a.N)
	if err != nil {
		return wrap(op, err, "weight %q, %s", name, a)
	}
	q, qs := sc, unsafe.Add(sc, qBytes)
	if err := cgo.QuantizeRows(st.s, a.DType, q, qs, a.X, a.LdX, a.N, a.K); err != nil {
		return wrap(op, err, "quantizing x for weight %q, %s", name, a)
	}
	a.X, a.XScale, a.LdX = q, qs, a.K
	return wrap(op, cgo.MatMulW8A8(st.s, a), "weight %q, %s", name, a)
}

func (c *Backend) RoPE(s backend.Stream, x backend.Tensor, pos []int32, r *backend.RoPE) error {
	const op = "cuda rope"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, x)
	if err != nil {
		return err
	}
	xp := ps[0]
	hd := r.HeadDim
	if hd <= 0 || hd%2 != 0 || x.Cols%hd != 0 || len(pos) != x.Rows || len(r.InvFreq) != hd/2 {
		return backend.ShapeError("rope", "x %s, %d positions, head dim %d, %d frequencies", x, len(pos), hd, len(r.InvFreq))
	}
	if x.Rows == 0 {
		return nil
	}
	f, err := c.invFreq(r.InvFreq)
	if err != nil {
		return wrap(op, err, "head dim %d", hd)
	}
	p, err := st.ints(pos)
	if err != nil {
		return wrap(op, err, "%d positions", len(pos))
	}
	st.wrote(x)
	return cgo.RoPE(st.s, dt, xp, x.Cols, x.Rows, x.Cols/hd, hd, p, f, ropeStyle(r))
}

func ropeStyle(r *backend.RoPE) int {
	if r.Style == backend.RopeRotateHalf {
		return cgo.RopeRotateHalf
	}
	return cgo.RopePairs
}

func (c *Backend) WriteKV(s backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, slots []int32) error {
	const op = "cuda write kv"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	kp, vp, kc, vc, dt, err := layerActs(op, "write kv", kv, layer, k, v)
	if err != nil {
		return err
	}
	hd, nkv, bs := kv.HeadDim, kv.KVHeads, kv.BlockSize
	if k.Cols != nkv*hd || v.Cols != nkv*hd || k.Rows != len(slots) || v.Rows != len(slots) {
		return backend.ShapeError("write kv", "k %s, v %s, %d slots, kv heads %d × head dim %d", k, v, len(slots), nkv, hd)
	}
	for _, slot := range slots {
		if slot < 0 || int(slot) >= kv.Blocks*bs {
			return fmt.Errorf("write kv: slot %d outside the cache (%d blocks of %d)", slot, kv.Blocks, bs)
		}
	}
	if len(slots) == 0 {
		return nil
	}
	sp, err := st.ints(slots)
	if err != nil {
		return wrap(op, err, "%d slots", len(slots))
	}
	st.wrote(kv.K[layer], kv.V[layer])
	return cgo.WriteKV(st.s, dt, kc, vc, kp, vp, k.Cols, v.Cols, sp, len(slots), nkv, hd, bs, kv.Blocks)
}

func (c *Backend) Attention(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, b *backend.AttnBatch) error {
	const op = "cuda attention"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	o, qp, kc, vc, dt, err := layerActs(op, "attention", kv, layer, out, q)
	if err != nil {
		return err
	}
	if err := attnShape("attention", out, q, kv, b); err != nil {
		return err
	}
	nh, nkv, hd, bs := b.Heads, b.KVHeads, b.HeadDim, kv.BlockSize
	if q.Rows == 0 {
		return nil
	}
	// One int32 upload: seqs [n][4], then row_seq [rows], then the block tables.
	ns := len(b.Seqs)
	seqs := make([]int32, 4*ns)
	rowSeq := make([]int32, q.Rows)
	for i := range rowSeq {
		rowSeq[i] = -1
	}
	var tables []int32
	maxCtx := 0
	for si, sq := range b.Seqs {
		ctx := sq.Pos + sq.NQ
		nb := (ctx + bs - 1) / bs
		if sq.Q0 < 0 || sq.NQ < 0 || sq.Q0+sq.NQ > q.Rows || sq.Pos < 0 || nb > len(sq.Blocks) {
			return fmt.Errorf("attention: sequence %d (rows %d+%d at position %d, %d blocks) does not fit %d rows", si, sq.Q0, sq.NQ, sq.Pos, len(sq.Blocks), q.Rows)
		}
		for _, blk := range sq.Blocks[:nb] {
			if blk < 0 || int(blk) >= kv.Blocks {
				return fmt.Errorf("attention: sequence %d: block %d outside the cache of %d", si, blk, kv.Blocks)
			}
		}
		for r := sq.Q0; r < sq.Q0+sq.NQ; r++ {
			if rowSeq[r] >= 0 {
				return fmt.Errorf("attention: query row %d belongs to two sequences", r)
			}
			rowSeq[r] = int32(si)
		}
		seqs[4*si], seqs[4*si+1], seqs[4*si+2], seqs[4*si+3] = int32(sq.Q0), int32(sq.NQ), int32(sq.Pos), int32(len(tables))
		tables = append(tables, sq.Blocks[:nb]...)
		maxCtx = max(maxCtx, ctx)
	}
	idx := make([]int32, 0, len(seqs)+len(rowSeq)+len(tables))
	idx = append(append(append(idx, seqs...), rowSeq...), tables...)
	d, err := st.ints(idx)
	if err != nil {
		return wrap(op, err, "%d sequences", ns)
	}
	wsBytes, err := cgo.AttentionWorkspaceBytes(q.Rows, nh, hd, maxCtx)
	if err != nil {
		return err
	}
	var ws unsafe.Pointer
	if wsBytes > 0 {
		if ws, err = c.scratchBytes(st, wsBytes); err != nil {
			return wrap(op, err, "workspace of %d bytes", wsBytes)
		}
	}
	st.wrote(out)
	return cgo.Attention(st.s, &cgo.AttentionArgs{
		DType: dt, Out: o, Q: qp, LdOut: out.Cols, LdQ: q.Cols, KCache: kc, VCache: vc,
		Seqs: d, RowSeq: unsafe.Add(d, 4*4*ns), BlockTables: unsafe.Add(d, 4*(4*ns+q.Rows)),
		NRows: q.Rows, NSeqs: ns, Heads: nh, KVHeads: nkv, HeadDim: hd, BlockSize: bs, MaxCtx: maxCtx,
		Scale: b.Scale, Workspace: ws, WorkspaceBytes: wsBytes,
	})
}

func (c *Backend) SiLUMul(s backend.Stream, out, gate, up backend.Tensor) error {
	const op = "cuda silu mul"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, out, gate, up)
	if err != nil {
		return err
	}
	o, g, u := ps[0], ps[1], ps[2]
	if out.Len() != gate.Len() || gate.Len() != up.Len() || out.Cols != gate.Cols || gate.Cols != up.Cols {
		return backend.ShapeError("silu mul", "out %s, gate %s, up %s", out, gate, up)
	}
	if out.Len() == 0 {
		return nil
	}
	st.wrote(out)
	return cgo.SiLUMul(st.s, dt, o, g, u, out.Rows, out.Cols)
}

func (c *Backend) GatherRows(s backend.Stream, out, x backend.Tensor, rows []int32) error {
	const op = "cuda gather rows"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	o, ob, err := dev(op, out)
	if err != nil {
		return err
	}
	xp, xb, err := dev(op, x)
	if err != nil {
		return err
	}
	if ob.dt != xb.dt {
		return fmt.Errorf("gather rows: out %s stored as %s, x as %s: not supported", out, ob.dt, xb.dt)
	}
	if out.Rows != len(rows) || out.Cols != x.Cols {
		return backend.ShapeError("gather rows", "out %s, x %s, %d rows", out, x, len(rows))
	}
	for _, r := range rows {
		if r < 0 || int(r) >= x.Rows {
			return fmt.Errorf("gather rows: row %d of %d", r, x.Rows)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	rp, err := st.ints(rows)
	if err != nil {
		return wrap(op, err, "%d rows", len(rows))
	}
	st.wrote(out)
	return cgo.GatherRows(st.s, o, xp, rp, len(rows), x.Cols, x.Rows, xb.dt.Size())
}

// layerActs checks layer against the cache and returns the device addresses of two
// activation operands and of the layer's K and V pools, which must share one type.
func layerActs(op, name string, kv *backend.KVCache, layer int, a, b backend.Tensor) (ap, bp, kc, vc unsafe.Pointer, dt cgo.DType, err error) {
	if layer < 0 || layer >= kv.Layers || layer >= len(kv.K) || layer >= len(kv.V) {
		return nil, nil, nil, nil, 0, fmt.Errorf("%s: layer %d of %d", name, layer, kv.Layers)
	}
	ps, dt, err := acts(op, a, b, kv.K[layer], kv.V[layer])
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	return ps[0], ps[1], ps[2], ps[3], dt, nil
}

// attnShape checks an attention's operands and heads against the cache and the kernel.
func attnShape(name string, out, q backend.Tensor, kv *backend.KVCache, b *backend.AttnBatch) error {
	nh, nkv, hd := b.Heads, b.KVHeads, b.HeadDim
	if nkv != kv.KVHeads || hd != kv.HeadDim || nkv <= 0 || nh%nkv != 0 || q.Cols != nh*hd || out.Cols != q.Cols || out.Rows != q.Rows {
		return backend.ShapeError(name, "out %s, q %s, heads %d, kv heads %d (cache %d), head dim %d (cache %d)", out, q, nh, nkv, kv.KVHeads, hd, kv.HeadDim)
	}
	if hd > 256 {
		return backend.ShapeError(name, "head dim %d (the CUDA kernel takes up to 256)", hd)
	}
	return nil
}
