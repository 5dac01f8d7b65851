package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// QualityText is one eval text and the category it stands for.
type QualityText struct {
	Name     string `json:"name"`
	Category string `json:"category"` // stories-seen, stories-unseen, encyclopedic
	Path     string `json:"path"`
}

// DefaultTexts are the shared eval texts (root: the shared folder).
func DefaultTexts(root string) []QualityText {
	return []QualityText{
		{"tinystories-train-prefix.txt", "stories-seen", root + "/eval/tinystories-train-prefix.txt"},
		{"tinystories-valid-part.txt", "stories-unseen", root + "/eval/tinystories-valid-part.txt"},
		{"wikitext-2-raw-test.raw", "encyclopedic", root + "/eval/wikitext-2-raw-test.raw"},
	}
}

// Variant is a way to run the model: the float reference or an optimization. Variants
// that do not exist yet are listed with Available false and the reason, never dropped.
type Variant struct {
	Name         string        `json:"name"`
	Description  string        `json:"description"`
	Available    bool          `json:"available"`
	Reason       string        `json:"reason,omitempty"`
	Options      model.Options `json:"-"`
	GoldenColumn string        `json:"golden_column,omitempty"` // nll.json column with the same arithmetic
	// Path is the variant's own model file (a GGUF of the same model quantized with
	// vireo quantize, say); empty: the audit's model.
	Path string `json:"path,omitempty"`
	// WeightTypes says how the backend held the variant's matrices ("q4_k ×135, ...").
	WeightTypes string `json:"weight_types,omitempty"`
	// W4A16 runs the variant on the CPU holding its weights as the CUDA backend does with
	// W4A16 (w4Weights).
	W4A16 bool `json:"w4a16,omitempty"`
}

// QualityFile is another file of the audited model, run as a variant with auto weights
// (its GGUF block types run natively).
type QualityFile struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// Variants are the reference and every optimization Vireo has or plans.
func Variants() []Variant {
	return []Variant{
		{Name: "f32", Description: "float32 weights (the reference; on the CPU f32 stands in for the 16-bit baseline of a GPU)", Available: true,
			Options: model.Options{Weights: model.WeightsF32}, GoldenColumn: "fp64"},
		{Name: "int8", Description: "int8 weights, one scale per output row, the embedding/classifier too (the default)", Available: true,
			Options: model.Options{Weights: model.WeightsInt8}, GoldenColumn: "int8_rows_w_and_embedding"},
		{Name: "int8+f32emb", Description: "int8 weights, one scale per output row; embedding and classifier in float", Available: true,
			Options: model.Options{Weights: model.WeightsInt8, FloatEmbedding: true}, GoldenColumn: "int8_rows_w_only"},
		{Name: "q8_0", Description: "Q8_0 weights (blocks of 32, f16 scales) and int8 activations quantized per token in the same blocks (W8A8, as llama.cpp's Q8_0)", Available: true,
			Options: model.Options{Weights: model.WeightsQ8_0}},
		{Name: "pruning", Description: "weight pruning / sparsity (low-rank factors, 2:4)", Reason: "not available in this audit: bench compress audits each pruning setting (vireo compress) against this reference"},
	}
}

// QualityConfig configures a quality audit.
type QualityConfig struct {
	ModelPath     string        `json:"model_path"`
	TokenizerPath string        `json:"tokenizer_path,omitempty"`
	Texts         []QualityText `json:"texts"`
	Tokens        int           `json:"tokens"`  // scored tokens per text (default 8192)
	Context       int           `json:"context"` // window length, BOS included (default: the model's context)
	Stride        int           `json:"stride"`  // window step (default Context/2)
	Resamples     int           `json:"resamples"`
	Seed          uint64        `json:"seed"`
	GoldenPath    string        `json:"golden_path,omitempty"` // nll.json; empty: no protocol check
	Threads       int           `json:"threads"`               // backend threads per variant (default 1; variants run in parallel)
	Files         []QualityFile `json:"files,omitempty"`       // more variants: other files of the same model
	Dequantized   bool          `json:"dequantized,omitempty"` // each file also dequantized to f32 (its weight rounding alone)
	W4A16         bool          `json:"w4a16,omitempty"`       // each file also with its weights as the CUDA backend's W4A16 keeps them
	// Variants, when set, replace Variants() (and Files): the ways to run the model
	// audited, the float reference first (bench compress).
	Variants []Variant `json:"-"`
}

