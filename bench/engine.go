package bench

import (
	"fmt"
	"runtime"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
)

// ModelSpec names a model and how its weights are stored.
type ModelSpec struct {
	Path          string `json:"path"` // GGUF, llama2.c .bin or synthetic:<shape>
	TokenizerPath string `json:"tokenizer_path,omitempty"`
	Weights       string `json:"weights"` // auto, f32 or int8
	Int8Embedding bool   `json:"int8_embedding"`
	Threads       int    `json:"threads"` // backend threads (0: GOMAXPROCS)
}

// Options turns the spec into model options.
func (s ModelSpec) Options() (model.Options, error) {
	switch s.Weights {
	case "f32", "":
		if s.Int8Embedding {
			return model.Options{}, fmt.Errorf("int8 embedding needs int8 weights")
		}
		return model.Options{Weights: model.WeightsF32}, nil
	case "int8":
		return model.Options{Weights: model.WeightsInt8, Int8Embedding: s.Int8Embedding}, nil
	case "auto":
		if s.Int8Embedding {
			return model.Options{}, fmt.Errorf("int8 embedding needs int8 weights")
		}
		return model.Options{Weights: model.WeightsAuto}, nil
	}
	return model.Options{}, fmt.Errorf("weights must be auto, f32 or int8, got %q", s.Weights)
}

// Open loads the model on the CPU backend.
func (s ModelSpec) Open() (*llm.Loaded, error) {
	opt, err := s.Options()
	if err != nil {
		return nil, err
	}
	return llm.Open(s.Path, s.TokenizerPath, cpu.New(cpu.Options{Threads: s.Threads}), opt)
}

// ModelInfo describes a loaded model for reports.
type ModelInfo struct {
	ModelSpec
	Dim         int   `json:"dim"`
	Layers      int   `json:"layers"`
	Heads       int   `json:"heads"`
	KVHeads     int   `json:"kv_heads"`
	Vocab       int   `json:"vocab"`
	Context     int   `json:"context"`
	WeightBytes int64 `json:"weight_bytes_per_token"`
	Synthetic   bool  `json:"synthetic"`
}

// InfoOf describes a loaded model.
func InfoOf(s ModelSpec, m *llm.Loaded) ModelInfo {
	c := m.Config
	return ModelInfo{ModelSpec: s, Dim: c.Dim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads, Vocab: c.VocabSize,
		Context: c.MaxSeqLen, WeightBytes: m.WeightBytes, Synthetic: m.Synthetic}
}

// EngineOptions is the part of engine.Options a benchmark sets (JSON-friendly).
type EngineOptions struct {
	MaxNumSeqs          int  `json:"max_num_seqs,omitempty"`
	MaxNumBatchedTokens int  `json:"max_num_batched_tokens,omitempty"`
	PrefillChunk        int  `json:"prefill_chunk,omitempty"`
	PrefillStreams      int  `json:"prefill_streams,omitempty"`
	MaxLongPrefills     int  `json:"max_long_prefills,omitempty"`
	DecodeSteps         int  `json:"decode_steps,omitempty"`
	EnablePrefixCache   bool `json:"enable_prefix_cache,omitempty"`
}

func (o EngineOptions) engine() engine.Options {
	return engine.Options{MaxNumSeqs: o.MaxNumSeqs, MaxNumBatchedTokens: o.MaxNumBatchedTokens, PrefillChunk: o.PrefillChunk,
		PrefillStreams: o.PrefillStreams, MaxLongPrefills: o.MaxLongPrefills, DecodeSteps: o.DecodeSteps, EnablePrefixCache: o.EnablePrefixCache}
}

// Host describes the machine a measurement ran on.
type Host struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	Device     string `json:"device"`
}

// ThisHost describes the current machine (CPU backend).
func ThisHost() Host {
	return Host{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), Device: "cpu"}
}
