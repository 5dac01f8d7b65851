package model

import (
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/quant"
)

// Compressed matrices (vireo compress, loader/compressed.go): a low-rank pair becomes a
// backend.LowRank weight of two factor weights, a 2:4 matrix a backend.Sparse24 weight.
// With int8 weights each factor, and the kept values of a 2:4 row, get their own
// per-row scales: for 2:4 those equal the masked dense row's (its largest magnitude is
// a kept value), so the int8 weights are the ones int8 quantization of the masked
// matrix gives.

// hostMatrix is a float [out][in] matrix as a dense host weight, quantized per row when
// asked.
func hostMatrix(name string, out, in int, f []float32, int8 bool) *backend.HostWeight {
	h := &backend.HostWeight{Name: name, Out: out, In: in}
	if int8 {
		h.I8, h.Scales = quant.QuantizeRows(f, out, in)
	} else {
		h.F32 = f
	}
	return h
}

// lowRank loads W ≈ B·A with A [rank][in] and B [out][rank].
func (b *builder) lowRank(name string, out, in, rank int, a, bf []float32, int8 bool) (*backend.Weight, error) {
	h := &backend.HostWeight{Name: name, Out: out, In: in, Kind: backend.LowRank,
		A: hostMatrix(name+".a", rank, in, a, int8), B: hostMatrix(name+".b", out, rank, bf, int8)}
	return b.load(h)
}

// sparse24 loads a 2:4 matrix from its kept values [out][in/2] and metadata.
func (b *builder) sparse24(name string, out, in int, vals []float32, meta []byte, int8 bool) (*backend.Weight, error) {
	h := &backend.HostWeight{Name: name, Out: out, In: in, Kind: backend.Sparse24, Meta: meta}
	if int8 {
		h.I8, h.Scales = quant.QuantizeRows(vals, out, in/2)
	} else {
		h.F32 = vals
	}
	return b.load(h)
}

func (b *builder) load(h *backend.HostWeight) (*backend.Weight, error) { return b.upload(h) }

// WeightStorageBytes is what a backend weight reads per use: its values, row scales and
// 2:4 metadata, or both factors of a low-rank pair.
func WeightStorageBytes(w *backend.Weight) int64 {
	switch w.Kind {
	case backend.LowRank:
		return WeightStorageBytes(w.A) + WeightStorageBytes(w.B)
	case backend.Sparse24:
		n := int64(w.W.Rows*w.W.Cols*w.W.DType.Size()) + int64(w.Meta.Rows*w.Meta.Cols)
		if w.W.DType == backend.I8 {
			n += 4 * int64(w.Out)
		}
		return n
	}
	return weightBytes(w)
}
