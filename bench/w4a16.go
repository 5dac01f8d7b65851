package bench

import (
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/quant/w4"
)

// w4Weights is the CPU backend holding a model's weights as the CUDA backend does with
// cuda.Options.W4A16: Q4_0 and Q4_K matrices converted to runtime/quant/w4's format
// (whose values it multiplies here in f32, the same values the W4A16 kernels multiply),
// embedding tables of those types and every other block type int8 per row (the model
// converts what a backend does not take as blocks). The audit's "<file> w4a16" variant:
// the quality of W4A16's weights against the file's own dequantized ones ("<file>
// deq-f32"); the GPU's 16-bit activations are not emulated (every variant on the CPU runs
// f32 activations).
type w4Weights struct{ *cpu.Backend }

var w4Types = map[backend.DType]ggml.Type{backend.Q4_0: ggml.Q4_0, backend.Q4_K: ggml.Q4_K}

func (w4Weights) LoadsBlocks(t backend.DType) bool { _, ok := w4Types[t]; return ok }

func (w4Weights) GathersBlocks(backend.DType) bool { return false }

// LoadWeight converts Q4_0/Q4_K blocks to W4A16 and loads its values as f32.
func (b w4Weights) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	gt, ok := w4Types[h.BlockType]
	if h.Blocks == nil || !ok {
		return b.Backend.LoadWeight(h)
	}
	q, err := w4.FromBlocks(gt, h.Out, h.In, h.Blocks[:h.Out*h.BlockType.RowBytes(h.In)])
	if err != nil {
		return nil, fmt.Errorf("w4a16 weight %q: %w", h.Name, err)
	}
	return b.Backend.LoadWeight(&backend.HostWeight{Name: h.Name, Out: h.Out, In: h.In, F32: q.Dequantize()})
}

var (
	_ backend.BlockLoader   = w4Weights{}
	_ backend.BlockGatherer = w4Weights{}
)
