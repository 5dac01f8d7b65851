package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Report combines whatever was measured — a load sweep, a quality audit, the prefill
// configurations, the weight formats — into one document.
type Report struct {
	Title    string          `json:"title"`
	Created  time.Time       `json:"created"`
	Command  string          `json:"command"`        // the command that wrote the report
	Commands []string        `json:"input_commands"` // the commands that measured its inputs
	Host     Host            `json:"host"`
	Summary  []SummaryItem   `json:"executive_summary"`
	Load     *LoadResult     `json:"load,omitempty"`
	Quality  *QualityResult  `json:"quality,omitempty"`
	TTFT     *TTFTResult     `json:"ttft_configs,omitempty"`
	Weights  *WeightResult   `json:"weight_formats,omitempty"`
	Spec     *SpecResult     `json:"speculative,omitempty"`
	Compress *CompressResult `json:"compress,omitempty"`
	Risks    []Risk          `json:"risks"`
	Charts   []Chart         `json:"charts"`
	Notes    []string        `json:"notes,omitempty"`
}

// SummaryItem is one measured headline.
type SummaryItem struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Text  string  `json:"text"` // the sentence in the Markdown
}

// Risk is a measured, statistically significant adverse effect and what to do about it.
type Risk struct {
	Area       string `json:"area"`
	Effect     string `json:"effect"`
	Evidence   string `json:"evidence"`
	Mitigation string `json:"mitigation"`
}

// Chart is one SVG file of the report.
type Chart struct {
	Title string `json:"title"`
	File  string `json:"file"`
	svg   string
}

// BuildReport assembles a report from the parts measured (any may be nil).
func BuildReport(title, command string, load *LoadResult, q *QualityResult, ttft *TTFTResult, w *WeightResult) *Report {
	r := &Report{Title: title, Created: time.Now().UTC(), Command: command, Host: ThisHost(), Load: load, Quality: q, TTFT: ttft, Weights: w}
	for _, c := range []string{cmdOf(load), cmdOf(q), cmdOf(ttft), cmdOf(w)} {
		if c != "" {
			r.Commands = append(r.Commands, c)
		}
	}
	switch {
	case load != nil:
		r.Host = load.Host
	case ttft != nil:
		r.Host = ttft.Host
	case w != nil:
		r.Host = w.Host
	case q != nil:
		r.Host = q.Host
	}
	r.summarize()
	r.risks()
	r.charts()
	return r
}

func cmdOf(v any) string {
	switch x := v.(type) {
	case *LoadResult:
		if x != nil {
			return x.Command
		}
	case *QualityResult:
		if x != nil {
			return x.Command
		}
	case *TTFTResult:
		if x != nil {
			return x.Command
		}
	case *WeightResult:
		if x != nil {
			return x.Command
		}
	}
	return ""
}

func (r *Report) add(label string, v float64, unit, text string) {
	r.Summary = append(r.Summary, SummaryItem{Label: label, Value: v, Unit: unit, Text: text})
}

