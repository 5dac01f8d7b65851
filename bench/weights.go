package bench

import (
	"context"
	"fmt"
	"strings"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
)

// WeightConfig measures decode speed and weight size per weight format on an
// in-process engine, with the same closed-loop workload for each.
type WeightConfig struct {
	Model       ModelSpec `json:"model"` // Weights and FloatEmbedding are set per format
	Formats     []string  `json:"formats"`
	Concurrency int       `json:"concurrency"`
	NumPrompts  int       `json:"num_prompts"`
	InputLen    int       `json:"input_len"`
	OutputLen   int       `json:"output_len"`
	Rounds      int       `json:"rounds"` // the formats take turns this many times (default 3)
	Resamples   int       `json:"resamples"`
	Seed        uint64    `json:"seed"`
}

// WeightFormats maps format names to model specs (the first is the baseline).
var WeightFormats = map[string]func(ModelSpec) ModelSpec{
	"f32":         func(s ModelSpec) ModelSpec { s.Weights, s.FloatEmbedding = "f32", false; return s },
	"int8":        func(s ModelSpec) ModelSpec { s.Weights, s.FloatEmbedding = "int8", false; return s },
	"int8+f32emb": func(s ModelSpec) ModelSpec { s.Weights, s.FloatEmbedding = "int8", true; return s },
	"q8_0":        func(s ModelSpec) ModelSpec { s.Weights, s.FloatEmbedding = "q8_0", false; return s },
}

// formatSpec is the model a format runs: a WeightFormats name, or NAME=PATH for another
// file of the same model (a GGUF quantized with vireo quantize, say) with auto weights —
// its block types run natively.
func formatSpec(base ModelSpec, f string) (ModelSpec, string, error) {
	if name, path, ok := strings.Cut(f, "="); ok {
		if name == "" || path == "" {
			return ModelSpec{}, "", fmt.Errorf("weight format %q: want NAME=PATH", f)
		}
		base.Path, base.Weights, base.FloatEmbedding = path, "auto", false
		return base, name, nil
	}
	mk, ok := WeightFormats[f]
	if !ok {
		return ModelSpec{}, "", fmt.Errorf("unknown weight format %q (f32, int8, int8+f32emb, q8_0, or NAME=PATH of a file of the same model)", f)
	}
	return mk(base), f, nil
}

// WeightFormatResult is one format's measurement, over all its rounds.
type WeightFormatResult struct {
	Format      string     `json:"format"`
	Model       ModelInfo  `json:"model"`
	Runs        []*LoadRun `json:"runs"`                // one per round
	Summary     Summary    `json:"summary"`             // every round's records together
	DecodeTokS  Dist       `json:"decode_tokens_per_s"` // per request: 1000/TPOT
	WeightBytes int64      `json:"weight_bytes_per_token"`
}

// WeightResult is the whole comparison; comparisons are against the first format.
type WeightResult struct {
	Command     string               `json:"command,omitempty"`
	Config      WeightConfig         `json:"config"`
	Host        Host                 `json:"host"`
	Formats     []WeightFormatResult `json:"formats"`
	Comparisons []Comparison         `json:"comparisons"`
}

// RunWeightConfigs runs the workload on every weight format. The formats take turns in
// Rounds rounds of NumPrompts/Rounds requests each, so a change in the machine's load
// during the measurement falls on all of them alike.
func RunWeightConfigs(ctx context.Context, cfg WeightConfig, prog func(string) *Progress) (*WeightResult, error) {
	if len(cfg.Formats) == 0 {
		cfg.Formats = []string{"f32", "int8", "int8+f32emb", "q8_0"}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Resamples <= 0 {
		cfg.Resamples = 1000
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	cfg.Rounds = min(cfg.Rounds, max(1, cfg.NumPrompts))
	if prog == nil {
		prog = func(string) *Progress { return nil }
	}
	res := &WeightResult{Config: cfg, Host: ThisHost()}
	type arm struct {
		spec ModelSpec
		m    *llm.Loaded
		e    *engine.Engine
		p    *Progress
		res  WeightFormatResult
	}
	var arms []*arm
	defer func() {
		for _, a := range arms {
			a.e.Close()
			a.m.Close()
		}
	}()
	names := make([]string, len(cfg.Formats)) // NAME=PATH formats go by NAME
	for i, f := range cfg.Formats {
		spec, name, err := formatSpec(cfg.Model, f)
		if err != nil {
			return nil, err
		}
		names[i] = name
		f = name
		m, err := spec.Open()
		if err != nil {
			return nil, err
		}
		e, err := engine.New(m.Model, m.Tokenizer, engine.Options{MaxNumSeqs: max(16, cfg.Concurrency)})
		if err != nil {
			m.Close()
			return nil, err
		}
		arms = append(arms, &arm{spec: spec, m: m, e: e, p: prog(f), res: WeightFormatResult{Format: f, Model: InfoOf(spec, m), WeightBytes: m.WeightBytes}})
	}
	for round := 0; round < cfg.Rounds; round++ {
		n := cfg.NumPrompts / cfg.Rounds
		if round < cfg.NumPrompts%cfg.Rounds {
			n++
		}
		for _, a := range arms {
			w := WorkloadConfig{NumPrompts: n, InputLen: cfg.InputLen, OutputLen: cfg.OutputLen, VocabSize: a.m.Config.VocabSize,
				FirstID: 3, BOS: a.m.Tokenizer.BOS(), Seed: cfg.Seed + uint64(round), FixedOutput: true}
			run, err := RunLoad(ctx, &EngineTarget{Engine: a.e}, w, LoadConfig{Concurrency: cfg.Concurrency, Warmup: 1, Seed: cfg.Seed + uint64(round)}, a.p)
			if err != nil {
				return nil, err
			}
			a.res.Runs = append(a.res.Runs, run)
		}
	}
	rates := map[string][]float64{}
	for _, a := range arms {
		var recs []Record
		var dur float64
		for _, run := range a.res.Runs {
			recs = append(recs, run.Records...)
			dur += run.Summary.DurationS
		}
		for i := range recs {
			if r := &recs[i]; r.OK() && r.TPOTms() > 0 {
				rates[a.res.Format] = append(rates[a.res.Format], 1000/r.TPOTms())
			}
		}
		a.res.Summary = Summarize(recs, dur, SLO{})
		a.res.DecodeTokS = NewDist(rates[a.res.Format])
		res.Formats = append(res.Formats, a.res)
	}
	base := names[0]
	mean := func(x []float64) float64 { return NewDist(x).Mean }
	for i, f := range names[1:] {
		iv := BootstrapDiff(rates[base], rates[f], cfg.Resamples, cfg.Seed+uint64(i), mean)
		c := Comparison{Metric: "per-request decode tokens/s", Config: f, Baseline: base, Unit: "tokens/s", Diff: iv}
		if b := mean(rates[base]); b != 0 && finite(iv.Value) {
			c.Relative = iv.Value / b
		}
		res.Comparisons = append(res.Comparisons, c)
	}
	res.Host.End()
	return res, nil
}
