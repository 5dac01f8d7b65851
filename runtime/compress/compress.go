package compress

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/quantize"
)

// Matrices are the seven block matrices compress may rewrite, in layer order.
var Matrices = []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// Prune names a 2:4 pruning criterion.
type Prune string

const (
	PruneNone      Prune = ""
	PruneMagnitude Prune = "magnitude" // keep the two largest |W| of each group
	PruneWanda     Prune = "wanda"     // keep the two largest |W|·‖X‖ (needs calibration)
)

// Options configure Compress.
type Options struct {
	// Rank, when set, factors the LowRank matrices (default: all seven) as W ≈ B·A.
	Rank    RankRule
	LowRank []string
	SVD     SVDOptions
	// Whiten factors W·S instead of W, S the Cholesky factor of the layer input's XᵀX
	// over the calibration tokens (SVD-LLM's truncation-aware whitening); needs Calib.
	Whiten bool
	// Prune, when set, makes the Sparse matrices (default: all seven) 2:4 sparse.
	Prune  Prune
	Sparse []string
	// Calib is the calibration text of Whiten and Wanda.
	Calib CalibOptions
	// Type stores the factors and the kept values: F32 (default), F16 or BF16. Dense
	// tensors keep their input type.
	Type ggml.Type
	// AllowLarger stores factors even at or above the break-even rank, where they hold
	// as many weights as the matrix or more (experiments; the full-rank check).
	AllowLarger bool
	// Progress, when set, hears of each block matrix as it is done.
	Progress func(MatrixReport)
}

// MatrixReport says what became of one block matrix.
type MatrixReport struct {
	Name    string            `json:"name"`
	Out     int               `json:"out"`
	In      int               `json:"in"`
	Form    loader.MatrixForm `json:"-"`
	FormStr string            `json:"form"`
	Rank    int               `json:"rank,omitempty"`
	// Energy is the fraction of ‖W‖²_F (‖W·S‖²_F when whitened) the rank keeps.
	Energy float64 `json:"energy,omitempty"`
	// Params are the weights stored (factors, kept values) against Out·In dense.
	Params int64  `json:"params"`
	Note   string `json:"note,omitempty"`
}

// Report is what Compress did.
type Report struct {
	Recipe      string         `json:"recipe"`
	Matrices    []MatrixReport `json:"matrices"`
	DenseParams int64          `json:"dense_params"`  // of the block matrices
	StoredParam int64          `json:"stored_params"` // of the block matrices, as stored
	CalibTokens int            `json:"calib_tokens,omitempty"`
	Bytes       int64          `json:"bytes,omitempty"` // the output file's size (Run)
}

// Result is a compressed checkpoint in memory: GGUF metadata and tensors, ready for
// loader.WriteGGUF.
type Result struct {
	Meta    []loader.KV
	Tensors []*loader.Tensor
	Report  Report
}

func (o *Options) check() error {
	if o.Type != ggml.F32 && o.Type != ggml.F16 && o.Type != ggml.BF16 {
		return fmt.Errorf("compress: the factors and kept values are stored as F32, F16 or BF16, not %s", o.Type)
	}
	lowRank := o.Rank != (RankRule{})
	if lowRank {
		if err := o.Rank.validate(); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
	}
	switch o.Prune {
	case PruneNone, PruneMagnitude, PruneWanda:
	default:
		return fmt.Errorf("compress: unknown 2:4 criterion %q (magnitude or wanda)", o.Prune)
	}
	sparse := o.Prune != PruneNone
	if !lowRank && !sparse {
		return errors.New("compress: nothing to do: give a low-rank rule (rank fraction, parameter budget or energy) and/or a 2:4 criterion")
	}
	if !lowRank && (len(o.LowRank) > 0 || o.Whiten) {
		return errors.New("compress: low-rank matrices or whitening named without a rank rule")
	}
	if !sparse && len(o.Sparse) > 0 {
		return errors.New("compress: 2:4 matrices named without a criterion")
	}
	for _, list := range [][]string{o.LowRank, o.Sparse} {
		for _, m := range list {
			if !slices.Contains(Matrices, m) {
				return fmt.Errorf("compress: unknown matrix %q (one of %s)", m, strings.Join(Matrices, ", "))
			}
		}
	}
	switch {
	case lowRank && sparse && (len(o.LowRank) == 0 || len(o.Sparse) == 0):
		return errors.New("compress: with both low-rank and 2:4, name which matrices get which")
	case lowRank && len(o.LowRank) == 0:
		o.LowRank = Matrices
	case sparse && len(o.Sparse) == 0:
		o.Sparse = Matrices
	}
	for _, m := range o.LowRank {
		if slices.Contains(o.Sparse, m) {
			return fmt.Errorf("compress: %s is named both low-rank and 2:4", m)
		}
	}
	if (o.Whiten || o.Prune == PruneWanda) && o.Calib.Path == "" {
		return errors.New("compress: whitening and Wanda need calibration text")
	}
	if o.Calib.Path != "" && !o.Whiten && o.Prune != PruneWanda {
		return errors.New("compress: calibration text given, but neither whitening nor Wanda uses it")
	}
	return nil
}

