package loader

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// Options control Open.
type Options struct {
	// TokenizerPath is the llama2.c tokenizer.bin for a llama2.c checkpoint. Empty: look
	// for tok<vocab>.bin, then tokenizer.bin, beside the model. Ignored for GGUF files and
	// HF directories, which carry their tokenizer.
	TokenizerPath string
}

// Open maps the checkpoint at path read-only and loads it: a Hugging Face model
// directory (config.json, safetensors weights, tokenizer.json) when path is a directory,
// GGUF when the file starts with the "GGUF" magic, otherwise a legacy llama2.c .bin.
// Errors start with the path, once.
func Open(path string, opt Options) (*Checkpoint, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		ck, err := openHFDir(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return ck, nil
	}
	data, release, err := mapFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, withoutPath(err, path))
	}
	ck, err := load(path, data, opt)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ck.Path = path
	ck.close = release
	return ck, nil
}

// withoutPath drops the path from an os error about that same path, which the caller
// names already.
func withoutPath(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return pe.Err
	}
	return err
}

// ErrNotModel is wrapped by Open's error for a file that is no checkpoint format.
var ErrNotModel = errors.New("not a model file (expected GGUF, llama2.c .bin or a Hugging Face directory)")

func load(path string, data []byte, opt Options) (*Checkpoint, error) {
	switch {
	case bytes.HasPrefix(data, []byte("GGUF")):
		return LoadGGUF(data)
	case strings.EqualFold(filepath.Ext(path), ".gguf"):
		if len(data) < 4 {
			return nil, fmt.Errorf("gguf: truncated: %d bytes, too short for the magic", len(data))
		}
		return nil, fmt.Errorf("%w: a .gguf file that starts with %q, not \"GGUF\"", ErrNotModel, data[:4])
	}
	// llama2.c files have no magic: a file that is not GGUF is read as one, and one
	// whose header does not parse is no model at all, unless it is named .bin.
	cfg, tensors, err := parseLlama2C(data)
	if err != nil {
		if strings.EqualFold(filepath.Ext(path), ".bin") {
			return nil, fmt.Errorf("%w: read as a llama2.c .bin: %w", ErrNotModel, err)
		}
		return nil, ErrNotModel
	}
	tokPath, err := findTokenizer(path, opt.TokenizerPath, cfg.VocabSize)
	if err != nil {
		return nil, err
	}
	vocab, err := readLlama2CVocab(tokPath, cfg.VocabSize)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Format: "llama2c", Config: cfg, Tensors: tensors, Vocab: vocab}, nil
}

// ErrNoTokenizer is wrapped by Open's error when a llama2.c checkpoint has no
// tokenizer file.
var ErrNoTokenizer = errors.New("no tokenizer file")

// Canonical returns the name and expected shape of every tensor a config implies, in
// a fixed order; output.weight is included only when untied.
func Canonical(c Config) (names []string, shapes map[string][]int) {
	shapes = map[string][]int{}
	add := func(name string, shape ...int) {
		names = append(names, name)
		shapes[name] = shape
	}
	q, kv := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	add("token_embd.weight", c.VocabSize, c.Dim)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", c.Dim)
		add(p+"attn_q.weight", q, c.Dim)
		add(p+"attn_k.weight", kv, c.Dim)
		add(p+"attn_v.weight", kv, c.Dim)
		add(p+"attn_output.weight", c.Dim, q)
		add(p+"ffn_norm.weight", c.Dim)
		add(p+"ffn_gate.weight", c.HiddenDim, c.Dim)
		add(p+"ffn_up.weight", c.HiddenDim, c.Dim)
		add(p+"ffn_down.weight", c.Dim, c.HiddenDim)
	}
	add("output_norm.weight", c.Dim)
	if !c.TiedEmbeddings {
		add("output.weight", c.VocabSize, c.Dim)
	}
	return names, shapes
}

// maxConfigValue bounds every Config size so products of two stay far from overflow
// (and the constant fits a 32-bit int).
const maxConfigValue = 1 << 30

// validate checks that the hyper-parameters are plausible.
func (c Config) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{
		{"dim", c.Dim}, {"hidden_dim", c.HiddenDim}, {"n_layers", c.Layers}, {"n_heads", c.Heads},
		{"n_kv_heads", c.KVHeads}, {"head_dim", c.HeadDim}, {"vocab_size", c.VocabSize}, {"seq_len", c.MaxSeqLen},
	} {
		if f.v <= 0 {
			return fmt.Errorf("implausible config: %s is %d (must be positive)", f.name, f.v)
		}
		if f.v >= maxConfigValue {
			return fmt.Errorf("implausible config: %s is %d (too large)", f.name, f.v)
		}
	}
	if c.VocabSize > sampling.MaxVocab {
		return fmt.Errorf("vocab_size %d exceeds the sampler's limit of %d tokens", c.VocabSize, sampling.MaxVocab)
	}
	if c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("implausible config: n_kv_heads %d does not divide n_heads %d", c.KVHeads, c.Heads)
	}
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("implausible config: head_dim %d is odd (RoPE rotates pairs)", c.HeadDim)
	}
	if c.NormEps <= 0 || c.NormEps != c.NormEps {
		return fmt.Errorf("implausible config: RMS norm epsilon %g", c.NormEps)
	}
	if !(c.RopeTheta > 0) {
		return fmt.Errorf("implausible config: rope theta %g", c.RopeTheta)
	}
	return nil
}

// checkTensors verifies that every tensor the config implies is present with its shape.
func checkTensors(c Config, tensors map[string]*Tensor) error {
	names, shapes := Canonical(c)
	for _, name := range names {
		if sh := shapes[name]; len(sh) == 2 && compressible(name) {
			if _, err := Matrix(tensors, name, sh[0], sh[1]); err != nil {
				return err
			}
			continue
		}
		t, ok := tensors[name]
		if !ok {
			return fmt.Errorf("missing tensor %q", name)
		}
		if !slices.Equal(t.Shape, shapes[name]) {
			return fmt.Errorf("tensor %q has shape %v, expected %v from the config", name, t.Shape, shapes[name])
		}
	}
	return nil
}
