package cli

import (
	"errors"
	"flag"
	"strings"

	"github.com/vireo-ai/vireo/runtime/model"
)

// Weights is the weight-format flag every command that loads a model takes, as
// --quantization (vLLM's name) and --weights (its older name here). The default is
// auto: the checkpoint's own precision.
type Weights struct {
	T model.WeightType
	// Mmap is --mmap: model.Options.KeepMapped.
	Mmap bool
}

// WeightsHelp documents the flag's values.
const WeightsHelp = "how the weights are held: auto (the checkpoint's own precision: F32, F16 and BF16 " +
	"tensors run as f32 on the CPU and 16-bit on CUDA; GGUF block types Q4_0 ... Q6_K and Q8_0 run natively in " +
	"their own type on the CPU, as llama.cpp runs them; every block type on CUDA becomes int8 with one scale per " +
	"row), int8 (every matrix quantized at load, one scale per row, the embedding/classifier too: about 4x less " +
	"memory than f32, greedy output may differ at near-ties), q8_0 (every matrix as Q8_0 blocks of 32, GGUF's " +
	"layout, with activations quantized per token in the same blocks: W8A8), or f32 (block types dequantized exactly)"

// Register adds --quantization and its alias --weights to fs, both setting w, and --mmap.
func (w *Weights) Register(fs *flag.FlagSet) {
	fs.Var(w, "quantization", WeightsHelp)
	fs.Var(w, "weights", "alias of --quantization")
	fs.BoolVar(&w.Mmap, "mmap", false, "on the CPU, read GGUF block weights in place from the file's mapping, as llama.cpp does by default "+
		"(default: on Linux with transparent huge pages, copy each matrix of 2 MiB or more into memory backed by 2 MiB pages at load, "+
		"releasing the file's pages: decode reads it faster, 13-22% more tokens/s measured on a 1.1B-shaped Q8_0 model)")
}

// Set parses auto (or none), int8, q8_0 or f32.
func (w *Weights) Set(s string) error {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "none" {
		s = "auto"
	}
	t, err := model.ParseWeightType(s)
	if err != nil {
		return errors.New("must be auto, int8, q8_0 or f32")
	}
	w.T = t
	return nil
}

func (w *Weights) String() string {
	if w == nil {
		return model.WeightsAuto.String()
	}
	return w.T.String()
}

// NewWeights is the flag's value with its default, auto.
func NewWeights() *Weights { return &Weights{T: model.WeightsAuto} }
