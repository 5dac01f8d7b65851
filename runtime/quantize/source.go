package quantize

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// srcTensor is one tensor of the input.
type srcTensor struct {
	tensorInfo
	raw []byte                    // the stored bytes of a GGUF input (nil otherwise)
	f32 func() ([]float32, error) // the values, dequantized or converted
}

// source is an opened input: its GGUF metadata (in order, without the keys the writer
// sets) and its tensors.
type source struct {
	meta    []loader.KV
	tensors []srcTensor
	hp      hparams
	close   func() error
}

// open reads IN: synthetic:<shape>, a Hugging Face directory, or a GGUF file.
func open(in string) (*source, error) {
	if model.IsSynthetic(in) {
		return openSynthetic(in)
	}
	fi, err := os.Stat(in)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return openHF(in)
	}
	return openGGUF(in)
}

// writerKeys are metadata keys the output gets anew: the quantization's own, and split
// bookkeeping (the output is one file).
var writerKeys = []string{"general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count"}

func openGGUF(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	magic := make([]byte, 4)
	_, err = f.Read(magic)
	f.Close()
	if err != nil || !bytes.Equal(magic, []byte("GGUF")) {
		return nil, fmt.Errorf("%s is not a GGUF file (IN is a GGUF file, a Hugging Face model directory or synthetic:<shape>)", path)
	}
	ck, err := loader.Open(path, loader.Options{})
	if err != nil {
		return nil, err
	}
	g := ck.GGUF
	s := &source{close: ck.Close, hp: hparams{ck.Config.Layers, ck.Config.Heads, ck.Config.KVHeads}}
	for _, k := range g.Keys {
		if !slices.Contains(writerKeys, k) {
			s.meta = append(s.meta, loader.KV{Key: k, Value: g.Metadata[k]})
		}
	}
	for _, t := range g.Tensors {
		s.tensors = append(s.tensors, srcTensor{
			tensorInfo: tensorInfo{name: t.Name, shape: t.Shape, typ: ggml.Type(t.GGMLType)},
			raw:        t.Data,
			f32:        t.Float32,
		})
	}
	return s, nil
}

// checkpointTensors lists a converted checkpoint's tensors in canonical order: 1-D
// tensors are written as F32 (as llama.cpp's converters do), matrices from f32.
func checkpointTensors(c loader.Config, f32 func(name string) ([]float32, error)) []srcTensor {
	names, shapes := loader.Canonical(c)
	var out []srcTensor
	for _, name := range names {
		out = append(out, srcTensor{
			tensorInfo: tensorInfo{name: name, shape: shapes[name], typ: ggml.F32},
			f32:        func() ([]float32, error) { return f32(name) },
		})
	}
	return out
}

func openSynthetic(name string) (*source, error) {
	c, gen, err := model.SyntheticWeights(name)
	if err != nil {
		return nil, err
	}
	meta, err := loader.GGUFMetadata(name, c, tokenizer.SyntheticVocab(c.VocabSize), "")
	if err != nil {
		return nil, err
	}
	return &source{meta: meta, tensors: checkpointTensors(c, gen), hp: hparams{c.Layers, c.Heads, c.KVHeads}, close: func() error { return nil }}, nil
}

// openHF reads a Hugging Face model directory: its tensors with q/k rows put back in
// GGUF's order, Llama 3 RoPE scaling as a rope_freqs tensor, and the tokenizer as GGUF
// metadata.
func openHF(dir string) (*source, error) {
	ck, err := loader.Open(dir, loader.Options{})
	if err != nil {
		return nil, err
	}
	s, err := hfSource(dir, ck)
	if err != nil {
		ck.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return s, nil
}

func hfSource(dir string, ck *loader.Checkpoint) (*source, error) {
	c := ck.Config
	v := ck.Vocab
	if v == nil {
		tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
		if err != nil {
			return nil, err
		}
		cj, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if v, err = tokenizer.HFVocab(tj, cj); err != nil {
			return nil, err
		}
	}
	for _, id := range ck.EOSIDs { // generation_config.json's end-of-sequence ids
		if id != v.EOS && !slices.Contains(v.EOSIDs, id) {
			v.EOSIDs = append(v.EOSIDs, id)
		}
	}
	permuted := c.RopeStyle == loader.RopeRotateHalf
	c.RopeStyle = loader.RopePairs
	freqs := loader.RopeFreqsLlama3(c)
	c.RopeScaling = loader.RopeScaling{}
	name := filepath.Base(filepath.Clean(dir))
	meta, err := loader.GGUFMetadata(name, c, v, ck.ChatTemplate)
	if err != nil {
		return nil, err
	}
	get := func(name string) ([]float32, error) {
		f, err := ck.Tensors[name].Float32()
		if err != nil {
			return nil, err
		}
		switch {
		case permuted && strings.HasSuffix(name, ".attn_q.weight"):
			return loader.PairsFromRotateHalf(f, c.Heads, c.HeadDim, c.Dim), nil
		case permuted && strings.HasSuffix(name, ".attn_k.weight"):
			return loader.PairsFromRotateHalf(f, c.KVHeads, c.HeadDim, c.Dim), nil
		}
		return f, nil
	}
	s := &source{meta: meta, tensors: checkpointTensors(c, get), hp: hparams{c.Layers, c.Heads, c.KVHeads}, close: ck.Close}
	if freqs != nil {
		s.tensors = append(s.tensors, srcTensor{
			tensorInfo: tensorInfo{name: "rope_freqs.weight", shape: []int{len(freqs)}, typ: ggml.F32},
			f32:        func() ([]float32, error) { return freqs, nil },
		})
	}
	return s, nil
}