// Metrics are one variant's scores on a text (or pooled over texts).
type Metrics struct {
	Variant    string  `json:"variant"`
	Positions  int     `json:"positions"`
	NLL        float64 `json:"nll"`
	Perplexity float64 `json:"perplexity"`
	Accuracy   float64 `json:"accuracy"`
	// Against the reference (absent for the reference itself); intervals are paired
	// bootstrap 95% CIs over windows.
	DeltaNLL         *Interval `json:"delta_nll,omitempty"`
	PerplexityChange *Interval `json:"perplexity_change_pct,omitempty"` // 100*(exp(ΔNLL)-1)
	DeltaAccuracy    *Interval `json:"delta_accuracy,omitempty"`
	Agreement        *Interval `json:"top1_agreement,omitempty"`
	PerplexityRatio  float64   `json:"perplexity_ratio,omitempty"` // optimized / reference
	AccuracyRatio    float64   `json:"accuracy_ratio,omitempty"`   // optimized / reference (retained)
	// AccuracyRatioCI is AccuracyRatio with its paired bootstrap 95% CI over windows:
	// the quality score of bench compress.
	AccuracyRatioCI *Interval `json:"accuracy_ratio_ci,omitempty"`
	Verdict         string    `json:"verdict,omitempty"`
}

// TextQuality is the audit of one text.
type TextQuality struct {
	Name     string    `json:"name"`
	Category string    `json:"category"`
	Tokens   int       `json:"tokens"`
	Windows  int       `json:"windows"`
	Results  []Metrics `json:"results"`
}

// ProtocolRow reproduces one nll.json number (first 1,024 characters, 256 tokens + BOS).
type ProtocolRow struct {
	Text             string  `json:"text"`
	Variant          string  `json:"variant"`
	Column           string  `json:"golden_column"`
	NLL              float64 `json:"nll"`
	Perplexity       float64 `json:"perplexity"`
	Accuracy         float64 `json:"accuracy"`
	GoldenNLL        float64 `json:"golden_nll"`
	GoldenPerplexity float64 `json:"golden_perplexity"`
	GoldenAccuracy   float64 `json:"golden_accuracy"`
	RelErr           float64 `json:"perplexity_rel_err"`
	Pass             bool    `json:"pass"` // within 0.5%
}

// VariantInfo is a variant as audited, with its weight size.
type VariantInfo struct {
	Variant
	WeightBytes int64 `json:"weight_bytes_per_token,omitempty"`
}

// QualityResult is a whole audit.
type QualityResult struct {
	Command  string        `json:"command,omitempty"`
	Config   QualityConfig `json:"config"`
	Variants []VariantInfo `json:"variants"`
	Texts    []TextQuality `json:"texts"`
	Overall  []Metrics     `json:"overall"` // pooled over every text's windows
	Protocol []ProtocolRow `json:"protocol_check"`
	Host     Host          `json:"host"`
}

// windowScore is one window's sums for one variant.
type windowScore struct {
	nll     float64
	correct int
	agree   int // argmax equal to the reference's
	n       int
	pred    []int32
}

