// Package loratest writes random LoRA adapters for tests, in PEFT's directory layout
// (adapter_config.json, adapter_model.safetensors, q/k rows in Hugging Face's
// rotate-half order) and as llama.cpp GGUF adapters (adjacent-pairs order), and keeps
// what it wrote so a test can build its own reference — the base weights with
// scale·B·A merged — without going through runtime/lora.
package loratest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/lora"
)

// Options shape a random adapter. Zero fields take the defaults noted.
type Options struct {
	Rank    int            // default 8
	Alpha   float64        // lora_alpha (default 16)
	RSLoRA  bool           // use_rslora: scale alpha/√r instead of alpha/r
	Targets []lora.Target  // default all seven
	Layers  []int          // default every layer
	Seed    uint64         // the values' seed
	Amp     float32        // values uniform in ±Amp (default 0.05: ΔW a tenth of a synthetic model's weights or so, as a trained adapter's)
	DType   loader.DType   // stored type: loader.F32 (default), F16 or BF16
	Ranks   map[string]int // PEFT rank_pattern, written to the config and used for the matching modules
}

func (o *Options) defaults(c *loader.Config) {
	if o.Rank == 0 {
		o.Rank = 8
	}
	if o.Alpha == 0 {
		o.Alpha = 16
	}
	if o.Targets == nil {
		for t := lora.Target(0); t < lora.NumTargets; t++ {
			o.Targets = append(o.Targets, t)
		}
	}
	if o.Layers == nil {
		for l := 0; l < c.Layers; l++ {
			o.Layers = append(o.Layers, l)
		}
	}
	if o.Amp == 0 {
		o.Amp = 0.05
	}
}

// Matrices are one module as written: A [Rank][In], B [Out][Rank] in the file's row
// order, the values after rounding to the stored type, and the scale the format means.
type Matrices struct {
	Rank, Out, In int
	Scale         float64
	A, B          []float32
}

// Made is what a writer wrote.
type Made struct {
	// Order is the row order of B's q and k rows in the file: RopeRotateHalf for PEFT,
	// RopePairs for GGUF.
	Order   loader.RopeStyle
	Heads   int
	KVHeads int
	HeadDim int
	Modules map[[2]int]*Matrices // by (layer, target)
}

// Delta is scale·B·A of (layer, t) as [out][in] in float64, its rows in the order of a
// checkpoint whose q/k rows are for style (nil when the adapter does not modify it).
func (m *Made) Delta(layer int, t lora.Target, style loader.RopeStyle) []float64 {
	mm := m.Modules[[2]int{layer, int(t)}]
	if mm == nil {
		return nil
	}
	d := make([]float64, mm.Out*mm.In)
	for o := 0; o < mm.Out; o++ {
		for r := 0; r < mm.Rank; r++ {
			b := mm.Scale * float64(mm.B[o*mm.Rank+r])
			for k := 0; k < mm.In; k++ {
				d[o*mm.In+k] += b * float64(mm.A[r*mm.In+k])
			}
		}
	}
	if (t == lora.TargetQ || t == lora.TargetK) && style != m.Order {
		heads := m.Heads
		if t == lora.TargetK {
			heads = m.KVHeads
		}
		d = permuteRows(d, heads, m.HeadDim, mm.In, m.Order == loader.RopeRotateHalf)
	}
	return d
}

// permuteRows moves rows of [heads·headDim][in] between HF's rotate-half order (row
// h·hd + j·hd/2 + i) and GGUF's pairs order (row h·hd + 2i + j), written out here rather
// than taken from the code under test.
func permuteRows(w []float64, heads, headDim, in int, fromRotateHalf bool) []float64 {
	out := make([]float64, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < headDim/2; i++ {
			for j := 0; j < 2; j++ {
				rh := (h*headDim + j*headDim/2 + i) * in
				pr := (h*headDim + 2*i + j) * in
				if fromRotateHalf {
					copy(out[pr:pr+in], w[rh:rh+in])
				} else {
					copy(out[rh:rh+in], w[pr:pr+in])
				}
			}
		}
	}
	return out
}

// splitmix64 is the values' generator.
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// random draws n values uniform in ±amp, rounded to dt.
func random(seed *uint64, n int, amp float32, dt loader.DType) ([]float32, *loader.Tensor, error) {
	v := make([]float32, n)
	for i := range v {
		u := float32(splitmix64(seed)>>40) / float32(1<<24)
		v[i] = (2*u - 1) * amp
	}
	t, err := loader.NewTensor("", dt, []int{n}, v)
	if err != nil {
		return nil, nil, err
	}
	r, err := t.Float32()
	if err != nil {
		return nil, nil, err
	}
	return append([]float32(nil), r...), t, nil
}

// draw makes every module's matrices; rank gives a module's rank.
func draw(c *loader.Config, o *Options, rank func(layer int, t lora.Target) int, scale func(r int) float64) (*Made, error) {
	m := &Made{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Modules: map[[2]int]*Matrices{}}
	seed := o.Seed*0x9e3779b97f4a7c15 + 1
	for _, l := range o.Layers {
		for _, t := range o.Targets {
			out, in := lora.Shape(c, t)
			r := rank(l, t)
			a, _, err := random(&seed, r*in, o.Amp, o.DType)
			if err != nil {
				return nil, err
			}
			b, _, err := random(&seed, out*r, o.Amp, o.DType)
			if err != nil {
				return nil, err
			}
			m.Modules[[2]int{l, int(t)}] = &Matrices{Rank: r, Out: out, In: in, Scale: scale(r), A: a, B: b}
		}
	}
	return m, nil
}

