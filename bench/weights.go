package bench

import (
	"context"
	"fmt"

	"github.com/vireo-ai/vireo/runtime/engine"
)

// WeightConfig measures decode speed and weight size per weight format on an
// in-process engine, with the same closed-loop workload for each.
type WeightConfig struct {
	Model       ModelSpec `json:"model"` // Weights and Int8Embedding are set per format
	Formats     []string  `json:"formats"`
	Concurrency int       `json:"concurrency"`
	NumPrompts  int       `json:"num_prompts"`
	InputLen    int       `json:"input_len"`
	OutputLen   int       `json:"output_len"`
	Resamples   int       `json:"resamples"`
	Seed        uint64    `json:"seed"`
}

// WeightFormats maps format names to model specs (the first is the baseline).
var WeightFormats = map[string]func(ModelSpec) ModelSpec{
	"f32":      func(s ModelSpec) ModelSpec { s.Weights, s.Int8Embedding = "f32", false; return s },
	"int8":     func(s ModelSpec) ModelSpec { s.Weights, s.Int8Embedding = "int8", false; return s },
	"int8+emb": func(s ModelSpec) ModelSpec { s.Weights, s.Int8Embedding = "int8", true; return s },
}

// WeightFormatResult is one format's measurement.
type WeightFormatResult struct {
	Format      string    `json:"format"`
	Model       ModelInfo `json:"model"`
	Run         *LoadRun  `json:"run"`
	DecodeTokS  Dist      `json:"decode_tokens_per_s"` // per request: 1000/TPOT
	WeightBytes int64     `json:"weight_bytes_per_token"`
}

// WeightResult is the whole comparison; comparisons are against the first format.
type WeightResult struct {
	Command     string               `json:"command,omitempty"`
	Config      WeightConfig         `json:"config"`
	Host        Host                 `json:"host"`
	Formats     []WeightFormatResult `json:"formats"`
	Comparisons []Comparison         `json:"comparisons"`
}

// RunWeightConfigs runs the workload once per weight format.
func RunWeightConfigs(ctx context.Context, cfg WeightConfig, prog func(string) *Progress) (*WeightResult, error) {
	if len(cfg.Formats) == 0 {
		cfg.Formats = []string{"f32", "int8", "int8+emb"}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Resamples <= 0 {
		cfg.Resamples = 1000
	}
	res := &WeightResult{Config: cfg, Host: ThisHost()}
	rates := map[string][]float64{}
	for _, f := range cfg.Formats {
		mk, ok := WeightFormats[f]
		if !ok {
			return nil, fmt.Errorf("unknown weight format %q (f32, int8, int8+emb)", f)
		}
		spec := mk(cfg.Model)
		m, err := spec.Open()
		if err != nil {
			return nil, err
		}
		e, err := engine.New(m.Model, m.Tokenizer, engine.Options{MaxNumSeqs: max(16, cfg.Concurrency)})
		if err != nil {
			m.Close()
			return nil, err
		}
		w := WorkloadConfig{NumPrompts: cfg.NumPrompts, InputLen: cfg.InputLen, OutputLen: cfg.OutputLen, VocabSize: m.Config.VocabSize,
			FirstID: 3, BOS: m.Tokenizer.BOS(), Seed: cfg.Seed, FixedOutput: true}
		run, err := RunLoad(ctx, &EngineTarget{Engine: e}, w, LoadConfig{Concurrency: cfg.Concurrency, Warmup: 1, Seed: cfg.Seed}, prog(f))
		e.Close()
		info := InfoOf(spec, m)
		m.Close()
		if err != nil {
			return nil, err
		}
		for i := range run.Records {
			if r := &run.Records[i]; r.OK() && r.TPOTms() > 0 {
				rates[f] = append(rates[f], 1000/r.TPOTms())
			}
		}
		res.Formats = append(res.Formats, WeightFormatResult{Format: f, Model: info, Run: run, DecodeTokS: NewDist(rates[f]), WeightBytes: info.WeightBytes})
	}
	base := cfg.Formats[0]
	mean := func(x []float64) float64 { return NewDist(x).Mean }
	for i, f := range cfg.Formats[1:] {
		iv := BootstrapDiff(rates[base], rates[f], cfg.Resamples, cfg.Seed+uint64(i), mean)
		c := Comparison{Metric: "per-request decode tokens/s", Config: f, Baseline: base, Unit: "tokens/s", Diff: iv}
		if b := mean(rates[base]); b != 0 && finite(iv.Value) {
			c.Relative = iv.Value / b
		}
		res.Comparisons = append(res.Comparisons, c)
	}
	return res, nil
}