// Recipe describes the settings in one line (stored in the checkpoint).
func (o *Options) Recipe() string {
	var parts []string
	if o.Rank != (RankRule{}) {
		s := fmt.Sprintf("low-rank %s of %s (randomized SVD, oversampling %d, %d power iterations", o.Rank, strings.Join(o.LowRank, ","), max(o.SVD.Oversample, 8), o.SVD.PowerIters)
		if o.Whiten {
			s += ", whitened"
		}
		parts = append(parts, s+")")
	}
	if o.Prune != PruneNone {
		parts = append(parts, fmt.Sprintf("2:4 by %s of %s", o.Prune, strings.Join(o.Sparse, ",")))
	}
	if o.Calib.Path != "" {
		parts = append(parts, fmt.Sprintf("calibration: %d tokens of %s after %d", max(o.Calib.Tokens, 0), filepath.Base(o.Calib.Path), o.Calib.Skip))
	}
	parts = append(parts, "stored as "+o.Type.String())
	return strings.Join(parts, "; ")
}

// Compress rewrites the block matrices of the model at path (a GGUF file, a Hugging
// Face directory or synthetic:<shape>) as opt asks, in memory.
func Compress(path string, opt Options) (*Result, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if opt.Calib.Tokens <= 0 {
		opt.Calib.Tokens = 4096
	}
	in, err := quantize.OpenInput(path)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	defer in.Close()
	for _, kv := range in.Meta {
		if kv.Key == loader.KeyCompressVersion {
			return nil, fmt.Errorf("compress: %s is already compressed", path)
		}
	}
	res := &Result{}
	var targets []string
	for _, t := range in.Tensors {
		if _, kind, ok := splitName(t.Name); ok && (slices.Contains(opt.LowRank, kind) || slices.Contains(opt.Sparse, kind)) {
			targets = append(targets, t.Name)
		}
	}
	var stats map[string]*inputStats
	if opt.Calib.Path != "" {
		if stats, res.Report.CalibTokens, err = calibrate(path, targets, opt.Whiten, opt.Calib); err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
	}
	res.Report.Recipe = opt.Recipe()
	for _, kv := range in.Meta {
		if kv.Key != loader.KeyCompressRecipe {
			res.Meta = append(res.Meta, kv)
		}
	}
	res.Meta = append(res.Meta,
		loader.KV{Key: loader.KeyCompressVersion, Value: uint32(loader.CompressVersion)},
		loader.KV{Key: loader.KeyCompressRecipe, Value: res.Report.Recipe})
	for i, t := range in.Tensors {
		_, kind, block := splitName(t.Name)
		if !block || len(t.Shape) != 2 || !slices.Contains(targets, t.Name) {
			dt, err := copyTensor(t)
			if err != nil {
				return nil, fmt.Errorf("compress: %w", err)
			}
			res.Tensors = append(res.Tensors, dt)
			if block && len(t.Shape) == 2 {
				p := int64(t.Shape[0] * t.Shape[1])
				res.Report.DenseParams += p
				res.Report.StoredParam += p
			}
			continue
		}
		out, inDim := t.Shape[0], t.Shape[1]
		w, err := t.Float32()
		if err != nil {
			return nil, fmt.Errorf("compress: tensor %q: %w", t.Name, err)
		}
		rep := MatrixReport{Name: t.Name, Out: out, In: inDim, Params: int64(out * inDim)}
		var made []*loader.Tensor
		switch {
		case slices.Contains(opt.LowRank, kind):
			so := opt.SVD
			so.Seed ^= uint64(i) * 0x9e3779b97f4a7c15
			if opt.Whiten {
				if so.Whiten, err = whitening(stats[t.Name]); err != nil {
					return nil, fmt.Errorf("compress: tensor %q: %w", t.Name, err)
				}
			}
			f, err := Factorize(w, out, inDim, opt.Rank, so)
			if err != nil {
				return nil, fmt.Errorf("compress: tensor %q: %w", t.Name, err)
			}
			be := BreakEvenRank(out, inDim)
			switch {
			case !f.Reached:
				rep.Note = fmt.Sprintf("energy %.4g needs a rank above the break-even %d: kept dense", opt.Rank.Energy, be)
			case f.Rank*(out+inDim) >= out*inDim && !opt.AllowLarger:
				rep.Note = fmt.Sprintf("rank %d is at or above the break-even %d: kept dense", f.Rank, be)
			default:
				a, err := encode(t.Name+loader.SuffixLowRankA, opt.Type, []int{f.Rank, inDim}, f.A)
				if err != nil {
					return nil, err
				}
				b, err := encode(t.Name+loader.SuffixLowRankB, opt.Type, []int{out, f.Rank}, f.B)
				if err != nil {
					return nil, err
				}
				made = []*loader.Tensor{a, b}
				rep.Form, rep.Rank, rep.Energy = loader.FormLowRank, f.Rank, f.Energy
				rep.Params = int64(f.Rank * (out + inDim))
			}
		default:
			if inDim%4 != 0 {
				rep.Note = fmt.Sprintf("%d inputs are not groups of 4: kept dense", inDim)
				break
			}
			var norms []float64
			if opt.Prune == PruneWanda {
				st := stats[t.Name]
				norms = make([]float64, inDim)
				for k := range norms {
					norms[k] = math.Sqrt(st.sumsq[k])
				}
			}
			vals, meta, err := Prune24(w, out, inDim, norms)
			if err != nil {
				return nil, fmt.Errorf("compress: tensor %q: %w", t.Name, err)
			}
			v, err := encode(t.Name+loader.SuffixSparse24, opt.Type, []int{out, inDim / 2}, vals)
			if err != nil {
				return nil, err
			}
			m := &loader.Tensor{Name: t.Name + loader.SuffixSparse24Meta, Type: loader.I8, Shape: []int{out, loader.Sparse24MetaCols(inDim)}, Data: meta}
			made = []*loader.Tensor{v, m}
			rep.Form, rep.Params = loader.FormSparse24, int64(out*inDim/2)
		}
		if made == nil {
			dt, err := copyTensor(t)
			if err != nil {
				return nil, fmt.Errorf("compress: %w", err)
			}
			made = []*loader.Tensor{dt}
		}
		rep.FormStr = rep.Form.String()
		res.Tensors = append(res.Tensors, made...)
		res.Report.Matrices = append(res.Report.Matrices, rep)
		res.Report.DenseParams += int64(out * inDim)
		res.Report.StoredParam += rep.Params
		if opt.Progress != nil {
			opt.Progress(rep)
		}
	}
	return res, nil
}