// summarize picks the headline numbers, every one of them measured.
func (r *Report) summarize() {
	if l := r.Load; l != nil && len(l.Runs) > 0 {
		var lat, ttft []string
		var best *LoadRun
		for _, run := range l.Runs {
			s := &run.Summary
			if s.Completed == 0 {
				continue
			}
			lat = append(lat, fmt.Sprintf("%.0f ms at %s", s.E2Ems.Mean, run.Label()))
			ttft = append(ttft, fmt.Sprintf("%.1f / %.1f ms at %s", s.TTFTms.P50, s.TTFTms.P99, run.Label()))
			if best == nil || s.OutputThroughput > best.Summary.OutputThroughput {
				best = run
			}
		}
		first := l.Runs[0].Summary
		if len(lat) > 0 {
			r.add("mean end-to-end latency", first.E2Ems.Mean, "ms", "Average request latency (end to end): "+strings.Join(lat, ", ")+".")
			r.add("TTFT p50", first.TTFTms.P50, "ms", "Time to first token, p50 / p99: "+strings.Join(ttft, ", ")+".")
			b := best.Summary
			r.add("peak output throughput", b.OutputThroughput, "tokens/s", fmt.Sprintf("Throughput: %.1f output tokens/s (%.1f total tokens/s, %.2f requests/s) at %s, the best of the runs.",
				b.OutputThroughput, b.TotalThroughput, b.RequestThroughput, best.Label()))
		}
		var failed, total int
		for _, run := range l.Runs {
			failed += run.Summary.Failed
			total += run.Summary.Requests
		}
		if failed > 0 {
			r.add("failed requests", float64(failed), "requests", fmt.Sprintf("%d of %d requests failed (see Load).", failed, total))
		}
	}
	if q := r.Quality; q != nil {
		for _, m := range q.Overall[1:] {
			if m.Variant != "int8" {
				continue
			}
			r.add("quality: int8 top-1 agreement", m.Agreement.Value, "fraction", fmt.Sprintf(
				"Quality score (int8 weights vs the f32 reference, %d positions over %d texts): top-1 agreement %.2f%% (95%% CI %.2f–%.2f%%), perplexity ratio %.4f, retained next-token accuracy %.2f%%; %s.",
				m.Positions, len(q.Texts), 100*m.Agreement.Value, 100*m.Agreement.Lo, 100*m.Agreement.Hi, m.PerplexityRatio, 100*m.AccuracyRatio, m.Verdict))
		}
		files := map[string]bool{}
		for _, v := range q.Variants {
			files[v.Name] = v.Path != ""
		}
		for _, m := range q.Overall[1:] {
			if !files[m.Variant] {
				continue
			}
			meets := "meets"
			if m.Agreement.Value < RetainedBar {
				meets = "misses"
			}
			r.add("quality: "+m.Variant+" top-1 agreement", m.Agreement.Value, "fraction", fmt.Sprintf(
				"%s (its blocks run natively) vs the f32 reference: top-1 agreement %.2f%% (95%% CI %.2f–%.2f%%: %s the %.0f%% bar), perplexity ratio %.4f, next-token accuracy kept %.2f%%.",
				m.Variant, 100*m.Agreement.Value, 100*m.Agreement.Lo, 100*m.Agreement.Hi, meets, 100*RetainedBar, m.PerplexityRatio, 100*m.AccuracyRatio))
		}
		ref := q.Overall[0]
		r.add("quality: f32 perplexity", ref.Perplexity, "", fmt.Sprintf("Reference (f32) perplexity over all texts %.3f, next-token accuracy %.2f%%.", ref.Perplexity, 100*ref.Accuracy))
	}
	if t := r.TTFT; t != nil && len(t.Configs) == 3 {
		var parts []string
		for _, c := range t.Configs {
			parts = append(parts, fmt.Sprintf("%s %.0f ms", c.Name, c.ShortTTFTms.P50))
		}
		r.add("short-prompt TTFT p50 (multi-stream)", t.Configs[2].ShortTTFTms.P50, "ms",
			fmt.Sprintf("Mixed workload on %s (one %d-token prompt among %d short ones), short-prompt TTFT p50: %s.", t.Model.Path, t.Config.LongLen, t.Config.Shorts, strings.Join(parts, ", ")))
	}
	if w := r.Weights; w != nil && len(w.Formats) > 1 {
		base := w.Formats[0]
		for _, f := range w.Formats[1:] {
			if f.Format != "int8" {
				continue
			}
			r.add("int8 decode speedup", f.DecodeTokS.Mean/base.DecodeTokS.Mean, "x", fmt.Sprintf(
				"int8 weights: decode %.1f vs %.1f tokens/s per request (%.2fx), weights read per token %s vs %s (%.2fx smaller).",
				f.DecodeTokS.Mean, base.DecodeTokS.Mean, f.DecodeTokS.Mean/base.DecodeTokS.Mean, human(f.WeightBytes), human(base.WeightBytes), float64(base.WeightBytes)/float64(f.WeightBytes)))
		}
	}
}

// mainModel is the model of the load run or the quality audit ("" when neither ran):
// what a report's title names.
func (r *Report) mainModel() string {
	switch {
	case r.Load != nil && r.Load.Model != nil:
		return r.Load.Model.Path
	case r.Quality != nil:
		return r.Quality.Config.ModelPath
	case r.Weights != nil:
		return r.Weights.Config.Model.Path
	}
	return ""
}

