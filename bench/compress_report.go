package bench

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
)

// AddCompress puts a compress curve into the report: the Pruning section, an executive
// summary line with the recommendation, and two charts.
func (r *Report) AddCompress(c *CompressResult) {
	if c == nil {
		return
	}
	r.Compress = c
	c.speedups() // this version's statistics and wording, from the measurements
	c.Recommendation = c.recommend()
	if c.Command != "" {
		r.Commands = append(r.Commands, c.Command)
	}
	if r.Load == nil && r.TTFT == nil && r.Weights == nil && r.Quality == nil {
		r.Host = c.Host
	}
	r.add("pruning recommendation", float64(len(c.keeping())), "settings", c.Recommendation)
	// Charts: one group per setting, one bar per weight format.
	var groups []string
	idx := map[string]int{}
	formats := c.Config.Formats
	dec := make([]Series, len(formats))
	score := make([]Series, len(formats))
	for fi, f := range formats {
		dec[fi].Name, score[fi].Name = "decode, "+f, f
	}
	hasScore := false
	for _, a := range c.Arms {
		if a.Setting == "dense" {
			continue
		}
		if _, ok := idx[a.Setting]; !ok {
			idx[a.Setting] = len(groups)
			groups = append(groups, a.Setting)
			for fi := range formats {
				for _, s := range []*Series{&dec[fi], &score[fi]} {
					s.Values, s.Lo, s.Hi = append(s.Values, math.NaN()), append(s.Lo, math.NaN()), append(s.Hi, math.NaN())
				}
			}
		}
		g, fi := idx[a.Setting], slices.Index(formats, a.Format)
		if fi < 0 {
			continue
		}
		dec[fi].Values[g], dec[fi].Lo[g], dec[fi].Hi[g] = a.DecodeSpeedup.Value, a.DecodeSpeedup.Lo, a.DecodeSpeedup.Hi
		if q := a.Quality; q != nil && q.AccuracyRatioCI != nil {
			score[fi].Values[g], score[fi].Lo[g], score[fi].Hi[g] = 100*q.AccuracyRatioCI.Value, 100*q.AccuracyRatioCI.Lo, 100*q.AccuracyRatioCI.Hi
			hasScore = true
		}
	}
	for _, a := range c.Arms {
		if a.Setting == "dense" {
			continue
		}
		if q := a.Quality; q != nil && q.AccuracyRatioCI != nil && q.AccuracyRatioCI.Hi < c.Config.Threshold {
			r.Risks = append(r.Risks, Risk{Area: "pruning " + a.Name(),
				Effect:     fmt.Sprintf("keeps %.1f%% of the next-token accuracy, below the %.0f%% bar", 100*q.AccuracyRatio, 100*c.Config.Threshold),
				Evidence:   fmt.Sprintf("quality score 95%% CI [%.1f%%, %.1f%%] over %d positions; perplexity %.3f", 100*q.AccuracyRatioCI.Lo, 100*q.AccuracyRatioCI.Hi, q.Positions, q.Perplexity),
				Mitigation: "do not ship this setting for this model; prune less (a higher energy or budget, fewer matrices), calibrate (Wanda, whitening), or keep int8 alone"})
		}
		if d := a.DecodeSpeedup; d != nil && finite(d.Hi) && d.Hi < 1 {
			r.Risks = append(r.Risks, Risk{Area: "pruning " + a.Name(),
				Effect:     fmt.Sprintf("decodes %.0f%% slower than the dense model in %s", 100*(1-d.Value), a.Format),
				Evidence:   fmt.Sprintf("decode speed ratio %.2f, 95%% CI [%.2f, %.2f] over %d rounds", d.Value, d.Lo, d.Hi, len(a.Decode)),
				Mitigation: "the 2:4 and low-rank kernels pay off on large, memory-bound matrices; on small ones keep the dense weights"})
		}
	}
	sub := ChartOpts{Subtitle: filepath.Base(c.Config.ModelPath) + " | " + r.machine(c.Host)}
	r.Charts = append(r.Charts, Chart{Title: "Decode speed-up per compression setting against the dense model in the same format (95% CI)", File: "compress-speed.svg",
		svg: BarChart("Decode speed-up against the dense model, same weight format", "× dense", groups, dec, sub)})
	if hasScore {
		r.Charts = append(r.Charts, Chart{Title: "Quality score per compression setting (95% CI)", File: "compress-quality.svg",
			svg: BarChart(fmt.Sprintf("Quality score (accuracy vs uncompressed f32; the bar is %.0f%%)", 100*c.Config.Threshold), "percent", groups, score, sub)})
	}
}

func (c *CompressResult) keeping() []*CompressArm {
	var k []*CompressArm
	for _, a := range c.Arms {
		if a.Setting != "dense" && a.Keeps {
			k = append(k, a)
		}
	}
	return k
}

