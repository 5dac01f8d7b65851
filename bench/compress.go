package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/compress"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// The trade-off curve of pruning (issue 35): for each compression setting, the quality
// score against the uncompressed model and the speed it buys, with and without int8.
//
// Quality score: next-token accuracy on the eval texts relative to the uncompressed
// model's in float32 (AccuracyRatio, pooled over every text's windows, with a paired
// bootstrap 95% CI over windows). A setting "keeps" the quality when the score is at
// least CompressConfig.Threshold (0.92 by default, the seed's bar).
//
// Speed: prefill tokens/s (one pass over PromptLen random tokens) and decode tokens/s
// (DecodeLen single-token passes after it) of a Session on the CPU backend, every
// arm — the dense model and each setting, in each weight format — measured once per
// round, the arms taking turns in an order rotated every round, so that drift in the
// machine's load falls on all alike. A setting's speed-up is the ratio of its median
// to the dense model's in the same format, with a bootstrap 95% CI over rounds.

// CompressConfig configures RunCompress.
type CompressConfig struct {
	ModelPath string   `json:"model_path"`
	Settings  []string `json:"settings"` // ParseCompressSetting specs
	// Formats are the weight formats each arm runs in: "f32" and/or "int8".
	Formats []string `json:"formats"`
	// Quality audits the settings on Texts (off for random-weight synthetic models).
	Quality   bool          `json:"quality"`
	Texts     []QualityText `json:"texts,omitempty"`
	Tokens    int           `json:"tokens,omitempty"`
	Context   int           `json:"context,omitempty"`
	Stride    int           `json:"stride,omitempty"`
	Resamples int           `json:"resamples"`
	Seed      uint64        `json:"seed"`
	Threshold float64       `json:"threshold"` // quality score a setting must keep (default 0.92)
	// Calib is the calibration text of whitening and Wanda: the training part of the
	// eval data, past the tokens the seen-text audit scores.
	Calib      compress.CalibOptions `json:"calib"`
	PowerIters int                   `json:"power_iters"`
	Type       string                `json:"type"` // storage of factors and kept values (f32, f16)
	PromptLen  int                   `json:"prompt_len"`
	DecodeLen  int                   `json:"decode_len"`
	Rounds     int                   `json:"rounds"`
	Threads    int                   `json:"threads"` // backend threads of the speed runs (0: GOMAXPROCS)
	// WorkDir holds the compressed checkpoints (default: a temporary folder, removed).
	WorkDir string `json:"-"`
}

// CompressSetting is one parsed setting.
type CompressSetting struct {
	Spec    string           `json:"spec"`
	Options compress.Options `json:"-"`
}

// ParseCompressSetting reads a setting spec: "lowrank-<rule>[-w][-<group>]" with rule
// b<budget> (parameter budget), f<fraction> (rank fraction) or e<energy>, -w for
// whitening; or "2:4-<mag|wanda>[-<group>]". A group restricts it to "attn" (q, k, v,
// output) or "ffn" (gate, up, down) matrices; the default is all seven.
func ParseCompressSetting(spec string) (CompressSetting, error) {
	s := CompressSetting{Spec: spec}
	parts := strings.Split(spec, "-")
	bad := func(why string) (CompressSetting, error) {
		return s, fmt.Errorf("compress setting %q: %s (lowrank-b0.5, lowrank-e0.95-w-ffn, 2:4-mag, 2:4-wanda-attn)", spec, why)
	}
	group := func(p []string) ([]string, []string, error) {
		if len(p) > 0 {
			switch p[len(p)-1] {
			case "attn":
				return p[:len(p)-1], []string{"attn_q", "attn_k", "attn_v", "attn_output"}, nil
			case "ffn":
				return p[:len(p)-1], []string{"ffn_gate", "ffn_up", "ffn_down"}, nil
			}
		}
		return p, nil, nil
	}
	switch parts[0] {
	case "lowrank":
		rest, mats, _ := group(parts[1:])
		if len(rest) == 0 || len(rest) > 2 || (len(rest) == 2 && rest[1] != "w") || len(rest[0]) < 2 {
			return bad("want a rule, then optionally -w and a group")
		}
		v, err := strconv.ParseFloat(rest[0][1:], 64)
		if err != nil {
			return bad("the rule's number: " + err.Error())
		}
		switch rest[0][0] {
		case 'b':
			s.Options.Rank.Budget = v
		case 'f':
			s.Options.Rank.Fraction = v
		case 'e':
			s.Options.Rank.Energy = v
		default:
			return bad("the rule is b (budget), f (fraction) or e (energy)")
		}
		s.Options.LowRank = mats
		s.Options.Whiten = len(rest) == 2
	case "2:4":
		rest, mats, _ := group(parts[1:])
		if len(rest) != 1 {
			return bad("want the criterion, then optionally a group")
		}
		switch rest[0] {
		case "mag":
			s.Options.Prune = compress.PruneMagnitude
		case "wanda":
			s.Options.Prune = compress.PruneWanda
		default:
			return bad("the criterion is mag or wanda")
		}
		s.Options.Sparse = mats
	default:
		return bad("it starts with lowrank or 2:4")
	}
	return s, nil
}

