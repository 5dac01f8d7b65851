package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/specdec"
)

// SpecConfig is the speculative-decoding experiment: greedy decoding of the same
// prompts with speculation off and on (each arm its own in-process engine on one
// backend), per workload and concurrency, the arms taking turns in Rounds rounds so
// that a change in the machine's load falls on all of them alike.
type SpecConfig struct {
	Target      ModelSpec `json:"target"`
	Draft       ModelSpec `json:"draft"`       // the draft_model arms' draft (same backend as the target)
	Arms        []string  `json:"arms"`        // "off" first, then "ngram:K" and "draft:K"
	Workloads   []string  `json:"workloads"`   // "repeat", "story"
	Concurrency []int     `json:"concurrency"` // e.g. 1, 16
	NumPrompts  int       `json:"num_prompts"` // per arm, workload, concurrency and round
	OutputLen   int       `json:"output_len"`
	Rounds      int       `json:"rounds"`
	TextPath    string    `json:"text_path"` // passages the prompts are cut from (one story per <|endoftext|>)
	LookupMax   int       `json:"prompt_lookup_max"`
	LookupMin   int       `json:"prompt_lookup_min"`
	Resamples   int       `json:"resamples"`
	Seed        uint64    `json:"seed"`
}

// SpecWorkloads describes the prompt sets.
var SpecWorkloads = map[string]string{
	"repeat": "a passage (the first ~2 sentences of a story) written twice, then its first words again: a model that copies continues the passage from the prompt (stories260K, at 260K parameters, mostly tells a new story instead)",
	"story":  "the first sentence of a story: a fresh continuation, little for prompt lookup to find",
}

// SpecCell is one arm on one workload at one concurrency, over all rounds.
type SpecCell struct {
	Workload    string           `json:"workload"`
	Concurrency int              `json:"concurrency"`
	Arm         string           `json:"arm"`
	Runs        []*LoadRun       `json:"runs"`
	Summary     Summary          `json:"summary"`
	DecodeTokS  Dist             `json:"tokens_per_s"`        // per request: output tokens / end-to-end time
	TPOTTokS    Dist             `json:"decode_tokens_per_s"` // per request: 1000/TPOT (decode only; see SpecMarkdown)
	Spec        engine.SpecStats `json:"spec"`                // this cell's drafts and acceptances (warm-up requests included)
	Acceptance  float64          `json:"acceptance_rate"`     // accepted / draft tokens
	PerPos      []float64        `json:"acceptance_per_position"`
	TokensPass  float64          `json:"tokens_per_verification"` // 1 + accepted/drafts
	SpeedUp     *Comparison      `json:"speed_up,omitempty"`      // per-request tokens/s against "off"
	Throughput  float64          `json:"throughput_ratio"`        // output tokens/s against "off"
}

// SpecResult is the whole experiment.
type SpecResult struct {
	Command string     `json:"command,omitempty"`
	Config  SpecConfig `json:"config"`
	Host    Host       `json:"host"`
	Target  ModelInfo  `json:"target_model"`
	Draft   *ModelInfo `json:"draft_model,omitempty"`
	Load    string     `json:"load_average"` // /proc/loadavg before and after
	Cells   []SpecCell `json:"cells"`
}

// ParseSpecArm turns "off", "ngram:K" or "draft:K" into a configuration.
func ParseSpecArm(s string, c SpecConfig) (specdec.Config, error) {
	if s == "off" {
		return specdec.Config{}, nil
	}
	method, ks, ok := strings.Cut(s, ":")
	k, err := strconv.Atoi(ks)
	if !ok || err != nil {
		return specdec.Config{}, fmt.Errorf("arm %q: want off, ngram:K or draft:K", s)
	}
	var sc specdec.Config
	switch method {
	case "ngram":
		sc = specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: k, PromptLookupMax: c.LookupMax, PromptLookupMin: c.LookupMin}
	case "draft":
		sc = specdec.Config{Method: specdec.MethodDraftModel, Model: c.Draft.Path, NumSpeculativeTokens: k}
	default:
		return specdec.Config{}, fmt.Errorf("arm %q: method %q is ngram or draft", s, method)
	}
	return sc, sc.Normalize()
}

