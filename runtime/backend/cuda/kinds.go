//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// The weight kinds beyond dense (backend/kinds.go).
//
// LowRank: both factors are dense weights of this backend; MatMul runs x·Aᵀ into the
// stream's scratch (past the room the inner int8 path quantizes activations into) and
// then that times Bᵀ, with the epilogue.
//
// Sparse24: with Options.Sparse24 the kept values (the activation dtype, or int8 with row
// scales) and the metadata stay compressed and MatMul runs vireo_matmul_sp24 (a SIMT
// kernel for decode, mma.sp for prefill). Those kernels have not run on a GPU yet, so by
// default LoadWeight expands a 2:4 weight to its dense masked matrix (the same products,
// none of the savings) and says so once in the log.

// loadKind loads a validated LowRank or Sparse24 host weight.
func (c *Backend) loadKind(h *backend.HostWeight) (*backend.Weight, error) {
	switch h.Kind {
	case backend.LowRank:
		a, err := c.LoadWeight(h.A)
		if err != nil {
			return nil, fmt.Errorf("cuda load weight %q factor A: %w", h.Name, err)
		}
		b, err := c.LoadWeight(h.B)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("cuda load weight %q factor B: %w", h.Name, err), c.FreeWeight(a))
		}
		return &backend.Weight{Name: h.Name, Out: h.Out, In: h.In, Kind: backend.LowRank, A: a, B: b}, nil
	case backend.Sparse24:
		if !c.opt.Sparse24 {
			c.noteSparse24Dense()
			d, _ := backend.DenseFromSparse24(h)
			return c.LoadWeight(d)
		}
		return c.loadSparse24(h)
	}
	return nil, fmt.Errorf("cuda load weight %q: kind %s not supported", h.Name, h.Kind)
}

func (c *Backend) loadSparse24(h *backend.HostWeight) (w *backend.Weight, err error) {
	n := h.Out * h.In / 2
	ms := backend.Sparse24MetaStride(h.In)
	w = &backend.Weight{Name: h.Name, Out: h.Out, In: h.In, Kind: backend.Sparse24}
	var bufs []*devBuf
	defer func() {
		if err != nil {
			for _, b := range bufs {
				err = errors.Join(err, c.free(b))
			}
			w = nil
		}
	}()
	alloc := func(dt backend.DType, rows, cols int) (backend.Tensor, error) {
		b, err := c.alloc(dt, rows*cols)
		if err != nil {
			return backend.Tensor{}, fmt.Errorf("cuda load 2:4 weight %q [%d][%d]: %w", h.Name, h.Out, h.In, err)
		}
		bufs = append(bufs, b)
		return backend.Tensor{DType: dt, Rows: rows, Cols: cols, Buf: b}, nil
	}
	if h.F32 != nil {
		if w.W, err = alloc(c.act, h.Out, h.In/2); err != nil {
			return nil, err
		}
		if err = c.Upload(w.W, backend.Bytes(h.F32[:n]), backend.F32); err != nil {
			return nil, err
		}
	} else {
		if w.W, err = alloc(backend.I8, h.Out, h.In/2); err != nil {
			return nil, err
		}
		if w.Scales, err = alloc(backend.F32, 1, h.Out); err != nil {
			return nil, err
		}
		if err = c.Upload(w.W, backend.Bytes(h.I8[:n]), backend.I8); err != nil {
			return nil, err
		}
		if err = c.Upload(w.Scales, backend.Bytes(h.Scales[:h.Out]), backend.F32); err != nil {
			return nil, err
		}
	}
	if w.Meta, err = alloc(backend.I8, h.Out, ms); err != nil {
		return nil, err
	}
	if err = c.Upload(w.Meta, h.Meta[:h.Out*ms], backend.I8); err != nil {
		return nil, err
	}
	return w, nil
}

// noteSparse24Dense logs, once, that 2:4 weights are expanded to dense.
func (c *Backend) noteSparse24Dense() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sparse24Noted {
		return
	}
	c.sparse24Noted = true
	c.opt.Log.Info("cuda: expanding 2:4 sparse weights to dense at load: the 2:4 kernels are off until a GPU run verifies them (cuda.Options.Sparse24)")
}

