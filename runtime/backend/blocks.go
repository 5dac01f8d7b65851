package backend

import "github.com/vireo-ai/vireo/runtime/quant"

// Int8FromBlocks returns the int8 form (symmetric, one scale per output row) of a weight
// whose floats were dequantized from a GGUF block-quantized type (h.Source set, F32
// payload): what a backend without kernels for those types stores, 1 byte per weight
// instead of the 2 its float path would take. Other weights come back as they are, with
// false.
func Int8FromBlocks(h *HostWeight) (*HostWeight, bool) {
	if h.Source == "" || h.F32 == nil {
		return h, false
	}
	q := &HostWeight{Name: h.Name, Out: h.Out, In: h.In, Source: h.Source}
	q.I8, q.Scales = quant.QuantizeRows(h.F32[:h.Out*h.In], h.Out, h.In)
	return q, true
}