// needsCalib reports whether the setting uses calibration text.
func (s CompressSetting) needsCalib() bool {
	return s.Options.Whiten || s.Options.Prune == compress.PruneWanda
}

// CompressArm is one (setting, format) pair: the dense model is setting "dense".
type CompressArm struct {
	Setting string `json:"setting"`
	Format  string `json:"format"` // f32 or int8 (weights as the backend holds them)
	Recipe  string `json:"recipe,omitempty"`
	// Compression: what the checkpoint holds (nil for the dense model).
	Compress  *compress.Report `json:"compress,omitempty"`
	FileBytes int64            `json:"file_bytes,omitempty"`
	// WeightBytes are the bytes of weights the backend reads per token (memory).
	WeightBytes int64     `json:"weight_bytes_per_token"`
	Prefill     []float64 `json:"prefill_tokens_per_s"` // one per round
	Decode      []float64 `json:"decode_tokens_per_s"`
	// Speed-ups against the dense model in the same format: ratio of medians, bootstrap
	// 95% CI over rounds (none for the dense arms).
	PrefillSpeedup *Interval `json:"prefill_speedup,omitempty"`
	DecodeSpeedup  *Interval `json:"decode_speedup,omitempty"`
	// Quality: pooled over the texts against the uncompressed f32 model; per text.
	Quality *Metrics  `json:"quality,omitempty"`
	PerText []Metrics `json:"per_text,omitempty"`
	Keeps   bool      `json:"keeps_quality"` // Quality.AccuracyRatio >= Threshold
	path    string
}

// Name is "setting/format".
func (a *CompressArm) Name() string { return a.Setting + "/" + a.Format }

// CompressResult is the whole curve.
type CompressResult struct {
	Command        string         `json:"command,omitempty"`
	Config         CompressConfig `json:"config"`
	Host           Host           `json:"host"`
	Model          ModelInfo      `json:"model"`
	Arms           []*CompressArm `json:"arms"`
	Quality        *QualityResult `json:"quality,omitempty"`
	Recommendation string         `json:"recommendation"`
}

// RunCompress compresses the model with every setting, audits quality (when asked) and
// measures speed and memory of every arm.
func RunCompress(cfg CompressConfig, log func(string)) (*CompressResult, error) {
	if log == nil {
		log = func(string) {}
	}
	if len(cfg.Formats) == 0 {
		cfg.Formats = []string{"f32", "int8"}
	}
	for _, f := range cfg.Formats {
		if f != "f32" && f != "int8" {
			return nil, fmt.Errorf("compress bench: format %q (f32 or int8)", f)
		}
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 0.92
	}
	if cfg.Resamples <= 0 {
		cfg.Resamples = 1000
	}
	if cfg.PromptLen <= 0 {
		cfg.PromptLen = 128
	}
	if cfg.DecodeLen <= 0 {
		cfg.DecodeLen = 32
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 5
	}
	if cfg.Type == "" {
		cfg.Type = "f32"
	}
	typ, ok := ggml.ParseType(cfg.Type)
	if !ok || (typ != ggml.F32 && typ != ggml.F16 && typ != ggml.BF16) {
		return nil, fmt.Errorf("compress bench: --type %q (f32, f16 or bf16)", cfg.Type)
	}
	var settings []CompressSetting
	for _, spec := range cfg.Settings {
		s, err := ParseCompressSetting(spec)
		if err != nil {
			return nil, err
		}
		if s.needsCalib() && cfg.Calib.Path == "" {
			return nil, fmt.Errorf("compress setting %q needs calibration text (--calib)", spec)
		}
		settings = append(settings, s)
	}
	if cfg.Quality && len(cfg.Texts) == 0 {
		return nil, errors.New("compress bench: a quality audit needs eval texts")
	}
	dir := cfg.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "vireo-compress-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	res := &CompressResult{Config: cfg, Host: ThisHost()}
	for _, f := range cfg.Formats {
		res.Arms = append(res.Arms, &CompressArm{Setting: "dense", Format: f, path: cfg.ModelPath})
	}
	for i, s := range settings {
		o := s.Options
		o.Type = typ
		o.SVD = compress.SVDOptions{PowerIters: cfg.PowerIters, Seed: cfg.Seed}
		if s.needsCalib() {
			o.Calib = cfg.Calib
		}
		path := filepath.Join(dir, fmt.Sprintf("setting-%d.gguf", i))
		t0 := time.Now()
		rep, err := compress.Run(cfg.ModelPath, path, o)
		if err != nil {
			return nil, fmt.Errorf("compress bench: %s: %w", s.Spec, err)
		}
		log(fmt.Sprintf("compressed %s in %.1f s: %s", s.Spec, time.Since(t0).Seconds(), rep.Recipe))
		for _, f := range cfg.Formats {
			res.Arms = append(res.Arms, &CompressArm{Setting: s.Spec, Format: f, Recipe: rep.Recipe, Compress: rep, FileBytes: rep.Bytes, path: path})
		}
	}
	if cfg.Quality {
		if err := compressQuality(res, log); err != nil {
			return nil, err
		}
	}
	if err := compressSpeed(res, log); err != nil {
		return nil, err
	}
	res.Recommendation = res.recommend()
	res.Host.End()
	return res, nil
}