// mdCompress writes the Pruning section.
func (r *Report) mdCompress(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("### Pruning: low-rank factorization and 2:4 sparsity\n\n")
	c := r.Compress
	if c == nil {
		p("Not measured in this report (run `bench compress`; `vireo compress` writes the checkpoints).\n\n")
		return
	}
	cfg := c.Config
	m := c.Model
	p("Model %s (dim %d, %d layers, vocab %d), measured on %s.\n\n", cfg.ModelPath, m.Dim, m.Layers, m.Vocab, r.machine(c.Host))
	p("Each setting is a checkpoint written by `vireo compress` (the seven matrices of every block; the embedding and the classifier stay dense) and loaded back; ")
	if slices.Contains(cfg.Formats, "int8") {
		if slices.Contains(cfg.Formats, "f32") {
			p("each runs with f32 weights and with int8")
		} else {
			p("each runs with int8 weights")
		}
		p(" (each factor, and each row of 2:4 kept values, quantized per row at load). ")
	} else {
		p("each runs with %s weights. ", strings.Join(cfg.Formats, " and "))
	}
	p("Speed: one prefill pass over %d random tokens and %d greedy single-token decode passes on the CPU backend, every arm once per round in %d rounds (order rotated each round); medians; speed-up: the median over rounds of each round's ratio to the dense model in the same format (the arms take turns within a round), with a bootstrap 95%% CI over rounds. Memory: the bytes of weights the backend reads per token.", cfg.PromptLen, cfg.DecodeLen, cfg.Rounds)
	if cfg.Quality {
		p(" Quality score: next-token accuracy on the eval texts relative to the uncompressed model in f32 (%d tokens per text in windows of the model's context, pooled over the texts; paired bootstrap 95%% CI over windows); a setting keeps the quality when the score is at least %.0f%%.", cfg.Tokens, 100*cfg.Threshold)
		if cfg.Calib.Path != "" {
			p(" Calibration (whitening, Wanda): %d tokens of %s after its first %d — the training text, past the tokens the seen-text audit scores; never the held-out texts.", cfg.Calib.Tokens, filepath.Base(cfg.Calib.Path), cfg.Calib.Skip)
		}
	} else {
		p(" No quality audit: this model's weights are random, so its speed is real and its quality meaningless.")
	}
	p("\n\n| setting | format | what it stores | block weights kept | weights read per token | prefill tok/s | decode tok/s | prefill × dense [CI] | decode × dense [CI] |")
	if cfg.Quality {
		p(" quality score [CI] | perplexity | keeps ≥ %.0f%% |", 100*cfg.Threshold)
	}
	p("\n|---|---|---|---|---|---|---|---|---|")
	if cfg.Quality {
		p("---|---|---|")
	}
	p("\n")
	for _, a := range c.Arms {
		what, kept := "the uncompressed model", "100%"
		if a.Compress != nil {
			what = a.Recipe
			kept = fmt.Sprintf("%.1f%%", 100*float64(a.Compress.StoredParam)/float64(a.Compress.DenseParams))
		}
		p("| %s | %s | %s | %s | %s | %.1f | %.1f | %s | %s |", a.Setting, a.Format, mdCell(what), kept, human(a.WeightBytes), Median(a.Prefill), Median(a.Decode),
			ratioCell(a.PrefillSpeedup), ratioCell(a.DecodeSpeedup))
		if cfg.Quality {
			if q := a.Quality; q != nil && q.AccuracyRatioCI != nil {
				keeps := yesNo(a.Keeps)
				if iv := q.AccuracyRatioCI; a.Setting != "dense" && finite(iv.Lo) && iv.Lo < cfg.Threshold && iv.Hi >= cfg.Threshold {
					keeps += " (CI straddles the bar)"
				}
				if a.Compress != nil && a.Compress.StoredParam >= a.Compress.DenseParams {
					keeps = "– (nothing compressed)"
				}
				p(" %.1f%% [%.1f, %.1f] | %.3f | %s |", 100*q.AccuracyRatioCI.Value, 100*q.AccuracyRatioCI.Lo, 100*q.AccuracyRatioCI.Hi, q.Perplexity, keeps)
			} else {
				p(" – | – | – |")
			}
		}
		p("\n")
	}
	p("\n")
	if cfg.Quality && c.Quality != nil {
		p("Per text category (perplexity and its change, top-1 agreement with the uncompressed f32 model, quality score; paired bootstrap 95%% CIs over windows):\n\n")
		p("| setting | format |")
		for _, t := range c.Quality.Texts {
			p(" %s (%s) |", t.Category, t.Name)
		}
		p("\n|---|---|")
		for range c.Quality.Texts {
			p("---|")
		}
		p("\n")
		for _, a := range c.Arms {
			p("| %s | %s |", a.Setting, a.Format)
			for _, m := range a.PerText {
				if m.Agreement == nil {
					p(" ppl %.3f, accuracy %.2f%% (reference) |", m.Perplexity, 100*m.Accuracy)
					continue
				}
				p(" ppl %.3f", m.Perplexity)
				if iv := m.PerplexityChange; iv != nil && finite(iv.Lo) {
					p(" (%+.1f%% [%+.1f, %+.1f])", iv.Value, iv.Lo, iv.Hi)
				}
				p(", agreement %s", fracCI(*m.Agreement))
				if m.AccuracyRatioCI != nil {
					p(", score %s |", fracCI(*m.AccuracyRatioCI))
				} else {
					p(", score %.1f%% |", 100*m.AccuracyRatio)
				}
			}
			p("\n")
		}
		p("\n")
	}
	p("**%s**\n\n", c.Recommendation)
}

func ratioCell(iv *Interval) string {
	if iv == nil {
		return "–"
	}
	if !finite(iv.Lo) || !finite(iv.Hi) {
		return fmt.Sprintf("%.2f (no CI)", iv.Value)
	}
	return fmt.Sprintf("%.2f [%.2f, %.2f]", iv.Value, iv.Lo, iv.Hi)
}

// fracCI is a fraction with its CI as percentages: "90.3% [89.3, 91.3]".
func fracCI(iv Interval) string {
	if !finite(iv.Lo) || !finite(iv.Hi) {
		return fmt.Sprintf("%.1f%%", 100*iv.Value)
	}
	return fmt.Sprintf("%.1f%% [%.1f, %.1f]", 100*iv.Value, 100*iv.Lo, 100*iv.Hi)
}
