//go:build cuda

package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// Each op checks its operands' shapes and types on the host as the CPU backend does and
// launches one kernel (two for W8A8, WriteKV and Attention: the index kernel first,
// three for split attention). Index inputs are device I32 tensors, read only by the
// kernels, which skip or zero the rows backend.KVIndex names, as the CPU does. Kernel
// failures come back naming the op and the shapes.

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

// i32Dev returns the device address of an I32 tensor [rows][cols] (cols < 0: any
// width).
func i32Dev(op, name string, t backend.Tensor, rows, cols int) (unsafe.Pointer, error) {
	p, b, err := dev(op, t)
	if err != nil {
		return nil, err
	}
	if b.dt != backend.I32 || t.Rows != rows || (cols >= 0 && t.Cols != cols) || t.Cols < 0 {
		return nil, backend.ShapeError(op, "%s %s stored as %s, want i32[%d][%d]", name, t, b.dt, rows, cols)
	}
	return p, nil
}

// Stage copies v into the stream's pinned staging arena and on to the device, in s's
// order: an I32 tensor [1][len(v)] for the ops issued next on s.
func (c *Backend) Stage(s backend.Stream, v []int32) (backend.Tensor, error) {
	const op = "cuda stage"
	st, err := c.str(op, s)
	if err != nil {
		return backend.Tensor{}, err
	}
	if st.capturing || c.capturing.Load() > 0 {
		return backend.Tensor{}, fmt.Errorf("%s: %d values: %w (a captured step reads fixed device buffers)", op, len(v), errCapturing)
	}
	p, err := st.ints(v)
	if err != nil {
		return backend.Tensor{}, wrap(op, err, "%d values", len(v))
	}
	// The arena's memory, viewed as a buffer of its own (Free of it is a no-op).
	return backend.Tensor{DType: backend.I32, Rows: 1, Cols: len(v), Buf: &devBuf{ptr: p, n: len(v), dt: backend.I32}}, nil
}

// Embed writes table row ids[i] into out row i, zeros for ids outside [0, vocab).
func (c *Backend) Embed(s backend.Stream, out backend.Tensor, table *backend.Weight, ids backend.Tensor) error {
	const op = "cuda embed"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, out)
	if err != nil {
		return err
	}
	if out.Cols != table.In {
		return backend.ShapeError("embed", "out %s for a table of width %d", out, table.In)
	}
	ip, err := i32Dev("embed", "ids", ids, 1, out.Rows)
	if err != nil {
		return err
	}
	tp, tdt, sp, err := embedTable(op, "embed", table)
	if err != nil {
		return err
	}
	if out.Rows == 0 {
		return nil
	}
	st.wrote(out)
	return wrap(op, cgo.Embed(st.s, dt, ps[0], tdt, tp, sp, ip, out.Rows, table.In, table.Out),
		"%d rows, table %q [%d][%d]", out.Rows, table.Name, table.Out, table.In)
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

var _ backend.RMSNormQuanter = (*Backend)(nil)

