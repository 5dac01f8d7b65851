package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/vireo-ai/vireo/runtime/engine"
)

// TTFTConfig is DESIGN.md's mixed workload: one long prompt arrives first, then short
// prompts at a fixed interval, every request generating OutputLen tokens.
type TTFTConfig struct {
	Model     ModelSpec     `json:"model"`
	LongLen   int           `json:"long_len"`    // default 2000
	ShortLen  int           `json:"short_len"`   // default 32
	Shorts    int           `json:"shorts"`      // default 24
	Interval  time.Duration `json:"interval_ns"` // default 20 ms
	OutputLen int           `json:"output_len"`  // default 32
	Lanes     int           `json:"lanes"`       // prefill lanes of the multi-stream configuration (default 4)
	Repeats   int           `json:"repeats"`     // runs per configuration, pooled (default 3)
	Resamples int           `json:"resamples"`
	Seed      uint64        `json:"seed"`
}

// PrefillConfig is one of the three configurations compared.
type PrefillConfig struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Options     EngineOptions `json:"options"`
}

// PrefillConfigs are the three configurations of the experiment (as the engine's
// BenchmarkMixedWorkload): one lane unchunked, one lane chunked (vLLM's approach),
// N lanes chunked with one long prefill at a time.
func PrefillConfigs(lanes int) []PrefillConfig {
	return []PrefillConfig{
		{"1-lane-unchunked", "one prefill stream, whole prompts in one pass", EngineOptions{MaxNumBatchedTokens: 4096, PrefillChunk: 4096, PrefillStreams: 1}},
		{"1-lane-chunked", "one prefill stream, chunked prefill (256-token chunks, 512-token steps)", EngineOptions{MaxNumBatchedTokens: 512, PrefillChunk: 256, PrefillStreams: 1}},
		{fmt.Sprintf("%d-lanes-chunked", lanes), fmt.Sprintf("%d prefill streams, chunked, one long prefill at a time", lanes),
			EngineOptions{MaxNumBatchedTokens: 512, PrefillChunk: 256, PrefillStreams: lanes, MaxLongPrefills: 1}},
	}
}

// TTFTConfigResult is one configuration's measurements, pooled over repeats.
type TTFTConfigResult struct {
	PrefillConfig
	ShortTTFTms Dist       `json:"short_ttft_ms"`
	LongTTFTms  Dist       `json:"long_ttft_ms"`
	ITLms       Dist       `json:"itl_ms"` // every request's inter-token gaps
	GenTokensS  float64    `json:"gen_tokens_per_s"`
	TotalTokS   float64    `json:"total_tokens_per_s"` // prompt + generated over wall time
	RunGenTokS  []float64  `json:"run_gen_tokens_per_s"`
	Failed      int        `json:"failed"`
	Runs        [][]Record `json:"runs"` // index 0 of each run is the long prompt
}

// Comparison is a difference between a configuration and a baseline with its 95%
// bootstrap interval (unpaired: the runs are independent).
type Comparison struct {
	Metric   string   `json:"metric"`
	Config   string   `json:"config"`
	Baseline string   `json:"baseline"`
	Unit     string   `json:"unit"`
	Diff     Interval `json:"diff"` // config - baseline
	Relative float64  `json:"relative"`
}

// TTFTResult is the whole experiment.
type TTFTResult struct {
	Command     string             `json:"command,omitempty"`
	Config      TTFTConfig         `json:"config"`
	Model       ModelInfo          `json:"model"`
	Host        Host               `json:"host"`
	Configs     []TTFTConfigResult `json:"configs"`
	Comparisons []Comparison       `json:"comparisons"`
}

