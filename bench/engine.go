package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
)

// ModelSpec names a model and how its weights are stored.
type ModelSpec struct {
	Path          string `json:"path"` // GGUF, llama2.c .bin or synthetic:<shape>
	TokenizerPath string `json:"tokenizer_path,omitempty"`
	Weights       string `json:"weights"` // auto, f32, int8 or q8_0
	// FloatEmbedding keeps the embedding and classifier in f32 with int8 or q8_0
	// weights (model.Options.FloatEmbedding).
	FloatEmbedding bool `json:"float_embedding,omitempty"`
	Threads        int  `json:"threads"` // backend threads (0: GOMAXPROCS)
}

// Options turns the spec into model options.
func (s ModelSpec) Options() (model.Options, error) {
	w := s.Weights
	if w == "" {
		w = "f32"
	}
	wt, err := model.ParseWeightType(w)
	if err != nil {
		return model.Options{}, err
	}
	return model.Options{Weights: wt, FloatEmbedding: s.FloatEmbedding}, nil
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
	// WeightTypes is how the backend held the matrices ("f32 ×36"), what Weights
	// (auto in particular) came to.
	WeightTypes string `json:"weight_types,omitempty"`
}

// Short names the model and its weights for a chart: "stories260K.bin, f32 ×36".
func (m ModelInfo) Short() string {
	w := m.WeightTypes
	if w == "" {
		w = m.Weights + " weights"
	}
	return filepath.Base(m.Path) + ", " + w
}

// InfoOf describes a loaded model.
func InfoOf(s ModelSpec, m *llm.Loaded) ModelInfo {
	c := m.Config
	return ModelInfo{ModelSpec: s, Dim: c.Dim, Layers: c.Layers, Heads: c.Heads, KVHeads: c.KVHeads, Vocab: c.VocabSize,
		Context: c.MaxSeqLen, WeightBytes: m.WeightBytes, Synthetic: m.Synthetic, WeightTypes: m.WeightTypes()}
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
	CPUModel   string `json:"cpu_model,omitempty"` // /proc/cpuinfo's model name
	// LoadAvg is the 1-minute load average when the measurement started and, once
	// End is called, when it ended: other work on the machine skews timings.
	LoadAvg []float64 `json:"load_average,omitempty"`
}

// ThisHost describes the current machine (CPU backend) at the start of a measurement.
func ThisHost() Host {
	h := Host{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion: runtime.Version(), Device: "cpu", CPUModel: cpuModel()}
	if l, ok := loadAvg(); ok {
		h.LoadAvg = []float64{l}
	}
	return h
}

// End records the load average at the end of the measurement.
func (h *Host) End() {
	if l, ok := loadAvg(); ok && len(h.LoadAvg) == 1 {
		h.LoadAvg = append(h.LoadAvg, l)
	}
}

// Machine says in one line what the numbers were measured on: "2 CPUs, Intel(R)
// Xeon(R) Platinum 8480C, linux/amd64, device cpu, load average 1.8-2.1".
func (h Host) Machine() string {
	if h.CPUs == 0 {
		return "a machine the result does not record"
	}
	var parts []string
	cpus := fmt.Sprintf("%d CPUs", h.CPUs)
	if h.GOMAXPROCS != h.CPUs && h.GOMAXPROCS > 0 {
		cpus += fmt.Sprintf(" (GOMAXPROCS %d)", h.GOMAXPROCS)
	}
	parts = append(parts, cpus)
	if h.CPUModel != "" {
		parts = append(parts, h.CPUModel)
	}
	parts = append(parts, h.OS+"/"+h.Arch, "device "+h.Device)
	switch len(h.LoadAvg) {
	case 1:
		parts = append(parts, fmt.Sprintf("load average %.1f at the start", h.LoadAvg[0]))
	case 2:
		parts = append(parts, fmt.Sprintf("load average %.1f at the start, %.1f at the end", h.LoadAvg[0], h.LoadAvg[1]))
	}
	return strings.Join(parts, ", ")
}

// cpuModel is the processor's name from /proc/cpuinfo ("" where there is none).
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

// loadAvg is the 1-minute load average from /proc/loadavg.
func loadAvg() (float64, bool) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	return v, err == nil
}