// whitening returns the lower-triangular S with S·Sᵀ = XᵀX + λI, λ a small ridge
// (1e-6 of the mean diagonal, raised tenfold until the factorization succeeds), which
// keeps S invertible for inputs the calibration never excites.
func whitening(st *inputStats) ([]float64, error) {
	if st == nil || st.gram == nil {
		return nil, errors.New("whitening: no calibration statistics")
	}
	g := st.gramFull()
	in := st.in
	var tr float64
	for k := 0; k < in; k++ {
		tr += g[k*in+k]
	}
	ridge := cmp.Or(1e-6*tr/float64(in), 1e-6)
	for try := 0; try < 8; try++ {
		h := append([]float64(nil), g...)
		for k := 0; k < in; k++ {
			h[k*in+k] += ridge
		}
		if s, ok := cholesky(h, in); ok {
			return s, nil
		}
		ridge *= 10
	}
	return nil, errors.New("whitening: XᵀX is not positive definite even with a ridge")
}

// copyTensor passes an input tensor through: a copy of its stored bytes (the input's
// mapping is closed before the result is written), or (converted inputs) its values as
// its type.
func copyTensor(t quantize.InputTensor) (*loader.Tensor, error) {
	dt, ok := loader.DTypeOf(t.Type)
	if !ok {
		return nil, fmt.Errorf("tensor %q: type %s cannot be written", t.Name, t.Type)
	}
	if t.Raw != nil {
		return &loader.Tensor{Name: t.Name, Type: dt, Shape: t.Shape, Data: slices.Clone(t.Raw)}, nil
	}
	f, err := t.Float32()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return loader.NewTensor(t.Name, dt, t.Shape, f)
}

func encode(name string, typ ggml.Type, shape []int, f []float32) (*loader.Tensor, error) {
	dt, _ := loader.DTypeOf(typ)
	t, err := loader.NewTensor(name, dt, shape, f)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return t, nil
}

// Run compresses the model at in into a GGUF file at out, which appears only once
// complete.
func Run(in, out string, opt Options) (*Report, error) {
	if err := loader.CheckOutput(in, out); err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	res, err := Compress(in, opt)
	if err != nil {
		return nil, err
	}
	n, err := res.Write(out)
	if err != nil {
		return nil, err
	}
	res.Report.Bytes = n
	return &res.Report, nil
}

// Write writes the checkpoint as a GGUF file at path (beside it first, renamed into
// place once complete) and returns its size.
func (r *Result) Write(path string) (int64, error) {
	n, err := loader.WriteFile(path, func(w io.Writer) error { return loader.WriteGGUF(w, r.Meta, r.Tensors) })
	if err != nil {
		return 0, fmt.Errorf("compress: %w", err)
	}
	return n, nil
}