// RunTTFTConfigs runs the mixed workload against an in-process engine in each of the
// three prefill configurations.
func RunTTFTConfigs(ctx context.Context, cfg TTFTConfig, prog func(string) *Progress) (*TTFTResult, error) {
	if cfg.LongLen <= 0 {
		cfg.LongLen = 2000
	}
	if cfg.ShortLen <= 0 {
		cfg.ShortLen = 32
	}
	if cfg.Shorts <= 0 {
		cfg.Shorts = 24
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.OutputLen <= 0 {
		cfg.OutputLen = 32
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 4
	}
	if cfg.Repeats <= 0 {
		cfg.Repeats = 3
	}
	if cfg.Resamples <= 0 {
		cfg.Resamples = 1000
	}
	m, err := cfg.Model.Open()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if cfg.LongLen+cfg.OutputLen > m.Config.MaxSeqLen {
		return nil, fmt.Errorf("ttft: a %d-token prompt and %d outputs exceed the model's context of %d", cfg.LongLen, cfg.OutputLen, m.Config.MaxSeqLen)
	}
	res := &TTFTResult{Config: cfg, Model: InfoOf(cfg.Model, m), Host: ThisHost()}
	vocab := m.Config.VocabSize
	bos := m.Tokenizer.BOS()
	mk := func(n, salt int) Prompt {
		w := WorkloadConfig{NumPrompts: 1, InputLen: n, OutputLen: cfg.OutputLen, VocabSize: vocab, FirstID: 3, BOS: bos, Seed: cfg.Seed + uint64(salt)}
		p, _ := w.Prompts(1)
		return p[0]
	}
	reqs := []GenRequest{{Prompt: mk(cfg.LongLen, 0), MaxTokens: cfg.OutputLen, MinTokens: cfg.OutputLen, IgnoreEOS: true}}
	at := []time.Duration{0}
	for i := 0; i < cfg.Shorts; i++ {
		reqs = append(reqs, GenRequest{Prompt: mk(cfg.ShortLen, i+1), MaxTokens: cfg.OutputLen, MinTokens: cfg.OutputLen, IgnoreEOS: true})
		at = append(at, time.Duration(i+1)*cfg.Interval)
	}
	// Per-run statistics: the unit of comparison is a run, since the requests of one
	// run share its stalls and are not independent. The configurations take turns
	// (A B C A B C ...) so that a change in the machine's load during the experiment
	// falls on all of them alike instead of biasing one.
	type perRun struct{ shortP50, shortP99, itlP50, itlP99, gen []float64 }
	type arm struct {
		r                    TTFTConfigResult
		st                   perRun
		e                    *engine.Engine
		p                    *Progress
		long, shortAll, itls []float64
		gen, total           int
		wall                 float64
	}
	var arms []*arm
	defer func() {
		for _, a := range arms {
			a.e.Close()
		}
	}()
	for _, pc := range PrefillConfigs(cfg.Lanes) {
		e, err := engine.New(m.Model, m.Tokenizer, pc.Options.engine())
		if err != nil {
			return nil, fmt.Errorf("ttft: %s: %w", pc.Name, err)
		}
		arms = append(arms, &arm{r: TTFTConfigResult{PrefillConfig: pc}, e: e, p: prog(pc.Name)})
	}
	for rep := 0; rep < cfg.Repeats; rep++ {
		for _, a := range arms {
			recs, dur := runSchedule(ctx, &EngineTarget{Engine: a.e}, reqs, at, 0, 0, a.p)
			a.r.Runs = append(a.r.Runs, recs)
			var short, itl []float64
			runGen := 0
			for i := range recs {
				rc := &recs[i]
				if !rc.OK() {
					a.r.Failed++
					continue
				}
				if i == 0 {
					a.long = append(a.long, rc.TTFTms)
				} else {
					short = append(short, rc.TTFTms)
				}
				itl = append(itl, rc.ITLms...)
				runGen += rc.OutputTokens
				a.total += rc.PromptTokens + rc.OutputTokens
			}
			a.shortAll, a.itls = append(a.shortAll, short...), append(a.itls, itl...)
			if len(short) > 0 && len(itl) > 0 {
				a.st.shortP50, a.st.shortP99 = append(a.st.shortP50, Percentile(short, 50)), append(a.st.shortP99, Percentile(short, 99))
				a.st.itlP50, a.st.itlP99 = append(a.st.itlP50, Percentile(itl, 50)), append(a.st.itlP99, Percentile(itl, 99))
			}
			a.gen += runGen
			a.wall += dur.Seconds()
			a.st.gen = append(a.st.gen, float64(runGen)/dur.Seconds())
		}
	}
	stats := map[string]*perRun{}
	for _, a := range arms {
		a.r.RunGenTokS = a.st.gen
		a.r.ShortTTFTms, a.r.LongTTFTms, a.r.ITLms = NewDist(a.shortAll), NewDist(a.long), NewDist(a.itls)
		a.r.GenTokensS, a.r.TotalTokS = float64(a.gen)/a.wall, float64(a.total)/a.wall
		res.Configs = append(res.Configs, a.r)
		stats[a.r.Name] = &a.st
	}
	// The multi-lane configuration against both single-lane baselines, over runs.
	multi := stats[res.Configs[2].Name]
	mean := func(x []float64) float64 { return NewDist(x).Mean }
	for bi, bc := range res.Configs[:2] {
		base := stats[bc.Name]
		seed := cfg.Seed + uint64(bi)*7919
		add := func(metric, unit string, a, b []float64) {
			iv := BootstrapDiff(a, b, cfg.Resamples, seed, mean)
			c := Comparison{Metric: metric, Config: res.Configs[2].Name, Baseline: bc.Name, Unit: unit, Diff: iv}
			if s := mean(a); s != 0 && finite(iv.Value) {
				c.Relative = iv.Value / s
			}
			res.Comparisons = append(res.Comparisons, c)
		}
		add("short-prompt TTFT p50", "ms", base.shortP50, multi.shortP50)
		add("short-prompt TTFT p99", "ms", base.shortP99, multi.shortP99)
		add("ITL p50", "ms", base.itlP50, multi.itlP50)
		add("ITL p99", "ms", base.itlP99, multi.itlP99)
		add("generated tokens/s", "tokens/s", base.gen, multi.gen)
	}
	res.Host.End()
	return res, nil
}