// RMSNormQuant is RMSNorm with the per-token int8 quantization of its result fused in
// (vireo_rmsnorm_quant: the normalized row rounded to the activation type, then
// quantized as vireo_quantize_rows does): q [n][dim] I8, scales [1][n] F32.
func (c *Backend) RMSNormQuant(s backend.Stream, q, scales, x, w backend.Tensor, eps float32) error {
	const op = "cuda rmsnorm quant"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, x)
	if err != nil {
		return err
	}
	qp, qb, err := dev(op, q)
	if err != nil {
		return err
	}
	sp, sb, err := dev(op, scales)
	if err != nil {
		return err
	}
	wp, wb, err := dev(op, w)
	if err != nil {
		return err
	}
	n, d := x.Rows, x.Cols
	if qb.dt != backend.I8 || sb.dt != backend.F32 {
		return fmt.Errorf("%s: q stored as %s, scales as %s: not supported (i8 and f32)", op, qb.dt, sb.dt)
	}
	if q.Rows != n || q.Cols != d || scales.Rows*scales.Cols != n || w.Rows*w.Cols != d {
		return backend.ShapeError("rmsnorm quant", "q %s, scales %s, x %s, w %s", q, scales, x, w)
	}
	if n == 0 {
		return nil
	}
	st.wrote(q, scales)
	return wrap(op, cgo.RMSNormQuant(st.s, &cgo.RMSNormArgs{DType: dt, Q: qp, QScale: sp, X: ps[0], WDType: cgo.DType(wb.dt), W: wp,
		N: n, Dim: d, Eps: eps}), "x %s", x)
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
	nw := out.Cols // weight rows the product reads: gate and up rows for SiLUGLU
	if epi.SiLUGLU {
		nw = 2 * out.Cols
	}
	if x.Cols != w.In || nw != w.Out || out.Rows != x.Rows || (epi.SiLUGLU && epi.Accumulate) {
		return backend.ShapeError("matmul", "out %s = x %s · %q[%d][%d]ᵀ (epilogue %+v)", out, x, w.Name, w.Out, w.In, epi)
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
		N: n, NOut: out.Cols, K: w.In, Epi: cgo.EpiNone, Var: c.mmVariant}
	switch {
	case epi.Accumulate:
		a.Epi = cgo.EpiAccumulate
	case epi.SiLUGLU:
		a.Epi = cgo.EpiSiLUGLU
	}
	switch wb.dt {
	case backend.I8:
		if a.WScale, _, err = dev(op, w.Scales); err != nil {
			return err
		}
		if w.Scales.Rows*w.Scales.Cols < w.Out {
			return backend.ShapeError("matmul", "weight %q [%d][%d] with scales %s", w.Name, w.Out, w.In, w.Scales)
		}
		if kind, ok := c.mm2Kind(n, w.In, epi, xp, wp); ok {
			return c.matmul2(st, a, kind, w.Name)
		}
		if c.w8a8(epi) && w.In%32 == 0 {
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
// kernel; MatMul itself sends int8 weights of prompt calls to W8A8 (Options.W8A8).
const (
	mmaRows              = 9      // kW8A16MmaRows, kF16MmaRows
	simtTileRows         = 8      // kSimtRows
	simtTileCols         = 4      // kSimtWarps: one output column per warp
	mmaTileRows, mmaTile = 64, 64 // kMmaRows × kMmaCols
	mmaGLUTile           = 32     // output columns of an MMA block with VIREO_EPI_SILU_GLU
	w8a8Name, simtSuffix = "w8a8", "-simt"
)

// MatMulKernel names the kernel MatMul runs for n rows of x [n][in] into out [n][out]
// with a weight stored as w (I8, the activation type, or a block type LoadsBlocks takes:
// W4A16) and epilogue epi, and the
// output tile one block of it computes (rows × cols): backendtest folds a failing
// case's error map by it. It mirrors the dispatch of MatMul and of the library (see the
// constants above) for operands at 16-byte aligned addresses, which every allocation
// and backendtest view is.
func (c *Backend) MatMulKernel(n, in, out int, w backend.DType, epi backend.Epilogue) (name string, tileRows, tileCols int) {
	mmaCols := mmaTile
	if epi.SiLUGLU {
		mmaCols = mmaGLUTile // a block's 64 weight columns are 32 gate and 32 up ones
	}
	kind := "f16"
	if c.LoadsBlocks(w) { // a W4A16 weight: kernels v2 only
		pl := c.mm2Plan(kmodel.W4A16, n, out, in, epi)
		cfg := kmodel.Configs[pl.Config]
		cols := cfg.BN()
		if epi.SiLUGLU {
			cols /= 2
		}
		return mm2Prefix + kmodel.Name(pl.Config), cfg.BM(), cols
	}
	if w == backend.I8 {
		// Every backendtest operand and backend allocation is 16-byte aligned, so the
		// addresses do not change the choice here.
		if k, ok := c.mm2Kind(n, in, epi, nil, nil); ok {
			pl := c.mm2Plan(k, n, out, in, epi)
			cfg := kmodel.Configs[pl.Config]
			cols := cfg.BN()
			if epi.SiLUGLU {
				cols /= 2
			}
			return mm2Prefix + kmodel.Name(pl.Config), cfg.BM(), cols
		}
		kind = "w8a16"
		if c.w8a8(epi) && in%32 == 0 {
			if c.mmVariant == cgo.MMSIMT {
				return w8a8Name + simtSuffix, simtTileRows, simtTileCols
			}
			return w8a8Name + "-mma", mmaTileRows, mmaCols
		}
	}
	mma := c.mmVariant == cgo.MMMMA || (c.mmVariant == cgo.MMAuto && n >= mmaRows && in%32 == 0)
	if mma {
		return kind + "-mma", mmaTileRows, mmaCols
	}
	return kind + simtSuffix, simtTileRows, simtTileCols
}

// MatMulSplit is MatMul into several outputs: the columns of x·Wᵀ are cut, in order,
// into outs (at most 3, e.g. q, k and v of a fused [q; k; v] weight: out i [n][cols_i],
// Σ cols_i = W.Out), with the residual add when epi.Accumulate (SiLU-GLU is refused). With
// kernels v2 and a shape v2 takes it is one launch (vireo_mm2_args.out2/out3); otherwise
// one MatMul per output on the weight's rows for it (a view: no copy). The model calls it
// for its fused q/k/v weight (and gate/up when adapters need the two apart:
// backend.SplitMatMuler); TestMatMulSplit checks it on a card.
func (c *Backend) MatMulSplit(s backend.Stream, outs []backend.Tensor, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	const op = "cuda matmul split"
	if len(outs) == 0 || len(outs) > 3 || epi.SiLUGLU {
		return fmt.Errorf("%s: %d outputs with epilogue %+v (1 to 3, no SiLU-GLU)", op, len(outs), epi)
	}
	cols := 0
	for _, o := range outs {
		if o.Rows != x.Rows || o.Cols <= 0 {
			return backend.ShapeError("matmul split", "output %s for x %s", o, x)
		}
		cols += o.Cols
	}
	if cols != w.Out || x.Cols != w.In {
		return backend.ShapeError("matmul split", "outputs of %d columns = x %s · %q[%d][%d]ᵀ", cols, x, w.Name, w.Out, w.In)
	}
	if len(outs) == 1 {
		return c.MatMul(s, outs[0], x, w, epi)
	}
	if w.Kind == backend.W4A16 {
		st, err := c.str(op, s)
		if err != nil {
			return err
		}
		return c.matmulW4(st, outs, x, w, epi)
	}
	if w.Kind == backend.Dense && w.W.DType == backend.I8 && x.Rows > 0 {
		st, err := c.str(op, s)
		if err != nil {
			return err
		}
		ps, dt, err := acts(op, append([]backend.Tensor{x}, outs...)...)
		if err != nil {
			return err
		}
		wp, _, err := dev(op, w.W)
		if err != nil {
			return err
		}
		if kind, ok := c.mm2Kind(x.Rows, w.In, epi, ps[0], wp); ok && w.W.Rows*w.W.Cols == w.Out*w.In && w.Scales.Rows*w.Scales.Cols >= w.Out {
			sp, _, err := dev(op, w.Scales)
			if err != nil {
				return err
			}
			a := &cgo.MatMulArgs{DType: dt, Out: ps[1], LdOut: outs[0].Cols, X: ps[0], LdX: x.Cols, W: wp, WScale: sp,
				N: x.Rows, NOut: w.Out, K: w.In, Epi: cgo.EpiNone}
			if epi.Accumulate {
				a.Epi = cgo.EpiAccumulate
			}
			sp2 := &cgo.MM2Args{Out2: ps[2], LdOut2: outs[1].Cols, Col2: outs[0].Cols}
			if len(outs) == 3 {
				sp2.Out3, sp2.LdOut3, sp2.Col3 = ps[3], outs[2].Cols, outs[0].Cols+outs[1].Cols
			}
			st.wrote(outs...)
			return c.matmul2Split(st, a, kind, w.Name, sp2)
		}
	}
	// One product per output, on its rows of W.
	if w.Kind != backend.Dense || w.W.Rows*w.W.Cols != w.Out*w.In {
		return fmt.Errorf("%s: weight %q (%s, stored as %s): split outputs need a dense weight", op, w.Name, w.Kind, w.W)
	}
	row := 0
	for _, o := range outs {
		sub := *w
		sub.Name = fmt.Sprintf("%s[%d:%d]", w.Name, row, row+o.Cols)
		sub.Out = o.Cols
		sub.W = w.W.View(row*w.In, o.Cols, w.In)
		if w.Scales.Buf != nil {
			sub.Scales = w.Scales.View(row, 1, o.Cols)
		}
		if err := c.MatMul(s, o, x, &sub, epi); err != nil {
			return err
		}
		row += o.Cols
	}
	return nil
}

var _ backend.SplitMatMuler = (*Backend)(nil)

// mm2Prefix starts the name MatMulKernel gives a kernels v2 path: "mm2-w8a16-c0-16x128".
const mm2Prefix = "mm2-"

// mm2Kind says whether kernels v2 multiply n rows of x [n][k] by an int8 weight, and
// with which kind: with Options.Kernels v2, when k % 16 == 0 and x and W (when given)
// start 16-byte aligned; W8A8 for the calls Options.W8A8 names (prompt rows by
// default), like v1, else W8A16 — whatever n is: the row count picks the tile, never
// the numerics.
func (c *Backend) mm2Kind(n, k int, epi backend.Epilogue, x, w unsafe.Pointer) (kmodel.Kind, bool) {
	if c.opt.Kernels != KernelsV2 || !kmodel.Supported(k, k, 2) || uintptr(x)%16 != 0 || uintptr(w)%16 != 0 {
		return 0, false
	}
	if c.w8a8(epi) {
		return kmodel.W8A8, true
	}
	return kmodel.W8A16, true
}

func (c *Backend) mm2Plan(kind kmodel.Kind, n, nOut, k int, epi backend.Epilogue) kmodel.Plan {
	return c.mm2.Plan(kind, n, nOut, k, mm2Epi(epi))
}

func mm2Epi(epi backend.Epilogue) kmodel.Epilogue {
	switch {
	case epi.Accumulate:
		return kmodel.EpiAccumulate
	case epi.SiLUGLU:
		return kmodel.EpiSiLUGLU
	}
	return kmodel.EpiNone
}

// matmul2 runs a kernels v2 product with the policy's plan: W8A8 quantizes x per row
// into the stream's scratch first (as v1 does); a plan with split-K gets the stream's
// workspace.
func (c *Backend) matmul2(st *stream, a *cgo.MatMulArgs, kind kmodel.Kind, name string) error {
	return c.matmul2Split(st, a, kind, name, nil)
}

// matmul2Split is matmul2 with split outputs when sp is not nil (its Out2, LdOut2, Col2,
// Out3, LdOut3, Col3; for W4A16 its W4Scale, W4Sub, W4Mode).
func (c *Backend) matmul2Split(st *stream, a *cgo.MatMulArgs, kind kmodel.Kind, name string, sp *cgo.MM2Args) error {
	op := "cuda matmul v2 " + kind.String()
	epi := kmodel.EpiNone
	switch a.Epi {
	case cgo.EpiAccumulate:
		epi = kmodel.EpiAccumulate
	case cgo.EpiSiLUGLU:
		epi = kmodel.EpiSiLUGLU
	}
	pl := c.mm2.Plan(kind, a.N, a.NOut, a.K, epi)
	m := &cgo.MM2Args{Kind: cgo.MM2Kind(kind), DType: a.DType, Out: a.Out, LdOut: a.LdOut, X: a.X, LdX: a.LdX,
		W: a.W, WScale: a.WScale, N: a.N, NOut: a.NOut, K: a.K, Epi: a.Epi,
		Config: pl.Config, Split: pl.Split, RowsFast: pl.RowsFast, Fault: c.opt.MM2Fault}
	if sp != nil {
		m.Out2, m.LdOut2, m.Col2, m.Out3, m.LdOut3, m.Col3 = sp.Out2, sp.LdOut2, sp.Col2, sp.Out3, sp.LdOut3, sp.Col3
		m.W4Scale, m.W4Sub, m.W4Mode = sp.W4Scale, sp.W4Sub, sp.W4Mode
	}
	if kind == kmodel.W8A8 {
		qBytes := (a.N*a.K + 255) / 256 * 256
		sc, err := c.scratchBytes(st, qBytes+4*a.N)
		if err != nil {
			return wrap(op, err, "weight %q, %s", name, m)
		}
		q, qs := sc, unsafe.Add(sc, qBytes)
		if err := cgo.QuantizeRows(st.s, a.DType, q, qs, a.X, a.LdX, a.N, a.K); err != nil {
			return wrap(op, err, "quantizing x for weight %q, %s", name, m)
		}
		m.X, m.XScale, m.LdX = q, qs, a.K
	}
	if need := kmodel.WorkspaceBytes(pl.Config, a.N, a.NOut, epi, pl.Split); need > 0 {
		ws, n, err := c.mm2Workspace(st, need)
		if err != nil {
			return wrap(op, err, "weight %q, %s", name, m)
		}
		m.Workspace, m.WorkspaceBytes = ws, n
	}
	return wrap(op, cgo.MatMul2(st.s, m), "weight %q, %s", name, m)
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

// RoPE rotates row i of x to position pos[i]; rows with pos[i] < 0 stay as they are.
func (c *Backend) RoPE(s backend.Stream, x, pos backend.Tensor, r *backend.RoPE) error {
	const op = "cuda rope"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	ps, dt, err := acts(op, x)
	if err != nil {
		return err
	}
	hd := r.HeadDim
	if hd <= 0 || hd%2 != 0 || x.Cols%hd != 0 || len(r.InvFreq) != hd/2 {
		return backend.ShapeError("rope", "x %s, head dim %d, %d frequencies", x, hd, len(r.InvFreq))
	}
	pp, err := i32Dev("rope", "pos", pos, 1, x.Rows)
	if err != nil {
		return err
	}
	if x.Rows == 0 {
		return nil
	}
	// The frequency table is uploaded on first use, which a capture refuses: the step's
	// warm-up before the capture uploads it.
	f, err := c.invFreq(r.InvFreq)
	if err != nil {
		return wrap(op, err, "head dim %d (a capture cannot upload a new frequency table: issue the step once before capturing)", hd)
	}
	st.wrote(x)
	return wrap(op, cgo.RoPE(st.s, dt, ps[0], x.Cols, x.Rows, x.Cols/hd, hd, pp, f, ropeStyle(r)), "x %s, head dim %d", x, hd)
}

func ropeStyle(r *backend.RoPE) int {
	if r.Style == backend.RopeRotateHalf {
		return cgo.RopeRotateHalf
	}
	return cgo.RopePairs
}

// indexBytes is the scratch vireo_kv_index fills for n rows: slots [n], seqs [n][4],
// row_seq [n], int32; attention's workspace follows at the next 256 bytes.
func indexBytes(n int) int { return (24*n + 255) / 256 * 256 }

// noteCapture records, while st captures, what the step's paged ops are shaped for.
func (st *stream) noteCapture(blockSize, maxCtx int) {
	if !st.capturing {
		return
	}
	switch st.capBlockSize {
	case 0:
		st.capBlockSize = blockSize
	case blockSize, -1:
	default:
		st.capBlockSize = -1
	}
	if maxCtx > 0 && (st.capMaxCtx == 0 || maxCtx < st.capMaxCtx) {
		st.capMaxCtx = maxCtx
	}
}

// kvIndex checks at for n rows and launches vireo_kv_index into the stream's scratch
// (of at least indexBytes(n)+extra bytes): it returns the scratch, the addresses of its
// parts and of the tables.
func (c *Backend) kvIndex(op, name string, st *stream, kv *backend.KVCache, at *backend.KVIndex, n, maxCtx, extra int) (sc, slots, seqs, rowSeq, tables unsafe.Pointer, err error) {
	if at == nil {
		return nil, nil, nil, nil, nil, backend.ShapeError(name, "no KV index")
	}
	pp, err := i32Dev(name, "pos", at.Pos, 1, n)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	sp, err := i32Dev(name, "seq", at.Seq, 1, n)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	tp, err := i32Dev(name, "tables", at.Tables, at.Tables.Rows, -1)
	if err != nil {
		return nil, nil, nil, nil, nil, err
	}
	nt, w := at.Tables.Rows, at.Tables.Cols
	if nt <= 0 || w <= 0 || kv.BlockSize <= 0 {
		return nil, nil, nil, nil, nil, backend.ShapeError(name, "tables %s, block size %d", at.Tables, kv.BlockSize)
	}
	st.noteCapture(kv.BlockSize, maxCtx)
	if sc, err = c.scratchBytes(st, indexBytes(n)+extra); err != nil {
		return nil, nil, nil, nil, nil, wrap(op, err, "index metadata of %d rows", n)
	}
	slots, seqs, rowSeq = sc, unsafe.Add(sc, 4*n), unsafe.Add(sc, 20*n)
	if err := cgo.KVIndex(st.s, pp, sp, tp, n, nt, w, kv.BlockSize, kv.Blocks, maxCtx, slots, seqs, rowSeq); err != nil {
		return nil, nil, nil, nil, nil, wrap(op, err, "%d rows, tables %s, block size %d, %d blocks, max context %d", n, at.Tables, kv.BlockSize, kv.Blocks, maxCtx)
	}
	return sc, slots, seqs, rowSeq, tp, nil
}

// WriteKV stores k, v row i at the slot at gives, skipping idle rows and rows whose
// index data is out of range (backend.KVIndex).
func (c *Backend) WriteKV(s backend.Stream, kv *backend.KVCache, layer int, k, v backend.Tensor, at *backend.KVIndex) error {
	const op = "cuda write kv"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	kp, vp, kc, vc, dt, err := layerActs(op, "write kv", kv, layer, k, v)
	if err != nil {
		return err
	}
	n, hd, nkv, bs := k.Rows, kv.HeadDim, kv.KVHeads, kv.BlockSize
	if k.Cols != nkv*hd || v.Cols != nkv*hd || v.Rows != n {
		return backend.ShapeError("write kv", "k %s, v %s, kv heads %d × head dim %d", k, v, nkv, hd)
	}
	if n == 0 {
		return nil
	}
	_, slots, _, _, _, err := c.kvIndex(op, "write kv", st, kv, at, n, 0, 0)
	if err != nil {
		return err
	}
	st.wrote(kv.K[layer], kv.V[layer])
	return wrap(op, cgo.WriteKV(st.s, dt, kc, vc, kp, vp, k.Cols, v.Cols, slots, n, nkv, hd, bs, kv.Blocks),
		"k %s, v %s, layer %d", k, v, layer)
}

// Attention: row i attends to positions 0..pos[i] of its sequence; idle rows and rows
// whose index data is out of range are zeros (backend.KVIndex). at.MaxCtx fixes the
// kernel's split over the context (a capture keeps it).
func (c *Backend) Attention(s backend.Stream, out, q backend.Tensor, kv *backend.KVCache, layer int, at *backend.KVIndex, h *backend.AttnHeads) error {
	const op = "cuda attention"
	st, err := c.str(op, s)
	if err != nil {
		return err
	}
	o, qp, kc, vc, dt, err := layerActs(op, "attention", kv, layer, out, q)
	if err != nil {
		return err
	}
	if err := attnShape("attention", out, q, kv, h); err != nil {
		return err
	}
	if at == nil || at.MaxCtx <= 0 || at.MaxCtx > math.MaxInt32 {
		return backend.ShapeError("attention", "KV index given %v, max context", at != nil)
	}
	nh, nkv, hd, bs, n := h.Heads, h.KVHeads, h.HeadDim, kv.BlockSize, q.Rows
	if n == 0 {
		return nil
	}
	if c.opt.Kernels != KernelsV1 {
		return c.attention2(op, st, out, q, o, qp, kc, vc, dt, kv, at, h)
	}
	wsBytes, err := cgo.AttentionWorkspaceBytes(n, nh, hd, at.MaxCtx)
	if err != nil {
		return wrap(op, err, "%d rows, max context %d", n, at.MaxCtx)
	}
	sc, _, seqs, rowSeq, tables, err := c.kvIndex(op, "attention", st, kv, at, n, at.MaxCtx, wsBytes)
	if err != nil {
		return err
	}
	var ws unsafe.Pointer
	if wsBytes > 0 {
		ws = unsafe.Add(sc, indexBytes(n))
	}
	st.wrote(out)
	return cgo.Attention(st.s, &cgo.AttentionArgs{
		DType: dt, Out: o, Q: qp, LdOut: out.Cols, LdQ: q.Cols, KCache: kc, VCache: vc,
		Seqs: seqs, RowSeq: rowSeq, BlockTables: tables,
		NRows: n, NSeqs: n, Heads: nh, KVHeads: nkv, HeadDim: hd, BlockSize: bs, MaxCtx: at.MaxCtx,
		Scale: h.Scale, Workspace: ws, WorkspaceBytes: wsBytes,
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

// GatherRows copies x row rows[i] to out row i, zeros for rows outside [0, x.Rows).
func (c *Backend) GatherRows(s backend.Stream, out, x, rows backend.Tensor) error {
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
	if out.Cols != x.Cols {
		return backend.ShapeError("gather rows", "out %s, x %s", out, x)
	}
	rp, err := i32Dev("gather rows", "rows", rows, 1, out.Rows)
	if err != nil {
		return err
	}
	if out.Rows == 0 {
		return nil
	}
	st.wrote(out)
	return cgo.GatherRows(st.s, o, xp, rp, out.Rows, x.Cols, x.Rows, xb.dt.Size())
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
func attnShape(name string, out, q backend.Tensor, kv *backend.KVCache, h *backend.AttnHeads) error {
	if h == nil {
		return backend.ShapeError(name, "no heads")
	}
	nh, nkv, hd := h.Heads, h.KVHeads, h.HeadDim
	if nkv != kv.KVHeads || hd != kv.HeadDim || nkv <= 0 || nh%nkv != 0 || q.Cols != nh*hd || out.Cols != q.Cols || out.Rows != q.Rows {
		return backend.ShapeError(name, "out %s, q %s, heads %d, kv heads %d (cache %d), head dim %d (cache %d)", out, q, nh, nkv, kv.KVHeads, hd, kv.HeadDim)
	}
	if hd > 256 {
		return backend.ShapeError(name, "head dim %d (the CUDA kernel takes up to 256)", hd)
	}
	return nil
}