// risks lists measured, significant adverse effects only.
func (r *Report) risks() {
	if l := r.Load; l != nil {
		for _, run := range l.Runs {
			s := &run.Summary
			for _, k := range s.ErrorKinds() {
				r.Risks = append(r.Risks, Risk{Area: "load " + run.Label(), Effect: fmt.Sprintf("%d of %d requests failed with %s", s.Errors[k], s.Requests, k),
					Evidence: "observed count: " + firstLine(s.FirstError), Mitigation: errorMitigation(k)})
			}
		}
	}
	if q := r.Quality; q != nil {
		for _, t := range q.Texts {
			for _, m := range t.Results[1:] {
				if m.DeltaNLL.Significant() && m.DeltaNLL.Value > 0 {
					r.Risks = append(r.Risks, Risk{Area: "quality " + m.Variant,
						Effect:     fmt.Sprintf("perplexity on %s text (%s) %s with %s", t.Category, t.Name, pctCI(*m.PerplexityChange), m.Variant),
						Evidence:   fmt.Sprintf("ΔNLL %+.5f nats/token, 95%% CI [%+.5f, %+.5f], %d windows", m.DeltaNLL.Value, m.DeltaNLL.Lo, m.DeltaNLL.Hi, t.Windows),
						Mitigation: qualityMitigation(m.Variant)})
				}
				if m.DeltaAccuracy.Significant() && m.DeltaAccuracy.Value < 0 {
					r.Risks = append(r.Risks, Risk{Area: "quality " + m.Variant,
						Effect:     fmt.Sprintf("next-token accuracy on %s text fell %.2f points with %s", t.Category, -100*m.DeltaAccuracy.Value, m.Variant),
						Evidence:   fmt.Sprintf("Δaccuracy 95%% CI [%+.2f, %+.2f] points", 100*m.DeltaAccuracy.Lo, 100*m.DeltaAccuracy.Hi),
						Mitigation: qualityMitigation(m.Variant)})
				}
			}
		}
		for _, m := range q.Overall[1:] {
			if m.Agreement.Hi < 1 {
				r.Risks = append(r.Risks, Risk{Area: "quality " + m.Variant,
					Effect:     fmt.Sprintf("greedy top-1 choice differs from f32 at %.2f%% of positions with %s", 100*(1-m.Agreement.Value), m.Variant),
					Evidence:   fmt.Sprintf("agreement %.2f%%, 95%% CI [%.2f%%, %.2f%%], %d positions", 100*m.Agreement.Value, 100*m.Agreement.Lo, 100*m.Agreement.Hi, m.Positions),
					Mitigation: "pin golden outputs per weight format (not f32's for int8); keep -weights f32 for bit-exact reproduction"})
			}
		}
	}
	if t := r.TTFT; t != nil {
		for _, c := range t.Comparisons {
			worse := c.Diff.Value > 0
			if strings.Contains(c.Unit, "tokens/s") {
				worse = c.Diff.Value < 0
			}
			if c.Diff.Significant() && worse {
				r.Risks = append(r.Risks, Risk{Area: "multi-stream prefill",
					Effect:     fmt.Sprintf("%s is %s with %s than with %s (%+.1f%%)", c.Metric, fmtDiff(c), c.Config, c.Baseline, 100*c.Relative),
					Evidence:   fmt.Sprintf("difference %+.2f %s, 95%% CI [%+.2f, %+.2f]", c.Diff.Value, c.Unit, c.Diff.Lo, c.Diff.Hi),
					Mitigation: prefillMitigation(c)})
			}
		}
	}
	if w := r.Weights; w != nil {
		for _, c := range w.Comparisons {
			if c.Diff.Significant() && c.Diff.Value < 0 {
				r.Risks = append(r.Risks, Risk{Area: "weights " + c.Config,
					Effect:     fmt.Sprintf("decode is slower with %s than %s (%+.1f%%)", c.Config, c.Baseline, 100*c.Relative),
					Evidence:   fmt.Sprintf("per-request decode tokens/s %+.2f, 95%% CI [%+.2f, %+.2f]", c.Diff.Value, c.Diff.Lo, c.Diff.Hi),
					Mitigation: "keep f32 weights for this model size (int8 only pays where decode is memory-bound)"})
			}
		}
	}
}