var peftNames = map[lora.Target]string{
	lora.TargetQ: "self_attn.q_proj", lora.TargetK: "self_attn.k_proj", lora.TargetV: "self_attn.v_proj",
	lora.TargetO: "self_attn.o_proj", lora.TargetGate: "mlp.gate_proj", lora.TargetUp: "mlp.up_proj",
	lora.TargetDown: "mlp.down_proj",
}

var ggufNames = map[lora.Target]string{
	lora.TargetQ: "attn_q", lora.TargetK: "attn_k", lora.TargetV: "attn_v", lora.TargetO: "attn_output",
	lora.TargetGate: "ffn_gate", lora.TargetUp: "ffn_up", lora.TargetDown: "ffn_down",
}

// PEFTModule is PEFT's module name of (layer, t) in a Llama model, without the
// base_model.model. prefix ("model.layers.3.self_attn.q_proj").
func PEFTModule(layer int, t lora.Target) string {
	return fmt.Sprintf("model.layers.%d.%s", layer, peftNames[t])
}

// WritePEFT writes a random PEFT adapter directory for a base of configuration c into
// dir (created if needed) and returns what it wrote. extra, when set, is merged into
// adapter_config.json last (to write bad configurations).
func WritePEFT(dir string, c *loader.Config, o Options, extra map[string]any) (*Made, error) {
	o.defaults(c)
	rank := func(layer int, t lora.Target) int {
		if r, ok := o.Ranks[PEFTModule(layer, t)]; ok {
			return r
		}
		if r, ok := o.Ranks[t.String()]; ok {
			return r
		}
		return o.Rank
	}
	scale := func(r int) float64 {
		if o.RSLoRA {
			return o.Alpha / math.Sqrt(float64(r))
		}
		return o.Alpha / float64(r)
	}
	m, err := draw(c, &o, rank, scale)
	if err != nil {
		return nil, err
	}
	m.Order = loader.RopeRotateHalf
	var tensors []*loader.Tensor
	var targets []string
	seen := map[lora.Target]bool{}
	for _, l := range o.Layers {
		for _, t := range o.Targets {
			mm := m.Modules[[2]int{l, int(t)}]
			base := "base_model.model." + PEFTModule(l, t)
			ta, err := loader.NewTensor(base+".lora_A.weight", o.DType, []int{mm.Rank, mm.In}, mm.A)
			if err != nil {
				return nil, err
			}
			tb, err := loader.NewTensor(base+".lora_B.weight", o.DType, []int{mm.Out, mm.Rank}, mm.B)
			if err != nil {
				return nil, err
			}
			tensors = append(tensors, ta, tb)
			if !seen[t] {
				seen[t] = true
				targets = append(targets, t.String())
			}
		}
	}
	cfg := map[string]any{
		"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": o.Rank, "lora_alpha": o.Alpha,
		"use_rslora": o.RSLoRA, "use_dora": false, "fan_in_fan_out": false, "bias": "none",
		"lora_dropout": 0.05, "target_modules": targets, "modules_to_save": nil,
		"base_model_name_or_path": "vireo-test-base", "inference_mode": true,
		"rank_pattern": map[string]int{}, "alpha_pattern": map[string]float64{},
	}
	if o.Ranks != nil {
		cfg["rank_pattern"] = o.Ranks
	}
	for k, v := range extra {
		cfg[k] = v
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), js, 0o644); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := loader.WriteSafetensors(&buf, tensors); err != nil {
		return nil, err
	}
	return m, os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), buf.Bytes(), 0o644)
}

// WriteGGUF writes a random llama.cpp GGUF adapter for a base of configuration c to
// path and returns what it wrote (scale alpha/r; Options.RSLoRA and Ranks are not
// GGUF's). extra metadata entries are appended (to write bad files).
func WriteGGUF(path string, c *loader.Config, o Options, extra ...loader.KV) (*Made, error) {
	o.defaults(c)
	m, err := draw(c, &o, func(int, lora.Target) int { return o.Rank }, func(r int) float64 { return o.Alpha / float64(r) })
	if err != nil {
		return nil, err
	}
	m.Order = loader.RopePairs
	arch := c.Arch
	if arch == "" {
		arch = "llama"
	}
	meta := []loader.KV{
		{Key: "general.architecture", Value: arch}, {Key: "general.type", Value: "adapter"},
		{Key: "adapter.type", Value: "lora"}, {Key: "adapter.lora.alpha", Value: float32(o.Alpha)},
	}
	meta = append(meta, extra...)
	var tensors []*loader.Tensor
	for _, l := range o.Layers {
		for _, t := range o.Targets {
			mm := m.Modules[[2]int{l, int(t)}]
			base := fmt.Sprintf("blk.%d.%s.weight", l, ggufNames[t])
			ta, err := loader.NewTensor(base+".lora_a", o.DType, []int{mm.Rank, mm.In}, mm.A)
			if err != nil {
				return nil, err
			}
			tb, err := loader.NewTensor(base+".lora_b", o.DType, []int{mm.Out, mm.Rank}, mm.B)
			if err != nil {
				return nil, err
			}
			tensors = append(tensors, ta, tb)
		}
	}
	var buf bytes.Buffer
	if err := loader.WriteGGUF(&buf, meta, tensors); err != nil {
		return nil, err
	}
	return m, os.WriteFile(path, buf.Bytes(), 0o644)
}