// freeKind frees a LowRank or Sparse24 weight.
func (c *Backend) freeKind(w *backend.Weight) error {
	switch w.Kind {
	case backend.LowRank:
		var errs []error
		for _, f := range []*backend.Weight{w.A, w.B} {
			if f != nil {
				errs = append(errs, c.FreeWeight(f))
			}
		}
		return errors.Join(errs...)
	case backend.Sparse24:
		errs := []error{c.Free(w.W), c.Free(w.Meta)}
		if w.Scales.Buf != nil {
			errs = append(errs, c.Free(w.Scales))
		}
		return errors.Join(errs...)
	case backend.W4A16:
		errs := []error{c.Free(w.W), c.Free(w.Scales)}
		if w.Meta.Buf != nil {
			errs = append(errs, c.Free(w.Meta))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("cuda free weight %q: kind %s", w.Name, w.Kind)
}

// matmulKind is MatMul for LowRank and Sparse24 weights (shapes checked by MatMul).
func (c *Backend) matmulKind(st *stream, s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	const op = "cuda matmul"
	switch w.Kind {
	case backend.LowRank:
		if w.A == nil || w.B == nil || w.A.In != w.In || w.B.Out != w.Out || w.A.Out != w.B.In {
			return fmt.Errorf("%s: low-rank weight %q has inconsistent factors", op, w.Name)
		}
		n, r := x.Rows, w.A.Out
		// The inner products may quantize their input into the scratch's start (int8
		// factors of a prompt call, Options.W8A8): the intermediate goes past that room.
		room := align256(n*max(w.In, r)) + align256(4*n)
		tmpBytes := n * r * c.act.Size()
		sc, err := c.scratchBytes(st, room+tmpBytes)
		if err != nil {
			return wrap(op, err, "low-rank weight %q scratch", w.Name)
		}
		tmp := backend.Tensor{DType: c.act, Rows: n, Cols: r, Buf: &devBuf{ptr: unsafe.Add(sc, room), n: n * r, dt: c.act}}
		if err := c.MatMul(s, tmp, x, w.A, backend.Epilogue{Prompt: epi.Prompt}); err != nil {
			return fmt.Errorf("low-rank %q factor A: %w", w.Name, err)
		}
		if err := c.MatMul(s, out, tmp, w.B, epi); err != nil {
			return fmt.Errorf("low-rank %q factor B: %w", w.Name, err)
		}
		return nil
	case backend.Sparse24:
		return c.matmulSparse24(st, out, x, w, epi)
	case backend.W4A16:
		return c.matmulW4(st, []backend.Tensor{out}, x, w, epi)
	}
	return fmt.Errorf("%s: weight %q has kind %s, which the CUDA backend does not run", op, w.Name, w.Kind)
}

func align256(n int) int { return (n + 255) / 256 * 256 }

func (c *Backend) matmulSparse24(st *stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	const op = "cuda matmul 2:4"
	if epi.SiLUGLU {
		return fmt.Errorf("%s: weight %q: the SiLU-GLU epilogue on 2:4 weights: not supported", op, w.Name)
	}
	ps, dt, err := acts(op, out, x)
	if err != nil {
		return err
	}
	wp, wb, err := dev(op, w.W)
	if err != nil {
		return err
	}
	mp, mb, err := dev(op, w.Meta)
	if err != nil {
		return err
	}
	ms := backend.Sparse24MetaStride(w.In)
	if w.In%4 != 0 || w.W.Rows*w.W.Cols != w.Out*w.In/2 || w.Meta.Rows*w.Meta.Cols != w.Out*ms || mb.dt != backend.I8 {
		return backend.ShapeError("matmul", "2:4 weight %q [%d][%d] stored as %s with metadata %s", w.Name, w.Out, w.In, w.W, w.Meta)
	}
	n := x.Rows
	if n == 0 {
		return nil
	}
	st.wrote(out)
	a := &cgo.Sp24Args{DType: dt, Out: ps[0], LdOut: out.Cols, X: ps[1], LdX: x.Cols, WDType: cgo.DType(wb.dt), W: wp, Meta: mp,
		N: n, NOut: w.Out, K: w.In, Epi: cgo.EpiNone, Var: c.mmVariant}
	if epi.Accumulate {
		a.Epi = cgo.EpiAccumulate
	}
	switch wb.dt {
	case backend.I8:
		if a.WScale, _, err = dev(op, w.Scales); err != nil {
			return err
		}
		if c.w8a8(epi) && w.In%64 == 0 && c.mmVariant != cgo.MMSIMT {
			qBytes := align256(n * w.In)
			sc, err := c.scratchBytes(st, qBytes+4*n)
			if err != nil {
				return wrap(op, err, "weight %q, %s", w.Name, a)
			}
			q, qs := sc, unsafe.Add(sc, qBytes)
			if err := cgo.QuantizeRows(st.s, a.DType, q, qs, a.X, a.LdX, n, w.In); err != nil {
				return wrap(op, err, "quantizing x for weight %q, %s", w.Name, a)
			}
			a.X, a.XScale, a.LdX = q, qs, w.In
		}
	case backend.DType(dt):
	default:
		return fmt.Errorf("%s: weight %q stored as %s with %s activations: not supported", op, w.Name, wb.dt, backend.DType(dt))
	}
	return wrap(op, cgo.MatMulSp24(st.s, a), "weight %q, %s", w.Name, a)
}