func fmtDiff(c Comparison) string {
	if strings.Contains(c.Unit, "tokens/s") {
		return "lower"
	}
	return "higher"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func errorMitigation(kind string) string {
	switch {
	case kind == KindRefused || kind == KindConnect:
		return "check the server is up and reachable at the URL (health check before the run)"
	case kind == KindTimeout:
		return "lower the concurrency or raise --timeout; size the server for this load"
	case kind == "http_429" || kind == KindQueueFull:
		return "the queue is full: lower the load or raise the server's waiting-queue limit"
	case strings.HasPrefix(kind, KindHTTP+"4"):
		return "fix the request (the server rejected it; see the error message)"
	case strings.HasPrefix(kind, KindHTTP):
		return "server-side failure: read the server log for these requests"
	}
	return "inspect the per-request errors in the JSON"
}

func qualityMitigation(variant string) string {
	switch variant {
	case "int8":
		return "keep the embedding/classifier in float (--int8-embedding=false), or the affected layers"
	case "int8+f32emb":
		return "keep the affected layers in float, or use finer (per-group) scales"
	case "q8_0":
		return "keep the activations in float (per-row int8 weights) for the affected layers"
	}
	return "do not enable this optimization for this category of text"
}

func prefillMitigation(c Comparison) string {
	unchunked := strings.Contains(c.Baseline, "unchunked")
	switch {
	case strings.HasPrefix(c.Metric, "ITL") && unchunked:
		return "the price of chunking: decodes now run between prefill chunks and wait for each; a smaller PrefillChunk bounds each stall"
	case strings.HasPrefix(c.Metric, "ITL"):
		return "fewer prefill lanes, or a smaller PrefillChunk while decodes run (lanes compete with decode for the cores)"
	case strings.Contains(c.Metric, "TTFT"):
		return fmt.Sprintf("keep %s as the default for this workload", c.Baseline)
	case unchunked:
		return "chunking runs the long prompt in several passes over the weights: a larger PrefillChunk / MaxNumBatchedTokens recovers throughput at some TTFT cost"
	}
	return "limit concurrent long prefills (MaxLongPrefills) or use fewer lanes"
}

func human(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// charts draws the report's SVGs.
func (r *Report) charts() {
	if l := r.Load; l != nil {
		for _, run := range l.Runs {
			s := &run.Summary
			if s.Completed == 0 {
				continue
			}
			groups := []string{"TTFT", "ITL", "TPOT", "E2E"}
			ds := []Dist{s.TTFTms, s.ITLms, s.TPOTms, s.E2Ems}
			var ser []Series
			for _, p := range []struct {
				name string
				get  func(Dist) float64
			}{{"p50", func(d Dist) float64 { return d.P50 }}, {"p90", func(d Dist) float64 { return d.P90 }}, {"p99", func(d Dist) float64 { return d.P99 }}} {
				v := make([]float64, len(ds))
				for i, d := range ds {
					v[i] = p.get(d)
				}
				ser = append(ser, Series{Name: p.name, Values: v})
			}
			r.Charts = append(r.Charts, Chart{Title: "Latency percentiles, " + run.Label(), File: "latency-" + fileSafe(run.Label()) + ".svg",
				svg: BarChart("Latency percentiles ("+run.Label()+")", "milliseconds", groups, ser, ChartOpts{Subtitle: l.subtitle(), Log: true})})
		}
		var xs, out, tot, req []float64
		xlabel := "concurrency"
		for _, run := range l.Runs {
			x := float64(run.Config.Concurrency)
			if run.Config.RequestRate > 0 {
				x, xlabel = run.Config.RequestRate, "request rate (requests/s)"
			}
			xs = append(xs, x)
			out = append(out, run.Summary.OutputThroughput)
			tot = append(tot, run.Summary.TotalThroughput)
			req = append(req, run.Summary.RequestThroughput)
		}
		r.Charts = append(r.Charts, Chart{Title: "Throughput vs " + xlabel, File: "throughput.svg",
			svg: LineChart("Throughput vs "+xlabel, xlabel, "tokens/s", xs, []Series{{Name: "output tokens/s", Values: out}, {Name: "total tokens/s", Values: tot}},
				ChartOpts{Subtitle: l.subtitle()})})
		r.Charts = append(r.Charts, Chart{Title: "Requests/s vs " + xlabel, File: "requests.svg",
			svg: LineChart("Request throughput vs "+xlabel, xlabel, "requests/s", xs, []Series{{Name: "requests/s", Values: req}}, ChartOpts{Subtitle: l.subtitle()})})
	}
	if t := r.TTFT; t != nil {
		var groups []string
		var p50, p99, itl, itl99 []float64
		for _, c := range t.Configs {
			groups = append(groups, c.Name)
			p50, p99 = append(p50, c.ShortTTFTms.P50), append(p99, c.ShortTTFTms.P99)
			itl, itl99 = append(itl, c.ITLms.P50), append(itl99, c.ITLms.P99)
		}
		// ITL p99 beside TTFT: what chunked and multi-stream prefill cost decode.
		r.Charts = append(r.Charts, Chart{Title: "TTFT and ITL for the three prefill configurations", File: "ttft-configs.svg",
			svg: BarChart("Short-prompt TTFT beside a long prefill, and decode ITL", "milliseconds", groups,
				[]Series{{Name: "short TTFT p50", Values: p50}, {Name: "short TTFT p99", Values: p99}, {Name: "ITL p50", Values: itl}, {Name: "ITL p99", Values: itl99}},
				ChartOpts{Subtitle: t.Model.Short() + " | " + r.machine(t.Host), Log: true})})
	}
	if q := r.Quality; q != nil && len(q.Texts) > 0 {
		var groups []string
		ser := make([]Series, len(q.Texts[0].Results)-1)
		for _, t := range q.Texts {
			groups = append(groups, t.Category)
			for i, m := range t.Results[1:] {
				ser[i].Name = m.Variant
				ser[i].Values = append(ser[i].Values, m.PerplexityChange.Value)
				ser[i].Lo = append(ser[i].Lo, m.PerplexityChange.Lo)
				ser[i].Hi = append(ser[i].Hi, m.PerplexityChange.Hi)
			}
		}
		qsub := ChartOpts{Subtitle: filepath.Base(q.Config.ModelPath) + " | " + r.machine(q.Host)}
		r.Charts = append(r.Charts, Chart{Title: "Perplexity change vs f32 per category (95% CI)", File: "quality.svg",
			svg: BarChart("Perplexity change vs f32 by text category (95% CI)", "percent", groups, ser, qsub)})
		ppl := make([]Series, len(q.Texts[0].Results))
		for _, t := range q.Texts {
			for i, m := range t.Results {
				ppl[i].Name = m.Variant
				ppl[i].Values = append(ppl[i].Values, m.Perplexity)
			}
		}
		r.Charts = append(r.Charts, Chart{Title: "Perplexity per category", File: "perplexity.svg",
			svg: BarChart("Perplexity by text category", "perplexity", groups, ppl, qsub)})
	}
	if w := r.Weights; w != nil {
		var groups []string
		var v []float64
		for _, f := range w.Formats {
			groups = append(groups, f.Format)
			v = append(v, f.DecodeTokS.Mean)
		}
		r.Charts = append(r.Charts, Chart{Title: "Decode speed per weight format", File: "weights.svg",
			svg: BarChart("Per-request decode speed by weight format", "tokens/s", groups, []Series{{Name: "decode tokens/s (mean)", Values: v}},
				ChartOpts{Subtitle: filepath.Base(w.Config.Model.Path) + " | " + r.machine(w.Host)})})
	}
}

// machine is Host.Machine of a section's host, or of the report's when the section's
// result predates host records (a quality audit written before they existed).
func (r *Report) machine(h Host) string {
	if h.CPUs == 0 {
		h = r.Host
	}
	return h.Machine()
}

// subtitle names the load run's model and machine for its charts.
func (l *LoadResult) subtitle() string {
	what := l.Target
	if l.Model != nil {
		what = l.Model.Short()
	}
	return what + " | " + l.Host.Machine()
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '-'
	}, strings.NewReplacer("=", "", "≤", "le", "/s", "ps").Replace(s))
}