func formatOptions(f string) model.Options {
	if f == "int8" {
		return model.Options{Weights: model.WeightsInt8}
	}
	return model.Options{Weights: model.WeightsF32}
}

// compressQuality audits every arm against the dense f32 model.
func compressQuality(res *CompressResult, log func(string)) error {
	cfg := res.Config
	qc := QualityConfig{ModelPath: cfg.ModelPath, Texts: cfg.Texts, Tokens: cfg.Tokens, Context: cfg.Context, Stride: cfg.Stride,
		Resamples: cfg.Resamples, Seed: cfg.Seed, Threads: 1}
	qc.Variants = []Variant{{Name: "dense/f32", Description: "the uncompressed model, float32 (the reference)", Available: true, Options: formatOptions("f32")}}
	for _, a := range res.Arms {
		if a.Name() == "dense/f32" {
			continue
		}
		v := Variant{Name: a.Name(), Description: a.Recipe, Available: true, Options: formatOptions(a.Format)}
		if a.Setting != "dense" {
			v.Path = a.path
		} else {
			v.Description = "the uncompressed model, " + a.Format
		}
		qc.Variants = append(qc.Variants, v)
	}
	t0 := time.Now()
	q, err := RunQuality(qc)
	if err != nil {
		return fmt.Errorf("compress bench: quality: %w", err)
	}
	log(fmt.Sprintf("quality audit of %d variants in %.1f s", len(qc.Variants), time.Since(t0).Seconds()))
	res.Quality = q
	for _, a := range res.Arms {
		for i := range q.Overall {
			if q.Overall[i].Variant == a.Name() {
				m := q.Overall[i]
				a.Quality = &m
				if a.Name() == "dense/f32" {
					m.AccuracyRatio = 1
					a.Quality.AccuracyRatioCI = &Interval{Value: 1, Lo: 1, Hi: 1}
				}
				a.Keeps = a.Quality.AccuracyRatio >= cfg.Threshold || a.Name() == "dense/f32"
			}
		}
		for _, t := range q.Texts {
			for _, m := range t.Results {
				if m.Variant == a.Name() {
					a.PerText = append(a.PerText, m)
				}
			}
		}
	}
	return nil
}

// keepLoadedBytes bounds the weights compressSpeed keeps loaded at once (the int8
// TinyLlama-1.1B shape with three settings: about 4 GiB).
const keepLoadedBytes = 6 << 30

