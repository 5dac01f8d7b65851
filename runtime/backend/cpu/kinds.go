package cpu

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// The weight kinds beyond dense (backend/kinds.go): a low-rank pair runs as two
// matmuls through a scratch row block; a 2:4 weight keeps its kept values and metadata
// (aliasing the host slices, like dense weights) and multiplies with the kern 2:4 dot
// products, which read half the weights.

// loadKind loads a LowRank or Sparse24 host weight (already validated).
func (c *Backend) loadKind(h *backend.HostWeight) (*backend.Weight, error) {
	w := &backend.Weight{Name: h.Name, Out: h.Out, In: h.In, Kind: h.Kind}
	switch h.Kind {
	case backend.LowRank:
		var err error
		if w.A, err = c.LoadWeight(h.A); err != nil {
			return nil, fmt.Errorf("weight %q factor A: %w", h.Name, err)
		}
		if w.B, err = c.LoadWeight(h.B); err != nil {
			return nil, fmt.Errorf("weight %q factor B: %w", h.Name, err)
		}
		return w, nil
	case backend.Sparse24:
		n := h.Out * h.In / 2
		if h.F32 != nil {
			w.W = backend.Tensor{DType: backend.F32, Rows: h.Out, Cols: h.In / 2, Buf: &buf{f32: h.F32[:n]}}
		} else {
			w.W = backend.Tensor{DType: backend.I8, Rows: h.Out, Cols: h.In / 2, Buf: &buf{i8: h.I8[:n]}}
			w.Scales = backend.Tensor{DType: backend.F32, Rows: 1, Cols: h.Out, Buf: &buf{f32: h.Scales[:h.Out]}}
		}
		ms := backend.Sparse24MetaStride(h.In)
		meta := unsafe.Slice((*int8)(unsafe.Pointer(unsafe.SliceData(h.Meta))), h.Out*ms)
		w.Meta = backend.Tensor{DType: backend.I8, Rows: h.Out, Cols: ms, Buf: &buf{i8: meta}}
		return w, nil
	}
	return nil, fmt.Errorf("weight %q: the CPU backend has no %s weights", h.Name, h.Kind)
}

// lowRankScratch holds the low-rank intermediate rows x·Aᵀ.
var lowRankScratch = sync.Pool{New: func() any { return new([]float32) }}

// matmulKind is MatMul for LowRank and Sparse24 weights; o and xs are the checked f32
// views of out and x.
func (c *Backend) matmulKind(s backend.Stream, out, x backend.Tensor, o, xs []float32, w *backend.Weight, epi backend.Epilogue) error {
	switch w.Kind {
	case backend.LowRank:
		if w.A == nil || w.B == nil || w.A.In != w.In || w.B.Out != w.Out || w.A.Out != w.B.In {
			return fmt.Errorf("matmul: low-rank weight %q has inconsistent factors", w.Name)
		}
		r := w.A.Out
		p := lowRankScratch.Get().(*[]float32)
		defer lowRankScratch.Put(p)
		if cap(*p) < x.Rows*r {
			*p = make([]float32, x.Rows*r)
		}
		t := F32((*p)[:x.Rows*r], x.Rows, r)
		if err := c.MatMul(s, t, x, w.A, backend.Epilogue{Prompt: epi.Prompt}); err != nil {
			return fmt.Errorf("low-rank %q factor A: %w", w.Name, err)
		}
		if err := c.MatMul(s, out, t, w.B, epi); err != nil {
			return fmt.Errorf("low-rank %q factor B: %w", w.Name, err)
		}
		return nil
	case backend.Sparse24:
		a, err := sparse24Args(w)
		if err != nil {
			return err
		}
		a.o, a.xs, a.n, a.acc = o, xs, x.Rows, epi.Accumulate
		work := a.n * a.nout * a.in / 2
		if c.chunks(a.nout, work) <= 1 {
			a.run(0, a.nout)
			return nil
		}
		c.parallel(a.nout, 4, work, a.run)
		return nil
	}
	return fmt.Errorf("matmul: weight %q has kind %s, which the CPU backend does not run", w.Name, w.Kind)
}

// sparse24Matmul is a 2:4 product's operands.
type sparse24Matmul struct {
	o, xs, f, sc []float32
	q            []int8
	meta         []byte
	n, in, nout  int
	acc          bool
}

func sparse24Args(w *backend.Weight) (*sparse24Matmul, error) {
	b, ok := w.W.Buf.(*buf)
	mb, mok := w.Meta.Buf.(*buf)
	if !ok || !mok {
		return nil, fmt.Errorf("matmul: 2:4 weight %q is not on the CPU", w.Name)
	}
	ms := backend.Sparse24MetaStride(w.In)
	n := w.Out * w.In / 2
	if w.In%4 != 0 || w.W.Rows*w.W.Cols != n || w.Meta.Rows*w.Meta.Cols != w.Out*ms || mb.i8 == nil {
		return nil, fmt.Errorf("matmul: 2:4 weight %q [%d][%d] stored as %s with metadata %s", w.Name, w.Out, w.In, w.W, w.Meta)
	}
	a := &sparse24Matmul{in: w.In, nout: w.Out}
	m := mb.i8[w.Meta.Off : w.Meta.Off+w.Out*ms]
	a.meta = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m))), len(m))
	switch w.W.DType {
	case backend.F32:
		a.f = b.f32[w.W.Off : w.W.Off+n]
	case backend.I8:
		a.q = b.i8[w.W.Off : w.W.Off+n]
		s, err := f32s("matmul", w.Scales)
		if err != nil {
			return nil, err
		}
		if len(s) < w.Out {
			return nil, fmt.Errorf("matmul: 2:4 weight %q has %d scales for %d rows", w.Name, len(s), w.Out)
		}
		a.sc = s
	default:
		return nil, fmt.Errorf("matmul: 2:4 weight %q has dtype %s; the CPU backend takes f32 or i8", w.Name, w.W.DType)
	}
	return a, nil
}

// run computes output columns [j0, j1) for every row, in blocks of matmulRowBlock
// activation rows (kept in cache while the weight rows stream past).
func (a *sparse24Matmul) run(j0, j1 int) {
	o, xs, n, in, nout := a.o, a.xs, a.n, a.in, a.nout
	half, ms := in/2, backend.Sparse24MetaStride(in)
	var r4 [4]float32
	put := func(i, j int, v float32) {
		if a.q != nil {
			v *= a.sc[j]
		}
		if a.acc {
			o[i*nout+j] += v
		} else {
			o[i*nout+j] = v
		}
	}
	for i0 := 0; i0 < n; i0 += matmulRowBlock {
		i1 := min(i0+matmulRowBlock, n)
		for j := j0; j < j1; j++ {
			meta := a.meta[j*ms : (j+1)*ms]
			i := i0
			for ; i+4 <= i1; i += 4 {
				if a.f != nil {
					kern.Dot24x4(&r4, xs[i*in:], in, in, a.f[j*half:(j+1)*half], meta)
				} else {
					kern.Dot24x4Q8(&r4, xs[i*in:], in, in, a.q[j*half:(j+1)*half], meta)
				}
				for r := range r4 {
					put(i+r, j, r4[r])
				}
			}
			for ; i < i1; i++ {
				if a.f != nil {
					put(i, j, kern.Dot24(xs[i*in:(i+1)*in], a.f[j*half:(j+1)*half], meta))
				} else {
					put(i, j, kern.Dot24Q8(xs[i*in:(i+1)*in], a.q[j*half:(j+1)*half], meta))
				}
			}
		}
	}
}