// WriteReport writes <name>.json, <name>.md and <name>-<chart>.svg into dir.
func WriteReport(r *Report, dir, name string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var files []string
	for i := range r.Charts {
		c := &r.Charts[i]
		c.File = name + "-" + c.File
		p := filepath.Join(dir, c.File)
		if err := os.WriteFile(p, []byte(c.svg), 0o644); err != nil {
			return nil, err
		}
		files = append(files, p)
	}
	data, err := marshal(r)
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, name+".json")
	if err := os.WriteFile(p, append(data, '\n'), 0o644); err != nil {
		return nil, err
	}
	files = append(files, p)
	p = filepath.Join(dir, name+".md")
	if err := os.WriteFile(p, []byte(r.Markdown()), 0o644); err != nil {
		return nil, err
	}
	return append(files, p), nil
}

// numberArray matches a JSON array of numbers as MarshalIndent spreads it, one per line.
var numberArray = regexp.MustCompile(`\[\s*-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*\s*\]`)

// marshal is indented JSON with arrays of numbers kept on one line: the per-request
// inter-token gaps would otherwise take a line each.
func marshal(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, err
	}
	return numberArray.ReplaceAllFunc(data, func(m []byte) []byte {
		return bytes.Join(bytes.Fields(m), nil)
	}), nil
}