// RunQuality audits every available variant against the float reference.
func RunQuality(cfg QualityConfig) (*QualityResult, error) {
	if cfg.Tokens <= 0 {
		cfg.Tokens = 8192
	}
	if cfg.Resamples <= 0 {
		cfg.Resamples = 1000
	}
	if len(cfg.Texts) == 0 {
		return nil, fmt.Errorf("quality: no eval texts")
	}
	if cfg.Threads <= 0 {
		cfg.Threads = 1
	}
	res := &QualityResult{Host: ThisHost()}
	var models []*llm.Loaded
	defer func() {
		for _, m := range models {
			m.Close()
		}
	}()
	variants := Variants()
	if cfg.Variants != nil {
		variants = cfg.Variants
	}
	for _, f := range cfg.Files {
		variants = append(variants, Variant{Name: f.Name, Available: true, Path: f.Path,
			Description: "GGUF file " + f.Path + ", its block types run natively (weights as stored, activations quantized per token as llama.cpp does)",
			Options:     model.Options{Weights: model.WeightsAuto}})
		if cfg.Dequantized {
			variants = append(variants, Variant{Name: f.Name + " deq-f32", Available: true, Path: f.Path,
				Description: "the same file's weights dequantized exactly to f32, f32 activations (what the weight rounding alone costs)",
				Options:     model.Options{Weights: model.WeightsF32}})
		}
		if cfg.W4A16 {
			variants = append(variants, Variant{Name: f.Name + " w4a16", Available: true, Path: f.Path, W4A16: true,
				Description: "the same file's weights as the CUDA backend's W4A16 keeps them (Q4_0/Q4_K matrices at their exact values, the embedding and other block types int8 per row), f32 activations",
				Options:     model.Options{Weights: model.WeightsAuto}})
		}
	}
	var names []string // of the available variants, as models
	for _, v := range variants {
		vi := VariantInfo{Variant: v}
		if v.Available {
			path, tok := cfg.ModelPath, cfg.TokenizerPath
			if v.Path != "" {
				path, tok = v.Path, ""
			}
			var be backend.Backend = cpu.New(cpu.Options{Threads: cfg.Threads})
			if v.W4A16 {
				be = w4Weights{be.(*cpu.Backend)}
			}
			m, err := llm.Open(path, tok, be, v.Options)
			if err != nil {
				return nil, fmt.Errorf("quality: %s: %w", v.Name, err)
			}
			models = append(models, m)
			if len(models) > 1 && (m.Config.VocabSize != models[0].Config.VocabSize || m.Tokenizer.BOS() != models[0].Tokenizer.BOS()) {
				return nil, fmt.Errorf("quality: %s (%s): vocabulary of %d (BOS %d), the reference's %d (BOS %d): not the same model", v.Name, path, m.Config.VocabSize, m.Tokenizer.BOS(), models[0].Config.VocabSize, models[0].Tokenizer.BOS())
			}
			vi.WeightBytes = m.WeightBytes
			vi.WeightTypes = m.WeightTypes()
			names = append(names, v.Name)
		}
		res.Variants = append(res.Variants, vi)
	}
	ref := models[0]
	if cfg.Context <= 0 || cfg.Context > ref.Config.MaxSeqLen {
		cfg.Context = ref.Config.MaxSeqLen
	}
	if cfg.Stride <= 0 {
		cfg.Stride = cfg.Context / 2
	}
	if cfg.Stride >= cfg.Context {
		return nil, fmt.Errorf("quality: stride %d must be below the window of %d", cfg.Stride, cfg.Context)
	}
	res.Config = cfg
	tok := ref.Tokenizer
	bos := tok.BOS()
	type prepared struct {
		text string
		toks []int32
		wins []llm.Window
	}
	preps := make([]prepared, len(cfg.Texts))
	for i, t := range cfg.Texts {
		text, err := ReadEvalText(t.Path)
		if err != nil {
			return nil, err
		}
		toks := encodePrefix(tok, text, cfg.Tokens)
		preps[i] = prepared{text: text, toks: toks, wins: llm.StridedWindows(bos, toks, cfg.Context, cfg.Stride)}
	}
	// scores[text][variant][window]: each variant runs on its own goroutine (and
	// backend), so single-threaded backends still use every core.
	scores := make([][][]windowScore, len(preps))
	for i := range scores {
		scores[i] = make([][]windowScore, len(models))
	}
	errs := make([]error, len(models))
	var wg sync.WaitGroup
	for vi, m := range models {
		wg.Go(func() {
			s, err := llm.NewScorer(m.Model, cfg.Context)
			if err != nil {
				errs[vi] = err
				return
			}
			for ti, p := range preps {
				for _, w := range p.wins {
					ws, err := scoreWindow(s, w)
					if err != nil {
						errs[vi] = fmt.Errorf("quality: %s on %s: %w", names[vi], cfg.Texts[ti].Name, err)
						return
					}
					scores[ti][vi] = append(scores[ti][vi], ws)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	pooled := make([][]windowScore, len(models)) // every text's windows, per variant
	for ti, t := range cfg.Texts {
		sc := scores[ti]
		for vi := range models {
			for wi := range sc[vi] {
				for i, p := range sc[vi][wi].pred {
					if p == sc[0][wi].pred[i] {
						sc[vi][wi].agree++
					}
				}
			}
			pooled[vi] = append(pooled[vi], sc[vi]...)
		}
		tq := TextQuality{Name: t.Name, Category: t.Category, Tokens: len(preps[ti].toks), Windows: len(preps[ti].wins)}
		for vi := range models {
			tq.Results = append(tq.Results, compare(names[vi], sc[0], sc[vi], vi == 0, cfg.Resamples, cfg.Seed))
		}
		res.Texts = append(res.Texts, tq)
		if cfg.GoldenPath != "" {
			rows, err := protocolRows(cfg.GoldenPath, t.Name, preps[ti].text, models, res.Variants)
			if err != nil {
				return nil, err
			}
			res.Protocol = append(res.Protocol, rows...)
		}
	}
	for vi := range models {
		res.Overall = append(res.Overall, compare(names[vi], pooled[0], pooled[vi], vi == 0, cfg.Resamples, cfg.Seed))
	}
	res.Host.End()
	return res, nil
}

// ReadEvalText reads an eval text with newlines normalized as Python's text mode does
// (nll.json was computed that way: WikiText-2's file has CRLF endings) and leading
// whitespace stripped.
func ReadEvalText(path string) (string, error) {
	s, err := shared.ReadText(path)
	if err != nil {
		return "", fmt.Errorf("eval text: %w", err)
	}
	return strings.TrimLeftFunc(s, unicode.IsSpace), nil
}

// encodePrefix encodes as little of text as gives n tokens (all of it when shorter)
// and returns the first n.
func encodePrefix(tok *tokenizer.Tokenizer, text string, n int) []int32 {
	runes := []rune(text)
	chars := min(len(runes), 4*n)
	for {
		ids := tok.Encode(string(runes[:chars]), tokenizer.EncodeOptions{})
		// The last token of a cut may be cut too: keep a margin unless the text ends.
		if len(ids) > n || chars == len(runes) {
			return ids[:min(n, len(ids))]
		}
		chars = min(len(runes), 2*chars)
	}
}

// scoreWindow runs one window teacher-forced and sums the counted predictions.
func scoreWindow(s *llm.Scorer, w llm.Window) (windowScore, error) {
	nll, pred, err := s.Score(w.IDs)
	if err != nil {
		return windowScore{}, err
	}
	var out windowScore
	for i := w.ScoreFrom; i < len(nll); i++ {
		out.nll += nll[i]
		out.n++
		if pred[i] == w.IDs[i+1] {
			out.correct++
		}
		out.pred = append(out.pred, pred[i])
	}
	return out, nil
}

// compare scores variant q against reference f over the same windows.
func compare(name string, f, q []windowScore, isRef bool, resamples int, seed uint64) Metrics {
	sums := func(ws []windowScore, idx []int) (nll float64, correct, agree, n int) {
		for _, i := range idx {
			nll += ws[i].nll
			correct += ws[i].correct
			agree += ws[i].agree
			n += ws[i].n
		}
		return
	}
	all := make([]int, len(q))
	for i := range all {
		all[i] = i
	}
	nll, correct, _, n := sums(q, all)
	m := Metrics{Variant: name, Positions: n, NLL: nll / float64(n), Accuracy: float64(correct) / float64(n)}
	m.Perplexity = math.Exp(m.NLL)
	if isRef {
		return m
	}
	dNLL := func(idx []int) float64 {
		a, _, _, n := sums(f, idx)
		b, _, _, _ := sums(q, idx)
		return (b - a) / float64(n)
	}
	d := Bootstrap(len(q), resamples, seed, dNLL)
	pc := Interval{Value: 100 * math.Expm1(d.Value), Lo: 100 * math.Expm1(d.Lo), Hi: 100 * math.Expm1(d.Hi)}
	acc := Bootstrap(len(q), resamples, seed, func(idx []int) float64 {
		_, a, _, n := sums(f, idx)
		_, b, _, _ := sums(q, idx)
		return float64(b-a) / float64(n)
	})
	agr := Bootstrap(len(q), resamples, seed, func(idx []int) float64 {
		_, _, g, n := sums(q, idx)
		return float64(g) / float64(n)
	})
	m.DeltaNLL, m.PerplexityChange, m.DeltaAccuracy, m.Agreement = &d, &pc, &acc, &agr
	fnll, fc, _, _ := sums(f, all)
	m.PerplexityRatio = m.Perplexity / math.Exp(fnll/float64(n))
	if fc > 0 {
		m.AccuracyRatio = float64(correct) / float64(fc)
		ar := Bootstrap(len(q), resamples, seed, func(idx []int) float64 {
			_, a, _, _ := sums(f, idx)
			_, b, _, _ := sums(q, idx)
			if a == 0 {
				return math.NaN()
			}
			return float64(b) / float64(a)
		})
		m.AccuracyRatioCI = &ar
	}
	m.Verdict = verdict(m)
	return m
}

func verdict(m Metrics) string {
	if !m.DeltaNLL.Significant() && !m.DeltaAccuracy.Significant() {
		return "no measurable change"
	}
	var parts []string
	if m.DeltaNLL.Significant() {
		parts = append(parts, "perplexity "+pctCI(*m.PerplexityChange))
	}
	if m.DeltaAccuracy.Significant() {
		dir := "rose"
		if m.DeltaAccuracy.Value < 0 {
			dir = "fell"
		}
		parts = append(parts, fmt.Sprintf("accuracy %s %.2f points (95%% CI %+.2f to %+.2f)", dir, 100*math.Abs(m.DeltaAccuracy.Value), 100*m.DeltaAccuracy.Lo, 100*m.DeltaAccuracy.Hi))
	}
	return strings.Join(parts, "; ")
}

// pctCI renders a percentage change with its interval: "rose 0.30% (95% CI +0.20% to +0.40%)".
func pctCI(iv Interval) string {
	dir := "rose"
	if iv.Value < 0 {
		dir = "fell"
	}
	return fmt.Sprintf("%s %.2f%% (95%% CI %+.2f%% to %+.2f%%)", dir, math.Abs(iv.Value), iv.Lo, iv.Hi)
}

// goldenColumn is one entry of nll.json.
type goldenColumn struct {
	Tokens     int     `json:"tokens"`
	NLL        float64 `json:"nll_nats_per_token"`
	Perplexity float64 `json:"perplexity"`
	Accuracy   float64 `json:"next_token_accuracy"`
}

// protocolRows scores nll.json's protocol on one text for every variant with a column.
func protocolRows(goldenPath, name, text string, models []*llm.Loaded, vs []VariantInfo) ([]ProtocolRow, error) {
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		return nil, fmt.Errorf("golden: %w", err)
	}
	var golden map[string]map[string]goldenColumn
	if err := json.Unmarshal(data, &golden); err != nil {
		return nil, fmt.Errorf("golden %s: %w", goldenPath, err)
	}
	cols, ok := golden[name]
	if !ok {
		return nil, nil
	}
	var rows []ProtocolRow
	mi := 0
	for _, v := range vs {
		if !v.Available {
			continue
		}
		m := models[mi]
		mi++
		g, ok := cols[v.GoldenColumn]
		if !ok {
			continue
		}
		runes := []rune(text)
		ids := m.Tokenizer.Encode(string(runes[:min(1024, len(runes))]), tokenizer.EncodeOptions{})
		if len(ids) < g.Tokens {
			return nil, fmt.Errorf("golden protocol: %s gives %d tokens, need %d", name, len(ids), g.Tokens)
		}
		w := llm.Window{IDs: append([]int32{m.Tokenizer.BOS()}, ids[:g.Tokens]...)}
		s, err := llm.NewScorer(m.Model, len(w.IDs))
		if err != nil {
			return nil, err
		}
		sc, err := scoreWindow(s, w)
		if err != nil {
			return nil, err
		}
		r := ProtocolRow{Text: name, Variant: v.Name, Column: v.GoldenColumn, NLL: sc.nll / float64(sc.n),
			Accuracy: float64(sc.correct) / float64(sc.n), GoldenNLL: g.NLL, GoldenPerplexity: g.Perplexity, GoldenAccuracy: g.Accuracy}
		r.Perplexity = math.Exp(r.NLL)
		r.RelErr = r.Perplexity/g.Perplexity - 1
		r.Pass = math.Abs(r.RelErr) <= 0.005
		rows = append(rows, r)
	}
	return rows, nil
}