// compressSpeed measures prefill and decode speed of every arm, rounds taking turns.
func compressSpeed(res *CompressResult, log func(string)) error {
	cfg := res.Config
	open := func(a *CompressArm) (*llm.Loaded, error) {
		return llm.Open(a.path, "", cpu.New(cpu.Options{Threads: cfg.Threads}), formatOptions(a.Format))
	}
	// The models stay loaded across rounds when all of them together fit in
	// keepLoadedBytes (the first arm is the dense model, the largest in its format, so
	// its bytes times the arms bound the total); otherwise each is loaded for each
	// measurement (loading is not timed) so that only one is in memory at a time.
	first, err := open(res.Arms[0])
	if err != nil {
		return fmt.Errorf("compress bench: %w", err)
	}
	res.Model = InfoOf(ModelSpec{Path: cfg.ModelPath, Weights: res.Arms[0].Format, Threads: cfg.Threads}, first)
	keep := first.WeightBytes*int64(len(res.Arms)) <= keepLoadedBytes
	held := map[*CompressArm]*llm.Loaded{}
	defer func() {
		for _, m := range held {
			m.Close()
		}
	}()
	if keep {
		held[res.Arms[0]] = first
	} else {
		first.Close()
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0xc0ffee))
	vocab := res.Model.Vocab
	for round := 0; round < cfg.Rounds; round++ {
		prompt := make([]int32, cfg.PromptLen)
		for i := range prompt {
			prompt[i] = int32(3 + r.IntN(max(1, vocab-3)))
		}
		n := len(res.Arms)
		for k := 0; k < n; k++ {
			a := res.Arms[(k+round)%n]
			m := held[a]
			if m == nil {
				if m, err = open(a); err != nil {
					return fmt.Errorf("compress bench: %s: %w", a.Name(), err)
				}
				if keep {
					held[a] = m
				}
			}
			a.WeightBytes = m.WeightBytes
			pre, dec, err := timeSession(m, prompt, cfg.DecodeLen)
			if !keep {
				m.Close()
			}
			if err != nil {
				return fmt.Errorf("compress bench: %s: %w", a.Name(), err)
			}
			a.Prefill = append(a.Prefill, pre)
			a.Decode = append(a.Decode, dec)
		}
		log(fmt.Sprintf("speed round %d/%d done", round+1, cfg.Rounds))
	}
	res.speedups()
	return nil
}

// speedups sets each setting's speed-ups against the dense model in the same format:
// per round the ratio of the two speeds (the arms took turns within a round, so a
// round's ratio cancels the machine's drift between rounds), their median, and a
// bootstrap 95% CI over rounds.
func (res *CompressResult) speedups() {
	cfg := res.Config
	base := map[string]*CompressArm{}
	for _, a := range res.Arms {
		if a.Setting == "dense" {
			base[a.Format] = a
		}
	}
	for i, a := range res.Arms {
		b := base[a.Format]
		if a.Setting == "dense" || b == nil {
			continue
		}
		p := pairedRatio(b.Prefill, a.Prefill, cfg.Resamples, cfg.Seed+uint64(i))
		d := pairedRatio(b.Decode, a.Decode, cfg.Resamples, cfg.Seed+uint64(i)+7)
		a.PrefillSpeedup, a.DecodeSpeedup = &p, &d
	}
}

// timeSession prefills prompt in one pass and decodes n tokens greedily, one pass each,
// and returns both speeds in tokens/s.
func timeSession(m *llm.Loaded, prompt []int32, n int) (prefill, decode float64, err error) {
	s, err := llm.NewSession(m.Model, len(prompt)+n, len(prompt))
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	logits, err := s.Feed(prompt)
	if err != nil {
		return 0, 0, err
	}
	tp := time.Since(t0)
	t1 := time.Now()
	for i := 0; i < n; i++ {
		if logits, err = s.FeedGenerated([]int32{argmax(logits)}); err != nil {
			return 0, 0, err
		}
	}
	td := time.Since(t1)
	return float64(len(prompt)) / tp.Seconds(), float64(n) / td.Seconds(), nil
}

func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