// WriteJSON writes any result as indented JSON.
func WriteJSON(path string, v any) error {
	data, err := marshal(v)
	if err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadJSON reads a result written by WriteJSON.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func f1(v float64) string {
	if !finite(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f", v)
}

func f2(v float64) string {
	if !finite(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func ciPct(iv *Interval) string {
	return fmt.Sprintf("%+.2f%% [%+.2f, %+.2f]", iv.Value, iv.Lo, iv.Hi)
}

func ciPoints(iv *Interval) string {
	return fmt.Sprintf("%+.2f [%+.2f, %+.2f]", 100*iv.Value, 100*iv.Lo, 100*iv.Hi)
}

// Markdown renders the report.
func (r *Report) Markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# %s\n\n", r.Title)
	p("Written %s. Measured with %s on %s.\n\n", r.Created.Format("2006-01-02 15:04 UTC"), r.Host.GoVersion, r.Host.Machine())
	p("Commands:\n\n```sh\n")
	for _, c := range r.Commands {
		p("%s\n", c)
	}
	p("%s\n```\n\n", r.Command)

	p("## Executive summary\n\n")
	if len(r.Summary) == 0 {
		p("Nothing was measured.\n")
	}
	for _, s := range r.Summary {
		p("- %s\n", s.Text)
	}
	p("\n")
	for _, n := range r.Notes {
		p("> %s\n\n", n)
	}
	r.mdLoad(&b)
	r.mdOptimizations(&b)
	r.mdQuality(&b)
	r.mdRetained(&b)
	if r.Spec != nil {
		b.WriteString(SpecMarkdown(r.Spec))
	}

	p("## Risks and mitigations\n\n")
	p("Only measured effects that are statistically significant (95%% CI excludes zero) or observed failures.\n\n")
	if len(r.Risks) == 0 {
		p("No statistically significant adverse effect was measured, and no request failed.\n\n")
	} else {
		p("| area | measured effect | evidence | mitigation |\n|---|---|---|---|\n")
		for _, k := range r.Risks {
			p("| %s | %s | %s | %s |\n", mdCell(k.Area), mdCell(k.Effect), mdCell(k.Evidence), mdCell(k.Mitigation))
		}
		p("\n")
	}
	if len(r.Charts) > 0 {
		p("## Charts\n\n")
		for _, c := range r.Charts {
			p("![%s](%s)\n\n", c.Title, c.File)
		}
	}
	return b.String()
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

func (r *Report) mdLoad(b *strings.Builder) {
	l := r.Load
	if l == nil {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Load\n\n")
	p("Target: %s", l.Target)
	if l.Model != nil {
		m := l.Model
		p(" — model %s (%s weights", m.Path, m.Weights)
		if m.FloatEmbedding {
			p(", f32 embedding/classifier")
		}
		p("; dim %d, %d layers, vocab %d, context %d; %s of weights read per token)", m.Dim, m.Layers, m.Vocab, m.Context, human(m.WeightBytes))
	}
	p(".\n\nMeasured on %s.\n\n", l.Host.Machine())
	if len(l.Runs) > 0 {
		w := l.Runs[0].Workload
		if w.PromptsFile != "" {
			p("Workload: prompts from %s, ", w.PromptsFile)
		} else {
			p("Workload: random-token prompts of %d tokens, ", w.InputLen)
		}
		p("%d output tokens (range ratio %g, fixed output %v), %d requests per run after %d warm-up, seed %d.", w.OutputLen, w.RangeRatio, w.FixedOutput, w.NumPrompts, l.Runs[0].Config.Warmup, w.Seed)
		slo := l.Runs[0].Config.SLO
		p(" Goodput counts requests with TTFT ≤ %g ms and mean inter-token latency (TPOT) ≤ %g ms (0: unchecked).\n\n", slo.TTFTms, slo.ITLms)
	}
	p("| run | ok / sent | duration s | req/s | output tok/s | total tok/s | goodput req/s | TTFT mean / p50 / p90 / p99 ms | ITL mean / p50 / p90 / p99 ms | TPOT mean / p50 / p99 ms | E2E mean / p50 / p99 ms |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, run := range l.Runs {
		s := &run.Summary
		p("| %s | %d / %d | %.2f | %.2f | %.1f | %.1f | %.2f | %s / %s / %s / %s | %s / %s / %s / %s | %s / %s / %s | %s / %s / %s |\n",
			run.Label(), s.Completed, s.Requests, s.DurationS, s.RequestThroughput, s.OutputThroughput, s.TotalThroughput, s.Goodput,
			f1(s.TTFTms.Mean), f1(s.TTFTms.P50), f1(s.TTFTms.P90), f1(s.TTFTms.P99),
			f2(s.ITLms.Mean), f2(s.ITLms.P50), f2(s.ITLms.P90), f2(s.ITLms.P99),
			f2(s.TPOTms.Mean), f2(s.TPOTms.P50), f2(s.TPOTms.P99), f1(s.E2Ems.Mean), f1(s.E2Ems.P50), f1(s.E2Ems.P99))
	}
	p("\n")
	var bursty []string
	for _, run := range l.Runs {
		if s := &run.Summary; s.Completed > 0 && s.ITLms.P50 < 0.25*s.TPOTms.P50 {
			bursty = append(bursty, fmt.Sprintf("%s (ITL p50 %.2f ms, TPOT p50 %.2f ms)", run.Label(), s.ITLms.P50, s.TPOTms.P50))
		}
	}
	if len(bursty) > 0 {
		p("- ITL median far below TPOT at %s: tokens reach the client in bursts (several SSE chunks per read: the server writes the tokens that are ready together), so the ITL distribution is bimodal and TPOT is the better per-token figure.\n", strings.Join(bursty, ", "))
	}
	for _, run := range l.Runs {
		s := &run.Summary
		if s.Failed == 0 {
			continue
		}
		var kinds []string
		for _, k := range s.ErrorKinds() {
			kinds = append(kinds, fmt.Sprintf("%s × %d", k, s.Errors[k]))
		}
		p("- **%s: %d of %d requests failed** (%s). First error: `%s`\n", run.Label(), s.Failed, s.Requests, strings.Join(kinds, ", "), firstLine(s.FirstError))
	}
	p("\n")
	for _, run := range l.Runs {
		if run.Ops != nil {
			mdOps(b, run.Label(), run.Ops)
		}
	}
}

// mdOps lists a run's top ops and their share of step time (bench load --profile).
func mdOps(b *strings.Builder, label string, o *OpProfile) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	s := &o.Summary
	p("### Op profile, %s\n\n", label)
	p("%d passes (%s backend), %.1f ms of step time; the ops account for %.1f%% of it (the rest is the issuer's own host time between ops). Profile: `%s` (`go tool pprof -http : %s` draws the flame graph; `-tagfocus phase=decode` keeps the decode passes).\n\n",
		s.Steps, o.Backend, float64(s.StepNs)/1e6, 100*s.Share, o.File, o.File)
	if len(s.Ops) == 0 {
		p("No pass ran in the window.\n\n")
		return
	}
	p("| op | time ms | share of step time | calls | µs per call |\n|---|---|---|---|---|\n")
	for i, op := range s.Ops {
		if i == 10 {
			break
		}
		p("| %s | %.2f | %.1f%% | %d | %.1f |\n", op.Op, float64(op.Ns)/1e6, 100*op.Share, op.Calls, float64(op.Ns)/1e3/float64(max(op.Calls, 1)))
	}
	p("\n")
}

func (r *Report) mdOptimizations(b *strings.Builder) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## Optimizations, before and after\n\n")
	p("### Multi-stream prefill\n\n")
	if t := r.TTFT; t == nil {
		p("Not measured in this report (run `bench ttft-configs`).\n\n")
	} else {
		c := t.Config
		if other := r.mainModel(); other != "" && other != t.Model.Path {
			p("**This section measures %s, not %s as the rest of this report**", t.Model.Path, other)
			if t.Model.Synthetic {
				p(" (random weights, dim %d, %d layers, context %d: its speed is real, its text is noise; the mixed workload needs a longer context than %s has)", t.Model.Dim, t.Model.Layers, t.Model.Context, filepath.Base(other))
			}
			p(".\n\n")
		}
		p("Measured on %s.\n\n", t.Host.Machine())
		p("DESIGN.md's mixed workload on an in-process engine (model %s, %s weights): one %d-token prompt at t=0, then %d prompts of %d tokens every %v, each generating %d tokens; %d runs per configuration, the configurations taking turns (so drift in the machine's load falls on all alike), pooled. On the CPU the prefill streams are goroutine lanes.\n\n",
			t.Model.Path, t.Model.Weights, c.LongLen, c.Shorts, c.ShortLen, c.Interval, c.OutputLen, c.Repeats)
		p("| configuration | short TTFT p50 / p99 ms | long-prompt TTFT ms | ITL p50 / p99 ms | generated tok/s | total tok/s | failed |\n|---|---|---|---|---|---|---|\n")
		for _, x := range t.Configs {
			p("| %s (%s) | %.1f / %.1f | %.0f | %.2f / %.2f | %.1f | %.1f | %d |\n", x.Name, x.Description, x.ShortTTFTms.P50, x.ShortTTFTms.P99, x.LongTTFTms.Mean,
				x.ITLms.P50, x.ITLms.P99, x.GenTokensS, x.TotalTokS, x.Failed)
		}
		p("\nAgainst both single-stream baselines: difference = multi-stream − baseline of the mean over runs of each run's statistic, with a 95%% bootstrap CI over runs (unpaired; a run is the unit because the requests of one run share its stalls; fewer than 3 runs per configuration give no CI):\n\n")
		p("| metric | baseline | difference | relative | significant |\n|---|---|---|---|---|\n")
		for _, x := range t.Comparisons {
			p("| %s | %s | %s | %+.1f%% | %s |\n", x.Metric, x.Baseline, diffCI(x.Diff, x.Unit), 100*x.Relative, yesNo(x.Diff.Significant()))
		}
		p("\n")
	}
	p("### int8 weights\n\n")
	if w := r.Weights; w == nil {
		p("Decode speed not measured in this report (run `bench weight-configs`).\n\n")
	} else {
		p("Model %s, measured on %s.\n\n", w.Config.Model.Path, w.Host.Machine())
		p("Closed loop at concurrency %d on in-process engines, %d requests of %d prompt tokens and %d output tokens per format, the formats taking turns in %d rounds. On the CPU, f32 stands in for the 16-bit baseline a GPU would use (the CPU backend has no 16-bit path); against 16-bit weights int8 halves the bytes per weight, where against f32 it quarters them.\n\n",
			w.Config.Concurrency, w.Config.NumPrompts, w.Config.InputLen, w.Config.OutputLen, w.Config.Rounds)
		p("| format | weights read per token | decode tok/s per request (mean / p50) | TPOT p50 ms | output tok/s | failed |\n|---|---|---|---|---|---|\n")
		for _, f := range w.Formats {
			s := f.Summary
			p("| %s | %s | %.1f / %.1f | %.2f | %.1f | %d |\n", f.Format, human(f.WeightBytes), f.DecodeTokS.Mean, f.DecodeTokS.P50, s.TPOTms.P50, s.OutputThroughput, s.Failed)
		}
		p("\n| format | against | decode tok/s difference (95%% CI) | relative | significant |\n|---|---|---|---|---|\n")
		for _, c := range w.Comparisons {
			p("| %s | %s | %s | %+.1f%% | %s |\n", c.Config, c.Baseline, diffCI(c.Diff, ""), 100*c.Relative, yesNo(c.Diff.Significant()))
		}
		p("\n")
	}
	if q := r.Quality; q != nil {
		p("Quality of the int8 formats: see Quality below (")
		var parts []string
		for _, m := range q.Overall[1:] {
			parts = append(parts, fmt.Sprintf("%s: %s", m.Variant, m.Verdict))
		}
		p("%s, pooled over all texts).\n\n", strings.Join(parts, "; "))
	}
	p("### int8 activations\n\nThe q8_0 format multiplies Q8_0 weights by activations quantized per token in blocks of 32 (W8A8, as llama.cpp's Q8_0): its speed is in the table above when measured, its quality under Quality (variant q8_0). The per-row int8 format keeps float activations: W8A8 on per-row weights cost stories260K's teacher-forced top-1 agreement with f32 1.1 points (per-token scales) or 0.3 (blocks of 32), below the bar the int8 tests hold.\n\n")
	r.mdCompress(b)
}

// diffCI renders a difference with its interval, or says there is none.
func diffCI(iv Interval, unit string) string {
	if unit != "" {
		unit = " " + unit
	}
	if !finite(iv.Lo) || !finite(iv.Hi) {
		return fmt.Sprintf("%+.2f%s (no CI: fewer than 3 samples)", iv.Value, unit)
	}
	return fmt.Sprintf("%+.2f%s [%+.2f, %+.2f]", iv.Value, unit, iv.Lo, iv.Hi)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// RetainedBar is the seed's bar for a faster configuration: it keeps at least this
// much of the reference's quality, measured as teacher-forced top-1 agreement with it.
const RetainedBar = 0.92

// mdRetained is the seed's summary: for every variant the quality kept (top-1
// agreement with the f32 reference and next-token accuracy kept, pooled over all texts)
// against the throughput gained (decode tokens/s per request against the weight
// comparison's baseline, where that comparison measured a format of the same name).
func (r *Report) mdRetained(b *strings.Builder) {
	q := r.Quality
	if q == nil || len(q.Overall) < 2 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	speed := map[string]float64{}
	base := ""
	if w := r.Weights; w != nil && len(w.Formats) > 0 {
		base = w.Formats[0].Format
		for _, f := range w.Formats {
			speed[f.Format] = f.DecodeTokS.Mean
		}
	}
	p("## Quality retained against throughput gained\n\n")
	p("Quality retained is the teacher-forced top-1 agreement with the f32 reference, pooled over all %d texts (the seed's bar: %.0f%%), beside the next-token accuracy kept and the perplexity change.", len(q.Texts), 100*RetainedBar)
	if base != "" {
		p(" Throughput gained is decode tokens/s per request against %s in the weight comparison (same run, formats taking turns), where it measured a format of the same name.", base)
	}
	p("\n\n| variant | weights held as | weights read per token | top-1 agreement %% [95%% CI] | accuracy kept | perplexity change %% [CI] | meets %.0f%% | decode speed vs %s |\n|---|---|---|---|---|---|---|---|\n", 100*RetainedBar, orDash(base))
	info := map[string]VariantInfo{}
	for _, v := range q.Variants {
		info[v.Name] = v
	}
	for _, m := range q.Overall[1:] {
		v := info[m.Variant]
		gain := "–"
		if s, ok := speed[m.Variant]; ok && speed[base] > 0 {
			gain = fmt.Sprintf("%.2fx (%.1f vs %.1f tok/s)", s/speed[base], s, speed[base])
		}
		ag := m.Agreement
		meets := "no"
		switch {
		case ag.Lo >= RetainedBar:
			meets = "yes"
		case ag.Value >= RetainedBar:
			meets = "yes (its CI reaches below)"
		}
		p("| %s | %s | %s | %.2f [%.2f, %.2f] | %.2f%% | %s | %s | %s |\n", m.Variant, orDash(v.WeightTypes), human(v.WeightBytes),
			100*ag.Value, 100*ag.Lo, 100*ag.Hi, 100*m.AccuracyRatio, ciPct(m.PerplexityChange), meets, gain)
	}
	p("\n")
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

func (r *Report) mdQuality(b *strings.Builder) {
	q := r.Quality
	if q == nil {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	c := q.Config
	p("## Quality\n\n")
	p("Model %s. Each text's first %d tokens are scored once each, teacher-forced, in windows of %d tokens (BOS included) every %d tokens. Intervals are paired bootstrap 95%% CIs over windows (%d resamples, seed %d): the same windows for both configurations. \"No measurable change\" means the intervals of Δ NLL and Δ accuracy both span zero.\n\n",
		c.ModelPath, c.Tokens, c.Context, c.Stride, c.Resamples, c.Seed)
	p("| variant | available | what it is | weights read per token |\n|---|---|---|---|\n")
	for _, v := range q.Variants {
		wb := "–"
		if v.Available {
			wb = human(v.WeightBytes)
		}
		avail := "yes"
		if !v.Available {
			avail = v.Reason
		}
		p("| %s | %s | %s | %s |\n", v.Name, avail, v.Description, wb)
	}
	p("\n| text (category) | variant | perplexity | accuracy | ppl change %% [CI] | Δ accuracy points [CI] | top-1 agreement %% [CI] | retained ppl ratio / accuracy | verdict |\n|---|---|---|---|---|---|---|---|---|\n")
	rows := append([]TextQuality(nil), q.Texts...)
	rows = append(rows, TextQuality{Name: "all texts", Category: "pooled", Results: q.Overall})
	for _, t := range rows {
		for _, m := range t.Results {
			if m.DeltaNLL == nil {
				p("| %s (%s) | %s | %.4f | %.2f%% | reference | | | | |\n", t.Name, t.Category, m.Variant, m.Perplexity, 100*m.Accuracy)
				continue
			}
			ag := Interval{Value: 100 * m.Agreement.Value, Lo: 100 * m.Agreement.Lo, Hi: 100 * m.Agreement.Hi}
			p("| %s (%s) | %s | %.4f | %.2f%% | %s | %s | %.2f [%.2f, %.2f] | %.4f / %.4f | %s |\n", t.Name, t.Category, m.Variant, m.Perplexity, 100*m.Accuracy,
				ciPct(m.PerplexityChange), ciPoints(m.DeltaAccuracy), ag.Value, ag.Lo, ag.Hi, m.PerplexityRatio, m.AccuracyRatio, m.Verdict)
		}
	}
	p("\n")
	if len(q.Protocol) > 0 {
		p("Check rows: golden/nll.json's protocol (first 1,024 characters → 256 tokens + BOS) against its float64 reference columns; a row passes within 0.5%% perplexity.\n\n")
		p("| text | variant | column | perplexity | golden | rel. error | accuracy | golden | pass |\n|---|---|---|---|---|---|---|---|---|\n")
		rows := append([]ProtocolRow(nil), q.Protocol...)
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].Variant < rows[j].Variant })
		for _, x := range rows {
			p("| %s | %s | %s | %.5f | %.5f | %+.4f%% | %.5f | %.5f | %s |\n", x.Text, x.Variant, x.Column, x.Perplexity, x.GoldenPerplexity, 100*x.RelErr, x.Accuracy, x.GoldenAccuracy, yesNo(x.Pass))
		}
		p("\n")
	}
}