// specPrompts cuts the workload's prompts out of the stories in path.
func specPrompts(path, workload string, n int) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, story := range strings.Split(string(data), "<|endoftext|>") {
		story = strings.Join(strings.Fields(story), " ")
		sentences := strings.SplitAfter(story, ". ")
		if len(sentences) < 3 {
			continue
		}
		switch workload {
		case "repeat":
			passage := strings.TrimSpace(sentences[0] + sentences[1])
			words := strings.Fields(passage)
			out = append(out, passage+" "+passage+" "+strings.Join(words[:min(4, len(words))], " "))
		case "story":
			out = append(out, strings.TrimSpace(sentences[0]))
		default:
			return nil, fmt.Errorf("unknown workload %q (repeat, story)", workload)
		}
		if len(out) == n {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no story of 3 sentences", path)
	}
	return out, nil
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// RunSpec runs the experiment.
func RunSpec(ctx context.Context, cfg SpecConfig, prog func(string) *Progress) (*SpecResult, error) {
	if len(cfg.Arms) == 0 || cfg.Arms[0] != "off" {
		return nil, fmt.Errorf("the first arm must be \"off\" (the baseline), got %v", cfg.Arms)
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 3
	}
	if cfg.Resamples <= 0 {
		cfg.Resamples = 1000
	}
	if prog == nil {
		prog = func(string) *Progress { return nil }
	}
	be := cpu.New(cpu.Options{Threads: cfg.Target.Threads})
	open := func(s ModelSpec) (*llm.Loaded, error) {
		opt, err := s.Options()
		if err != nil {
			return nil, err
		}
		return llm.Open(s.Path, s.TokenizerPath, be, opt)
	}
	target, err := open(cfg.Target)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	res := &SpecResult{Config: cfg, Host: ThisHost(), Target: InfoOf(cfg.Target, target), Load: "before " + loadAverage()}
	var draft *llm.Loaded
	type arm struct {
		name string
		sc   specdec.Config
	}
	var arms []arm
	for _, a := range cfg.Arms {
		sc, err := ParseSpecArm(a, cfg)
		if err != nil {
			return nil, err
		}
		if sc.Method == specdec.MethodDraftModel && draft == nil {
			if draft, err = open(cfg.Draft); err != nil {
				return nil, fmt.Errorf("draft: %w", err)
			}
			defer draft.Close()
			info := InfoOf(cfg.Draft, draft)
			res.Draft = &info
		}
		arms = append(arms, arm{a, sc})
	}
	dir, err := os.MkdirTemp("", "vireo-spec-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, wl := range cfg.Workloads {
		prompts, err := specPrompts(cfg.TextPath, wl, 256)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(dir, wl+".txt")
		if err := writeLines(file, prompts); err != nil {
			return nil, err
		}
		for _, conc := range cfg.Concurrency {
			cells := make([]SpecCell, len(arms))
			engines := make([]*engine.Engine, len(arms))
			for i, a := range arms {
				opt := engine.Options{MaxNumSeqs: max(16, conc), Speculative: a.sc}
				if a.sc.Method == specdec.MethodDraftModel {
					opt.Draft = draft.Model
				}
				e, err := engine.New(target.Model, target.Tokenizer, opt)
				if err != nil {
					return nil, err
				}
				defer e.Close()
				engines[i] = e
				cells[i] = SpecCell{Workload: wl, Concurrency: conc, Arm: a.name}
			}
			for round := 0; round < cfg.Rounds; round++ {
				for i, a := range arms {
					w := WorkloadConfig{NumPrompts: cfg.NumPrompts, OutputLen: cfg.OutputLen, PromptsFile: file, Seed: cfg.Seed + uint64(round), FixedOutput: true}
					lc := LoadConfig{Concurrency: conc, Warmup: 1, Seed: cfg.Seed + uint64(round)}
					// The same prompts for every arm in a round: the prompt file's lines,
					// from a round-dependent offset.
					w.PromptsFile = roundFile(dir, file, prompts, round*cfg.NumPrompts)
					run, err := RunLoad(ctx, &EngineTarget{Engine: engines[i]}, w, lc, prog(fmt.Sprintf("%s c=%d %s r%d", wl, conc, a.name, round)))
					if err != nil {
						return nil, err
					}
					cells[i].Runs = append(cells[i].Runs, run)
				}
			}
			var base []float64
			var baseTput float64
			for i := range arms {
				c := &cells[i]
				var recs []Record
				var dur float64
				for _, run := range c.Runs {
					recs = append(recs, run.Records...)
					dur += run.Summary.DurationS
				}
				var rates, tpot []float64
				for j := range recs {
					if r := &recs[j]; r.OK() && r.TPOTms() > 0 {
						tpot = append(tpot, 1000/r.TPOTms())
					}
					// Tokens over the whole request: on a model this small the
					// client sees a step's tokens in bursts, so TPOT is not
					// measurable; the prompts are the same for every arm.
					if r := &recs[j]; r.OK() && r.E2Ems > 0 {
						rates = append(rates, float64(r.OutputTokens)/(r.E2Ems/1000))
					}
				}
				c.Summary = Summarize(recs, dur, SLO{})
				c.DecodeTokS = NewDist(rates)
				c.TPOTTokS = NewDist(tpot)
				c.Spec = engines[i].SpecStats() // the engine's whole life: warm-up requests included
				if c.Spec.DraftTokens > 0 {
					c.Acceptance = float64(c.Spec.AcceptedTokens) / float64(c.Spec.DraftTokens)
					c.TokensPass = 1 + float64(c.Spec.AcceptedTokens)/float64(c.Spec.Drafts)
					for _, n := range c.Spec.AcceptedPerPos {
						c.PerPos = append(c.PerPos, float64(n)/float64(c.Spec.Drafts))
					}
				}
				if i == 0 {
					base, baseTput = rates, c.Summary.OutputThroughput
					continue
				}
				mean := func(x []float64) float64 { return NewDist(x).Mean }
				iv := BootstrapDiff(base, rates, cfg.Resamples, cfg.Seed+uint64(i), mean)
				cmp := Comparison{Metric: "per-request tokens/s (output tokens / end-to-end time)", Config: c.Arm, Baseline: "off", Unit: "tokens/s", Diff: iv}
				if b := mean(base); b != 0 {
					cmp.Relative = iv.Value / b
				}
				c.SpeedUp = &cmp
				if baseTput > 0 {
					c.Throughput = c.Summary.OutputThroughput / baseTput
				}
			}
			res.Cells = append(res.Cells, cells...)
			for _, e := range engines {
				e.Close()
			}
		}
	}
	res.Load += ", after " + loadAverage()
	return res, nil
}

// roundFile writes the prompts of one round (from offset on, wrapping) to its own file.
func roundFile(dir, file string, prompts []string, offset int) string {
	rot := append(append([]string(nil), prompts[offset%len(prompts):]...), prompts[:offset%len(prompts)]...)
	p := fmt.Sprintf("%s.%d", file, offset)
	if err := writeLines(p, rot); err != nil {
		return file
	}
	return p
}

func writeLines(path string, lines []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// SpecMarkdown is the report's speculative-decoding section.
func SpecMarkdown(r *SpecResult) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	c := r.Config
	p("## Speculative decoding\n\n")
	p("Greedy decoding of %d-token continuations (`ignore_eos`), each arm its own in-process engine on one CPU backend, "+
		"the arms taking turns in %d rounds of %d requests per workload and concurrency (1 warm-up request each). "+
		"Target %s (%s weights)", c.OutputLen, c.Rounds, c.NumPrompts, r.Target.Path, r.Target.Weights)
	if r.Draft != nil {
		p("; draft %s (%s weights)", r.Draft.Path, r.Draft.Weights)
	}
	p("; prompt lookup n-grams of %d..%d tokens. Per request, tokens/s is output tokens over the end-to-end time (prefill "+
		"included, the same prompts for every arm); the speed-up is its mean against \"off\" with a bootstrap 95%% CI; output tokens/s "+
		"is the whole run's. Decode tokens/s (1000/TPOT, TPOT = (E2E − TTFT)/(tokens − 1)) leaves prefill out but is only meaningful "+
		"where a token takes longer than the client's scheduling delay (not for stories260K on a loaded machine, where a step's "+
		"tokens reach the client in bursts). Acceptance is accepted over drafted tokens; per position j, drafts whose j-th token was accepted over "+
		"verification passes. Load average (1, 5, 15 min): %s. Command: `%s`.\n\n", c.LookupMin, c.LookupMax, r.Load, r.Command)
	for _, wl := range c.Workloads {
		p("**%s**: %s.\n\n", wl, SpecWorkloads[wl])
		p("| concurrency | arm | acceptance | accepted per position | tokens per verification | tokens/s per request | speed-up (95%% CI) | decode tokens/s (1000/TPOT) | output tokens/s | throughput ratio |\n")
		p("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, cell := range r.Cells {
			if cell.Workload != wl {
				continue
			}
			acc, pos, tpv, su, tr := "—", "—", "—", "1 (baseline)", "1"
			if cell.Arm != "off" {
				acc = fmt.Sprintf("%.1f%%", 100*cell.Acceptance)
				var ps []string
				for _, v := range cell.PerPos {
					ps = append(ps, fmt.Sprintf("%.2f", v))
				}
				pos = strings.Join(ps, " / ")
				tpv = fmt.Sprintf("%.2f", cell.TokensPass)
				if s := cell.SpeedUp; s != nil {
					base := cell.DecodeTokS.Mean - s.Diff.Value
					if base > 0 {
						su = fmt.Sprintf("%.2fx (%.2f–%.2f)", cell.DecodeTokS.Mean/base, (base+s.Diff.Lo)/base, (base+s.Diff.Hi)/base)
					}
				}
				tr = fmt.Sprintf("%.2f", cell.Throughput)
			}
			p("| %d | %s | %s | %s | %s | %.1f | %s | %.1f | %.1f | %s |\n", cell.Concurrency, cell.Arm, acc, pos, tpv, cell.DecodeTokS.Mean, su, cell.TPOTTokS.Mean, cell.Summary.OutputThroughput, tr)
		}
		p("\n")
	}
	return b.String()
}

// WriteSpecReport writes the section as a Markdown file of its own.
func WriteSpecReport(r *SpecResult, path string) error {
	md := "# Speculative decoding on " + r.Host.Device + "\n\n" + fmt.Sprintf("Written %s, %s/%s, %d CPUs (GOMAXPROCS %d), %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.Host.OS, r.Host.Arch, r.Host.CPUs, r.Host.GOMAXPROCS, r.Host.GoVersion) + SpecMarkdown(r)
	return os.WriteFile(path, []byte(md), 0o644)
}

// AddSpec puts a speculative-decoding result into the report.
func (r *Report) AddSpec(s *SpecResult) {
	r.Spec = s
	if s.Command != "" {
		r.Commands = append(r.Commands, s.Command)
	}
}