// Median is the median of v (NaN when empty).
func Median(v []float64) float64 { return median(v) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// pairedRatio is the median over rounds of b[i]/a[i] with a bootstrap 95% CI over
// rounds (no CI under 3 rounds).
func pairedRatio(a, b []float64, resamples int, seed uint64) Interval {
	n := min(len(a), len(b))
	r := make([]float64, n)
	for i := range r {
		r[i] = b[i] / a[i]
	}
	iv := Interval{Value: median(r), Lo: math.NaN(), Hi: math.NaN()}
	if n < 3 {
		return iv
	}
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	vals := make([]float64, 0, resamples)
	s := make([]float64, n)
	for k := 0; k < resamples; k++ {
		for i := range s {
			s[i] = r[rng.IntN(n)]
		}
		vals = append(vals, median(s))
	}
	sort.Float64s(vals)
	iv.Lo, iv.Hi = percentileSorted(vals, 2.5), percentileSorted(vals, 97.5)
	return iv
}

// recommend is the report's closing line: which settings keep the quality score, and
// what they buy. A setting keeps it when every format it ran in does.
func (res *CompressResult) recommend() string {
	cfg := res.Config
	th := fmt.Sprintf("%.0f%%", 100*cfg.Threshold)
	// The settings in order, with their arms per format.
	var names []string
	arms := map[string][]*CompressArm{}
	for _, a := range res.Arms {
		if a.Setting == "dense" {
			continue
		}
		if arms[a.Setting] == nil {
			names = append(names, a.Setting)
		}
		arms[a.Setting] = append(arms[a.Setting], a)
	}
	speed := func(as []*CompressArm) string {
		var d, p []string
		for _, a := range as {
			d = append(d, fmt.Sprintf("%.2fx %s", a.DecodeSpeedup.Value, a.Format))
			p = append(p, fmt.Sprintf("%.2fx %s", a.PrefillSpeedup.Value, a.Format))
		}
		return "decode " + strings.Join(d, ", ") + "; prefill " + strings.Join(p, ", ")
	}
	kept := func(a *CompressArm) string {
		return fmt.Sprintf("%.1f%% of the block weights", 100*float64(a.Compress.StoredParam)/float64(a.Compress.DenseParams))
	}
	if !cfg.Quality {
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s (%s): %s", n, kept(arms[n][0]), speed(arms[n])))
		}
		return fmt.Sprintf("Speed only (random weights: no quality to keep; see the stories260K curve for quality). Against the dense model in the same format: %s.", strings.Join(parts, "; "))
	}
	var keep, drop, noop []string
	bestDecode := 0.0
	for _, n := range names {
		as := arms[n]
		if c := as[0].Compress; c != nil && c.StoredParam >= c.DenseParams {
			noop = append(noop, n)
			continue
		}
		all, straddles := true, false
		var scores []string
		for _, a := range as {
			q := a.Quality
			if q == nil {
				all = false
				continue
			}
			sc := fmt.Sprintf("%s %.1f%%", a.Format, 100*q.AccuracyRatio)
			if q.AccuracyRatioCI != nil && finite(q.AccuracyRatioCI.Lo) {
				sc += fmt.Sprintf(" [%.1f–%.1f]", 100*q.AccuracyRatioCI.Lo, 100*q.AccuracyRatioCI.Hi)
				straddles = straddles || (q.AccuracyRatioCI.Lo < cfg.Threshold && q.AccuracyRatioCI.Hi >= cfg.Threshold)
			}
			scores = append(scores, sc)
			all = all && a.Keeps
		}
		note := ""
		if straddles {
			note = "; the CI straddles the bar"
		}
		if all {
			keep = append(keep, fmt.Sprintf("%s (score %s%s; %s; %s)", n, strings.Join(scores, ", "), note, kept(as[0]), speed(as)))
			for _, a := range as {
				bestDecode = max(bestDecode, a.DecodeSpeedup.Value)
			}
		} else {
			drop = append(drop, fmt.Sprintf("%s (%s%s)", n, strings.Join(scores, ", "), note))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Recommendation (quality score = next-token accuracy on the eval texts relative to the uncompressed f32 model, 95%% CI; the bar is %s, met when the score in every weight format is at least the bar; a score whose CI straddles the bar is marked, as the data cannot tell it from the bar): ", th)
	if len(keep) == 0 {
		fmt.Fprintf(&b, "no compression setting keeps %s of the quality score on this model, so none is recommended. ", th)
	} else {
		fmt.Fprintf(&b, "%d %s keep%s it — %s. ", len(keep), plural(len(keep), "setting", "settings"), map[bool]string{true: "s", false: ""}[len(keep) == 1], strings.Join(keep, "; "))
		if bestDecode < 1.05 {
			b.WriteString("They buy no decode throughput here (best decode speed-up among them: " + fmt.Sprintf("%.2fx", bestDecode) + "). ")
		} else {
			fmt.Fprintf(&b, "The best decode speed-up among them is %.2fx. ", bestDecode)
		}
	}
	if len(drop) > 0 {
		fmt.Fprintf(&b, "Below the bar: %s. ", strings.Join(drop, "; "))
	}
	if len(noop) > 0 {
		fmt.Fprintf(&b, "Compressing nothing on this model (every matrix stayed dense: the rule asked for a rank above the break-even): %s. ", strings.Join(noop, ", "))
	}
	if dense := res.arm("dense", "int8"); dense != nil && dense.Quality != nil {
		f := res.arm("dense", "f32")
		fmt.Fprintf(&b, "For comparison, int8 alone scores %.1f%% at %s of weights per token", 100*dense.Quality.AccuracyRatio, human(dense.WeightBytes))
		if f != nil {
			fmt.Fprintf(&b, " (f32: %s)", human(f.WeightBytes))
		}
		b.WriteString(".")
	}
	return strings.TrimSpace(b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (res *CompressResult) arm(setting, format string) *CompressArm {
	for _, a := range res.Arms {
		if a.Setting == setting && a.Format == format {
			return a
		}
	}
	return nil
}
