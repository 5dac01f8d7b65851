package quantize

import (
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// Input is a model opened as `vireo quantize` reads it, for other tools that rewrite
// tensors (vireo compress): the GGUF metadata to write (the input's, or an HF
// directory's and a synthetic model's converted to GGUF keys), and the tensors in the
// input's order under canonical names, with q/k rows in GGUF order.
type Input struct {
	Meta    []loader.KV
	Tensors []InputTensor
	close   func() error
}

// InputTensor is one tensor of an Input.
type InputTensor struct {
	Name  string
	Shape []int // outermost first
	Type  ggml.Type
	// Raw is the stored bytes of a GGUF input's tensor (nil for converted inputs).
	Raw []byte
	// Float32 returns the values, dequantized or converted.
	Float32 func() ([]float32, error)
}

// OpenInput opens a GGUF file, a Hugging Face model directory or synthetic:<shape>.
// Close releases it.
func OpenInput(path string) (*Input, error) {
	src, err := open(path)
	if err != nil {
		return nil, err
	}
	in := &Input{Meta: src.meta, close: src.close}
	for _, t := range src.tensors {
		in.Tensors = append(in.Tensors, InputTensor{Name: t.name, Shape: t.shape, Type: t.typ, Raw: t.raw, Float32: t.f32})
	}
	return in, nil
}

// Close releases the input's file mapping.
func (in *Input) Close() error { return in.close() }
