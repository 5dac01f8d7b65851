//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/quant/w4"
)

// W4A16 weights (Options.W4A16): GGUF Q4_0 and Q4_K matrices are handed to LoadWeight as
// blocks (backend.BlockLoader), converted on the host to runtime/quant/w4's format (the
// same dequantized values, 4.5 and 4.625 bits per weight) and multiplied by kernels v2's
// W4A16 configurations (matmul2_w4a16.cu). Embedding tables of those types are not
// gathered from W4A16 (backend.BlockGatherer): they stay int8. Q5_K and the other block
// types stay int8 too (LoadWeight logs which). Off by default until GPU run C verifies
// the kernels on a card.

// w4Types are the block types W4A16 converts.
var w4Types = map[backend.DType]ggml.Type{backend.Q4_0: ggml.Q4_0, backend.Q4_K: ggml.Q4_K}

// LoadsBlocks reports the block types LoadWeight takes as blocks: Q4_0 and Q4_K with
// Options.W4A16 and kernels v2, none otherwise.
func (c *Backend) LoadsBlocks(t backend.DType) bool {
	_, ok := w4Types[t]
	return ok && c.opt.W4A16 && c.opt.Kernels == KernelsV2
}

// GathersBlocks: Embed takes no block type (a W4A16 table is not gathered).
func (c *Backend) GathersBlocks(backend.DType) bool { return false }

var (
	_ backend.BlockLoader   = (*Backend)(nil)
	_ backend.BlockGatherer = (*Backend)(nil)
)

// loadW4 converts a block weight to W4A16 and copies it to the device. On failure
// nothing stays allocated.
func (c *Backend) loadW4(h *backend.HostWeight) (w *backend.Weight, err error) {
	gt, ok := w4Types[h.BlockType]
	if !ok || !c.LoadsBlocks(h.BlockType) {
		return nil, fmt.Errorf("cuda load weight %q: %s blocks are not taken (W4A16 converts q4_0 and q4_k, with Options.W4A16 and kernels v2)", h.Name, h.BlockType)
	}
	q, err := w4.FromBlocks(gt, h.Out, h.In, h.Blocks[:h.Out*h.BlockType.RowBytes(h.In)])
	if err != nil {
		return nil, fmt.Errorf("cuda load weight %q: %w", h.Name, err)
	}
	c.noteW4(h.BlockType)
	w = &backend.Weight{Name: h.Name, Out: h.Out, In: h.In, Kind: backend.W4A16}
	var bufs []*devBuf
	defer func() {
		if err != nil {
			for _, b := range bufs {
				err = errors.Join(err, c.free(b))
			}
			w = nil
		}
	}()
	put := func(dt backend.DType, n int, src []byte) (backend.Tensor, error) {
		b, err := c.alloc(dt, n)
		if err != nil {
			return backend.Tensor{}, fmt.Errorf("cuda load w4a16 weight %q [%d][%d]: %w", h.Name, h.Out, h.In, err)
		}
		bufs = append(bufs, b)
		t := backend.Tensor{DType: dt, Rows: 1, Cols: n, Buf: b}
		if err := c.Upload(t, src, dt); err != nil {
			return t, fmt.Errorf("cuda load w4a16 weight %q: %w", h.Name, err)
		}
		return t, nil
	}
	if w.W, err = put(backend.I8, len(q.Q), q.Q); err != nil {
		return nil, err
	}
	w.W.Rows, w.W.Cols = h.Out, h.In/2
	if w.Scales, err = put(backend.F16, len(q.S), backend.Bytes(q.S)); err != nil {
		return nil, err
	}
	if q.Mode == w4.Affine {
		if w.Meta, err = put(backend.I8, len(q.Sub), q.Sub); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// noteW4 logs, once per type, that weights of a GGUF block type run as W4A16.
func (c *Backend) noteW4(t backend.DType) {
	key := "w4a16:" + t.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.blockTypes[key] {
		return
	}
	if c.blockTypes == nil {
		c.blockTypes = map[string]bool{}
	}
	c.blockTypes[key] = true
	c.opt.Log.Info("cuda: GGUF block-quantized weights run as W4A16 (4-bit levels, the file's group scales; cuda.Options.W4A16)",
		zap.String("type", t.String()))
}

// w4Args are a loaded W4A16 weight's device operands and mode (Q4_K-derived when it has
// sub-scales), checked against its shape.
func w4Args(op string, w *backend.Weight) (levels, scales, sub unsafe.Pointer, mode cgo.W4Mode, err error) {
	affine := w.Meta.Buf != nil
	mode, align := cgo.W4Sym, w4.Group
	ns, nsub := w.Out*w.In/w4.Group, 0
	if affine {
		mode, align, ns, nsub = cgo.W4Affine, w4.Super, 2*w.Out*w.In/w4.Super, 2*w.Out*w.In/w4.Group
	}
	if w.In%align != 0 ||
		w.W.Rows*w.W.Cols != w.Out*w.In/2 || w.Scales.Rows*w.Scales.Cols != ns || w.Meta.Rows*w.Meta.Cols != nsub {
		return nil, nil, nil, 0, backend.ShapeError("matmul", "w4a16 weight %q [%d][%d] stored as levels %s, scales %s, sub-scales %s",
			w.Name, w.Out, w.In, w.W, w.Scales, w.Meta)
	}
	if levels, _, err = dev(op, w.W); err != nil {
		return
	}
	if scales, _, err = dev(op, w.Scales); err != nil {
		return
	}
	if affine {
		sub, _, err = dev(op, w.Meta)
	}
	return
}

// matmulW4 is MatMul (and, with sp, MatMulSplit's one launch) for a W4A16 weight:
// kernels v2's W4A16 configurations; shapes checked by the caller.
func (c *Backend) matmulW4(st *stream, outs []backend.Tensor, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	const op = "cuda matmul w4a16"
	ps, dt, err := acts(op, append([]backend.Tensor{x}, outs...)...)
	if err != nil {
		return err
	}
	wp, sp, sub, mode, err := w4Args(op, w)
	if err != nil {
		return err
	}
	if c.opt.Kernels != KernelsV2 || !kmodel.SupportedW4(w.In, x.Cols, mode == cgo.W4Affine) || uintptr(ps[0])%16 != 0 || uintptr(wp)%16 != 0 {
		return fmt.Errorf("%s: weight %q [%d][%d] with x %s: not supported (needs kernels v2, whole groups and 16-byte aligned x rows)",
			op, w.Name, w.Out, w.In, x)
	}
	if x.Rows == 0 {
		return nil
	}
	st.wrote(outs...)
	a := &cgo.MatMulArgs{DType: dt, Out: ps[1], LdOut: outs[0].Cols, X: ps[0], LdX: x.Cols, W: wp,
		N: x.Rows, NOut: w.Out, K: w.In, Epi: cgo.EpiNone}
	if epi.SiLUGLU {
		a.NOut = w.Out / 2
	}
	switch {
	case epi.Accumulate:
		a.Epi = cgo.EpiAccumulate
	case epi.SiLUGLU:
		a.Epi = cgo.EpiSiLUGLU
	}
	m := &cgo.MM2Args{W4Scale: sp, W4Sub: sub, W4Mode: mode}
	if len(outs) > 1 {
		m.Out2, m.LdOut2, m.Col2 = ps[2], outs[1].Cols, outs[0].Cols
		if len(outs) == 3 {
			m.Out3, m.LdOut3, m.Col3 = ps[3], outs[2].Cols, outs[0].Cols+outs[1].Cols
		}
	}
	return c.matmul2Split(st, a, kmodel.W4A16, w.Name, m)
}
