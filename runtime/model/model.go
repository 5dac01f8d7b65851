// Package model is the Llama-family transformer, written once against backend.Backend:
// weights, the forward pass over a batch of sequences at different positions (prefill
// chunks and decode tokens mixed), and the paged KV cache it reads and writes.
//
// Read top to bottom: Config and weights (this file); Forward and the layer loop
// (forward.go), issued through a sticky-error issuer as in llama2.c's forward, over a
// Batch of index tensors (ids, positions, sequences, block tables) that Forward stages
// from its sequences; the decode step a graph captures (decode_graph.go), the same pass
// over a DecodeIO's fixed buffers; synthetic checkpoints of named shapes
// (synthetic.go). Loading a checkpoint with its tokenizer and chat template, single
// sequences and scoring are runtime/llm's.
package model

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/quant"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// Config is a Llama-family configuration (see loader.Config).
type Config = loader.Config

// RopeScaling is loader.RopeScaling.
type RopeScaling = loader.RopeScaling

// WeightType is how the linear layers are stored for the backend.
type WeightType int

const (
	WeightsF32  WeightType = iota // float weights as loaded (dequantized from GGUF block types)
	WeightsInt8                   // symmetric int8, one scale per output row, quantized at load
	// WeightsAuto keeps each matrix in the checkpoint's own precision as far as the
	// backend runs it: float tensors (F32, F16, BF16) stay floats — f32 on the CPU, the
	// backend's 16-bit type on CUDA — and GGUF block-quantized tensors (Q4_0 … Q8_0) run
	// in their own type on a backend that multiplies them natively (backend.BlockLoader:
	// the CPU backend, Q4_0 … Q6_K and Q8_0), the embedding and classifier included: the
	// weights stay in the file's mapping and each matrix multiply quantizes its
	// activations as llama.cpp's CPU backend does. Elsewhere (the CUDA backend) they
	// become int8 with one scale per row: the precision nearest theirs that the backend
	// runs, at 1 byte per weight. Synthetic models count as F32 checkpoints.
	// WeightsF32 and WeightsInt8 force their format on block tensors too: f32
	// dequantizes them exactly (the f32 forward llama.cpp computes on the same weights
	// dequantized), int8 requantizes them per row.
	WeightsAuto
	// WeightsQ8_0 turns float matrices into Q8_0 blocks (one f16 scale per 32 weights,
	// GGUF's layout, ggml's reference quantizer) on a backend that multiplies them
	// natively: W8A8, the activations quantized per token in the same blocks; a file's
	// Q8_0 tensors stay as stored. Matrices whose rows are not whole blocks, other
	// block types, and backends without the kernels get int8 per row (as WeightsInt8).
	WeightsQ8_0
)

func (w WeightType) String() string {
	switch w {
	case WeightsInt8:
		return "int8"
	case WeightsAuto:
		return "auto"
	case WeightsQ8_0:
		return "q8_0"
	}
	return "f32"
}

// ParseWeightType reads "auto", "int8", "q8_0" or "f32".
func ParseWeightType(s string) (WeightType, error) {
	for _, w := range []WeightType{WeightsAuto, WeightsInt8, WeightsQ8_0, WeightsF32} {
		if s == w.String() {
			return w, nil
		}
	}
	return 0, fmt.Errorf("weights must be auto, int8, q8_0 or f32, got %q", s)
}

// Options choose how weights are laid out.
type Options struct {
	Weights WeightType
	// FloatEmbedding keeps the token embedding and the classifier (the tied matrix, or
	// output.weight) in f32 when Weights is WeightsInt8 or WeightsQ8_0. By default they
	// are 8-bit like the other matrices, which cuts the bytes a decode step reads (the
	// classifier of a 32000-token vocabulary at width 2048 is 262 MB in f32, a fifth of
	// a TinyLlama step) at a measured cost: stories260K's teacher-forced top-1
	// agreement with f32 is 98.00% with it and 98.09% without (TestInt8AgreesWithF32).
	// (With WeightsAuto they follow their own tensors' types like every other matrix.)
	FloatEmbedding bool
	// Progress, when set, is told how the load advances, matrix by matrix.
	Progress func(LoadStep)
	// KeepMapped makes a backend that reads host weights in place (the CPU) read GGUF
	// block weights from the file's mapping, as llama.cpp does by default, instead of
	// from a copy in memory backed by 2 MiB pages (the default on Linux with
	// transparent huge pages "always" or "madvise": decode reads faster from it, and
	// the file's pages leave the resident set, so the peak RSS stays that of the
	// weights).
	KeepMapped bool
}

// LoadStep is one matrix handled by Load or Synthetic.
type LoadStep struct {
	Tensor string // its name (token_embd.weight, blk.3.ffn_up.weight, …)
	// Action is what was done to it: "mapped" (read in place), "copied" (block
	// weights copied into memory backed by 2 MiB pages, Options.KeepMapped), "converted" (F16 or
	// BF16 to f32), "dequantized" (a GGUF block type to f32), "quantized" (to int8),
	// "uploaded" (to a device), or "generated" (a synthetic model's random weights).
	Action string
	// Done and Total count weights (elements) of the matrices handled so far (this
	// one included) and of all of them.
	Done, Total int64
}

// progress reports load steps to Options.Progress.
type progress struct {
	fn          func(LoadStep)
	done, total int64
}

func (p *progress) step(name, action string, n int) {
	p.done += int64(n)
	if p.fn != nil {
		p.fn(LoadStep{Tensor: name, Action: action, Done: p.done, Total: p.total})
	}
}

// matrixWeights is the number of weights in a configuration's matrices (the classifier
// counted when untied), the Total of its LoadSteps.
func matrixWeights(c *Config) int64 {
	D, F, V := int64(c.Dim), int64(c.HiddenDim), int64(c.VocabSize)
	qd, kd := int64(c.Heads*c.HeadDim), int64(c.KVHeads*c.HeadDim)
	n := V*D + int64(c.Layers)*(2*qd*D+2*kd*D+3*F*D)
	if !c.TiedEmbeddings {
		n += V * D
	}
	return n
}

// layer holds one transformer block's weights. Shapes: D=dim, H=heads, K=kv heads,
// d=head dim, F=hidden (FFN) dim.
//
// On a backend that multiplies into split outputs (backend.SplitMatMuler) q, k and v are
// one weight wqkv of their rows concatenated, and gate and up one weight wgu (gate rows,
// then up rows: the SiLU-GLU epilogue's layout), and wq, wk, wv, gate, up are nil; the
// parts stay separate when their forms differ (a GGUF file's v in another block type
// than q, a low-rank or 2:4 matrix, weights a device drew itself).
type layer struct {
	attnNorm backend.Tensor  // [1][D]
	wq       *backend.Weight // [H*d][D]
	wk       *backend.Weight // [K*d][D]
	wv       *backend.Weight // [K*d][D]
	wqkv     *backend.Weight // [(H+2K)*d][D]: wq, wk, wv fused, or nil
	wo       *backend.Weight // [D][H*d]
	ffnNorm  backend.Tensor  // [1][D]
	gate     *backend.Weight // [F][D]  (w1)
	up       *backend.Weight // [F][D]  (w3)
	wgu      *backend.Weight // [2F][D]: gate, up fused, or nil
	down     *backend.Weight // [D][F]  (w2)
}

// Model is a loaded model bound to a backend.
type Model struct {
	Config  Config
	Options Options
	be      backend.Backend
	embed   *backend.Weight // [V][D]
	layers  []layer
	outNorm backend.Tensor  // [1][D]
	output  *backend.Weight // [V][D]; == embed when tied and stored alike
	rope    backend.RoPE
	// WeightBytes is the size of the weights the backend reads per token.
	WeightBytes int64
	weightTypes string
}

// WeightTypes says how the backend holds the model's matrices, type by type ("int8
// ×56, f32 ×1"): what Options.Weights (auto in particular) came to.
func (m *Model) WeightTypes() string { return m.weightTypes }

// Backend is the backend the model runs on.
func (m *Model) Backend() backend.Backend { return m.be }

// Spec is the model's configuration (m.Config), for code that takes any model
// through an interface (runtime/engine).
func (m *Model) Spec() *Config { return &m.Config }

// Validate checks a configuration for shapes a forward pass cannot run.
func Validate(c *Config) error {
	switch {
	case c.Dim <= 0 || c.HiddenDim <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.VocabSize <= 0:
		return fmt.Errorf("config: non-positive size (dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d)", c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KVHeads, c.VocabSize)
	case c.Heads%c.KVHeads != 0:
		return fmt.Errorf("config: %d heads is not a multiple of %d kv heads", c.Heads, c.KVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("config: head dim %d must be positive and even", c.HeadDim)
	case c.MaxSeqLen <= 0:
		return fmt.Errorf("config: maximum context %d", c.MaxSeqLen)
	case !(c.RopeTheta > 0) || !(c.NormEps > 0):
		return fmt.Errorf("config: rope theta %g and norm eps %g must be positive", c.RopeTheta, c.NormEps)
	case c.RopeFreqFactors != nil && len(c.RopeFreqFactors) != c.HeadDim/2:
		return fmt.Errorf("config: %d rope frequency factors for head dim %d (want %d)", len(c.RopeFreqFactors), c.HeadDim, c.HeadDim/2)
	}
	switch s := c.RopeScaling; s.Type {
	case "":
	case "llama3":
		if !(s.Factor >= 1) || !(s.LowFreqFactor > 0) || !(s.HighFreqFactor > s.LowFreqFactor) || s.OriginalMaxPos <= 0 {
			return fmt.Errorf("config: llama3 rope scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0 (got %+v)", s)
		}
	default:
		return fmt.Errorf("config: rope scaling type %q is not supported (only llama3)", s.Type)
	}
	for _, f := range c.RopeFreqFactors {
		if !(f > 0) {
			return fmt.Errorf("config: rope frequency factor %g must be positive", f)
		}
	}
	return nil
}

// RoPEOf is the rotation a configuration asks for: its style and the per-pair inverse
// frequencies theta^(-2i/d), with Llama 3 scaling (HF's rope_scaling, or GGUF's
// rope_freqs factors) applied.
func RoPEOf(c *Config) backend.RoPE {
	r := backend.RoPE{Style: backend.RopeStyle(c.RopeStyle), HeadDim: c.HeadDim, InvFreq: make([]float32, c.HeadDim/2)}
	sc := c.RopeScaling
	for i := range r.InvFreq {
		f := math.Pow(float64(c.RopeTheta), -float64(2*i)/float64(c.HeadDim))
		switch {
		case len(c.RopeFreqFactors) == len(r.InvFreq):
			f /= float64(c.RopeFreqFactors[i])
		case sc.Type == "llama3":
			old := float64(sc.OriginalMaxPos)
			lowWavelen, highWavelen := old/float64(sc.LowFreqFactor), old/float64(sc.HighFreqFactor)
			wavelen := 2 * math.Pi / f
			switch {
			case wavelen < highWavelen:
			case wavelen > lowWavelen:
				f /= float64(sc.Factor)
			default:
				smooth := (old/wavelen - float64(sc.LowFreqFactor)) / float64(sc.HighFreqFactor-sc.LowFreqFactor)
				f = (1-smooth)*f/float64(sc.Factor) + smooth*f
			}
		}
		r.InvFreq[i] = float32(f)
	}
	return r
}

// builder turns host tensors into backend weights, quantizing where asked.
type builder struct {
	be    backend.Backend
	opt   Options
	bytes int64
	types map[backend.DType]int // matrices kept per type
	// hold, while set, collects the dense host weights upload is given instead of
	// loading them (fuse then loads them, fused or apart).
	hold *[]held
}

// held is a host weight upload kept back, and the placeholder it returned for it.
type held struct {
	h *backend.HostWeight
	w *backend.Weight
}

// upload hands h to the backend and counts what it keeps, or, while b holds, keeps
// a dense h back and returns a placeholder that fuse fills in.
func (b *builder) upload(h *backend.HostWeight) (*backend.Weight, error) {
	if b.hold != nil && h.Kind == backend.Dense {
		w := &backend.Weight{Name: h.Name, Out: h.Out, In: h.In}
		*b.hold = append(*b.hold, held{h, w})
		return w, nil
	}
	w, err := b.be.LoadWeight(h)
	if err != nil {
		return nil, fmt.Errorf("weight %s: %w", h.Name, err)
	}
	b.bytes += WeightStorageBytes(w)
	if w.Kind == backend.LowRank {
		b.kept(w.A)
	} else {
		b.kept(w)
	}
	return w, nil
}

// fuses says whether the model fuses q/k/v and gate/up: the backend multiplies into
// split outputs.
func (b *builder) fuses() bool {
	_, ok := b.be.(backend.SplitMatMuler)
	return ok
}

// fuse loads the weights held for parts as one weight named name, their rows
// concatenated in order, when every part was held (dense, from the host) and all have
// one form: float of one source type, int8 with row scales, or blocks of one type. It
// then returns that weight (counted once per part in WeightTypes); otherwise it loads
// each part as itself, fills in its placeholder, and returns nil.
func (b *builder) fuse(name string, hs []held, parts int) (*backend.Weight, error) {
	if h := concatRows(name, hs, parts); h != nil {
		w, err := b.be.LoadWeight(h)
		if err != nil {
			return nil, fmt.Errorf("weight %s: %w", name, err)
		}
		b.bytes += WeightStorageBytes(w)
		for range parts {
			b.kept(w)
		}
		return w, nil
	}
	for _, p := range hs {
		w, err := b.upload(p.h)
		if err != nil {
			return nil, err
		}
		*p.w = *w
	}
	return nil, nil
}

// concatRows is the host weight of hs's rows in order, or nil when they are not parts
// of one form (see fuse).
func concatRows(name string, hs []held, parts int) *backend.HostWeight {
	if len(hs) != parts || parts < 2 {
		return nil
	}
	first := hs[0].h
	out := 0
	for _, p := range hs {
		h := p.h
		same := h.In == first.In && h.Source == first.Source && h.BlockType == first.BlockType &&
			(h.F32 != nil) == (first.F32 != nil) && (h.I8 != nil) == (first.I8 != nil) && (h.Blocks != nil) == (first.Blocks != nil)
		if !same || h.Validate() != nil {
			return nil
		}
		out += h.Out
	}
	c := &backend.HostWeight{Name: name, Out: out, In: first.In, Source: first.Source, BlockType: first.BlockType}
	switch n := out * first.In; {
	case first.F32 != nil:
		c.F32 = make([]float32, 0, n)
	case first.I8 != nil:
		c.I8, c.Scales = make([]int8, 0, n), make([]float32, 0, out)
	default:
		c.Blocks = make([]byte, 0, out*first.BlockType.RowBytes(first.In))
	}
	for _, p := range hs {
		h, n := p.h, p.h.Out*p.h.In
		switch {
		case h.F32 != nil:
			c.F32 = append(c.F32, h.F32[:n]...)
		case h.I8 != nil:
			c.I8, c.Scales = append(c.I8, h.I8[:n]...), append(c.Scales, h.Scales[:h.Out]...)
		default:
			c.Blocks = append(c.Blocks, h.Blocks[:h.Out*h.BlockType.RowBytes(h.In)]...)
		}
	}
	return c
}

// kept counts a matrix the backend holds, by its type.
func (b *builder) kept(w *backend.Weight) {
	if b.types == nil {
		b.types = map[backend.DType]int{}
	}
	t := w.W.DType
	if w.Kind == backend.W4A16 { // counted as the block type whose values it keeps
		t = backend.Q4_0
		if w.Meta.Buf != nil {
			t = backend.Q4_K
		}
	}
	b.types[t]++
}

// typeSummary is WeightTypes' text: "int8 ×56, f32 ×1".
func (b *builder) typeSummary() string {
	var parts []string
	for _, d := range []backend.DType{backend.Q2_K, backend.Q3_K, backend.Q4_0, backend.Q4_1, backend.Q4_K,
		backend.Q5_0, backend.Q5_1, backend.Q5_K, backend.Q6_K, backend.Q8_0, backend.I8, backend.F16, backend.BF16, backend.F32} {
		if n := b.types[d]; n > 0 {
			name := d.String()
			if d == backend.I8 {
				name = "int8" // as the flag says it
			}
			parts = append(parts, fmt.Sprintf("%s ×%d", name, n))
		}
	}
	return strings.Join(parts, ", ")
}

// linear loads one matrix: 8-bit (quantized here: Q8_0 blocks with WeightsQ8_0 where
// the backend multiplies them, else int8 per row) or f32. src is the GGUF
// block-quantized type f was dequantized from ("" for float checkpoints), which a
// backend may use to pick its own layout; WeightBytes counts what the backend kept.
func (b *builder) linear(name string, out, in int, f []float32, int8 bool, src string) (*backend.Weight, error) {
	h := &backend.HostWeight{Name: name, Out: out, In: in, Source: src}
	switch {
	case int8 && b.opt.Weights == WeightsQ8_0 && b.loadsBlocks(backend.Q8_0) && backend.Q8_0.RowBytes(in) > 0:
		h.Source = ""
		h.Blocks, h.BlockType = make([]byte, out*backend.Q8_0.RowBytes(in)), backend.Q8_0
		if err := ggml.Quantize(ggml.Q8_0, h.Blocks, f[:out*in]); err != nil {
			return nil, fmt.Errorf("weight %s: %w", name, err)
		}
	case int8:
		h.I8, h.Scales = quant.QuantizeRows(f, out, in)
	default:
		h.F32 = f
	}
	return b.upload(h)
}

// weightBytes is the size of a weight as the backend keeps it: its matrix, and the
// scales of per-row int8.
func weightBytes(w *backend.Weight) int64 {
	if w.Kind == backend.W4A16 { // levels, f16 scales, Q4_K's sub-scales
		return int64(w.W.Rows*w.W.Cols) + int64(2*w.Scales.Rows*w.Scales.Cols) + int64(w.Meta.Rows*w.Meta.Cols)
	}
	n := int64(w.Out) * int64(w.W.DType.RowBytes(w.In))
	if w.W.DType == backend.I8 {
		n += int64(4 * w.Out)
	}
	return n
}

// loadsBlocks reports whether the backend multiplies blocks of type t natively.
func (b *builder) loadsBlocks(t backend.DType) bool {
	bl, ok := b.be.(backend.BlockLoader)
	return ok && bl.LoadsBlocks(t)
}

// blockDTypes maps the loader's block types to the backend's.
var blockDTypes = map[loader.DType]backend.DType{
	loader.Q8_0: backend.Q8_0, loader.Q4_0: backend.Q4_0, loader.Q4_1: backend.Q4_1,
	loader.Q5_0: backend.Q5_0, loader.Q5_1: backend.Q5_1, loader.Q2_K: backend.Q2_K,
	loader.Q3_K: backend.Q3_K, loader.Q4_K: backend.Q4_K, loader.Q5_K: backend.Q5_K,
	loader.Q6_K: backend.Q6_K,
}

// native hands a block-quantized tensor to a backend that multiplies it as stored: no
// float copy, no second quantization. A device backend copies it from the file's
// mapping. A backend that reads host weights in place (the CPU) gets it, by default,
// copied into memory backed by 2 MiB pages, the file's pages leaving the resident set
// ("copied"; residentCopy says why); with Options.KeepMapped, or where that buys
// nothing, it reads the mapping itself ("mapped", faulted in now rather than by the
// first forward pass). action is "" when the tensor or the backend does not allow it
// (emb: the embedding table, which a backend.BlockGatherer may not gather from blocks
// of that type).
func (b *builder) native(t *loader.Tensor, out, in int, emb bool) (w *backend.Weight, action string, err error) {
	dt, isBlock := blockDTypes[t.Type]
	if !isBlock || !b.loadsBlocks(dt) || dt.RowBytes(in) < 0 || len(t.Data) != out*dt.RowBytes(in) {
		return nil, "", nil
	}
	if g, ok := b.be.(backend.BlockGatherer); ok && emb && !g.GathersBlocks(dt) {
		return nil, "", nil
	}
	data, action := t.Data, "mapped"
	if hr, ok := b.be.(backend.HostReader); ok && hr.ReadsHostWeights() && !b.opt.KeepMapped {
		if c := residentCopy(t.Data); c != nil {
			data, action = c, "copied"
		}
	}
	w, err = b.upload(&backend.HostWeight{Name: t.Name, Out: out, In: in, Blocks: data, BlockType: dt})
	if err != nil {
		return nil, "", err
	}
	if action == "copied" {
		dropPages(t.Data)
	} else {
		prefault(t.Data)
	}
	return w, action, nil
}

func (b *builder) vector(name string, f []float32) (backend.Tensor, error) {
	t, err := b.be.Alloc(backend.F32, 1, len(f))
	if err != nil {
		return t, fmt.Errorf("weight %s: %w", name, err)
	}
	return t, b.be.Upload(t, backend.Bytes(f), backend.F32)
}

// Load binds a checkpoint's tensors to a backend. With float weights on the CPU the
// model reads the memory-mapped file in place; int8 weights are quantized once at load.
func Load(ck *loader.Checkpoint, be backend.Backend, opt Options) (*Model, error) {
	c := ck.Config
	if err := Validate(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", ck.Path, err)
	}
	m := &Model{Config: c, Options: opt, be: be, rope: RoPEOf(&c)}
	b := &builder{be: be, opt: opt}
	prog := &progress{fn: opt.Progress, total: matrixWeights(&c)}
	get := func(name string, shape ...int) (*loader.Tensor, []float32, error) {
		t, ok := ck.Tensors[name]
		if !ok {
			return nil, nil, fmt.Errorf("%s: tensor %q missing", ck.Path, name)
		}
		if !slices.Equal(t.Shape, shape) {
			return nil, nil, fmt.Errorf("%s: tensor %q has shape %v, want %v", ck.Path, name, t.Shape, shape)
		}
		f, err := t.Float32()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: tensor %q: %w", ck.Path, name, err)
		}
		return t, f, nil
	}
	// linear hands a matrix to the backend. The file's pages then leave the resident
	// set if the backend does not read them: the floats were converted (F16, BF16, the
	// GGUF block types, dequantized) or quantized to int8.
	linear := func(name string, out, in int, quantize, emb bool) (*backend.Weight, error) {
		if t := ck.Tensors[name]; t != nil && slices.Equal(t.Shape, []int{out, in}) &&
			(opt.Weights == WeightsAuto || opt.Weights == WeightsQ8_0 && quantize && t.Type == loader.Q8_0) {
			if w, action, err := b.native(t, out, in, emb); action != "" || err != nil {
				if action != "" {
					prog.step(name, action, out*in)
				}
				return w, err
			}
		}
		t, f, err := get(name, out, in)
		if err != nil {
			return nil, err
		}
		var src string
		if t.Type.Quantized() {
			src = t.Type.String()
		}
		w, err := b.linear(name, out, in, f, quantize, src)
		if err != nil {
			return nil, err
		}
		converted := unsafe.Pointer(unsafe.SliceData(f)) != unsafe.Pointer(unsafe.SliceData(t.Data))
		if quantize || converted {
			dropPages(t.Data)
		}
		action := "mapped"
		switch {
		case quantize:
			action = "quantized"
		case t.Type.Quantized():
			action = "dequantized"
		case converted:
			action = "converted"
		}
		if be.Name() != "cpu" && !quantize {
			action = "uploaded"
		}
		prog.step(name, action, out*in)
		return w, nil
	}
	// quantize says whether a matrix becomes int8 at load; emb marks the embedding and
	// the classifier.
	quantize := func(name string, emb bool) bool {
		switch opt.Weights {
		case WeightsInt8, WeightsQ8_0:
			return !emb || !opt.FloatEmbedding
		case WeightsAuto:
			t, ok := ck.Tensors[name]
			return ok && t.Type.Quantized()
		}
		return false
	}
	// matrix loads one of a block's linear matrices in the form the checkpoint stores
	// it: dense, a low-rank pair or 2:4 (loader.Matrix).
	matrix := func(name string, out, in int, quantize bool) (*backend.Weight, error) {
		form, err := loader.Matrix(ck.Tensors, name, out, in)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ck.Path, err)
		}
		switch form {
		case loader.FormLowRank:
			r := ck.Tensors[name+loader.SuffixLowRankA].Shape[0]
			ta, fa, err := get(name+loader.SuffixLowRankA, r, in)
			if err != nil {
				return nil, err
			}
			tb, fb, err := get(name+loader.SuffixLowRankB, out, r)
			if err != nil {
				return nil, err
			}
			w, err := b.lowRank(name, out, in, r, fa, fb, quantize)
			if err != nil {
				return nil, err
			}
			if quantize {
				dropPages(ta.Data)
				dropPages(tb.Data)
			}
			prog.step(name, fmt.Sprintf("low-rank %d", r), out*in)
			return w, nil
		case loader.FormSparse24:
			tv, fv, err := get(name+loader.SuffixSparse24, out, in/2)
			if err != nil {
				return nil, err
			}
			w, err := b.sparse24(name, out, in, fv, ck.Tensors[name+loader.SuffixSparse24Meta].Data, quantize)
			if err != nil {
				return nil, err
			}
			if quantize {
				dropPages(tv.Data)
			}
			prog.step(name, "2:4", out*in)
			return w, nil
		}
		return linear(name, out, in, quantize, false)
	}
	vector := func(name string, n int) (backend.Tensor, error) {
		_, f, err := get(name, n)
		if err != nil {
			return backend.Tensor{}, err
		}
		return b.vector(name, f)
	}
	_, hasOutput := ck.Tensors["output.weight"]
	untied := hasOutput && !c.TiedEmbeddings
	err := m.assemble(b, untied, func(name string, out, in int, emb bool) (*backend.Weight, error) {
		if emb {
			// The embedding table is gathered (and, tied, also the classifier); an
			// untied classifier is only multiplied.
			return linear(name, out, in, quantize(name, true), name == "token_embd.weight")
		}
		return matrix(name, out, in, quantize(name, false))
	}, vector)
	if err != nil {
		return nil, err
	}
	if untied {
		b.bytes -= weightBytes(m.embed) // the embedding is gathered, not streamed
	}
	m.WeightBytes = b.bytes
	m.weightTypes = b.typeSummary()
	return m, nil
}

// assemble fills m's weights in loader.Canonical's order: the embedding, each layer's
// seven matrices and two norms, the final norm, then the classifier when untied (else
// the embedding serves). matrix gets each matrix's name and shape, emb set for the
// embedding and the classifier. When b fuses, b holds q, k, v (then gate, up) as matrix
// makes them and loads them fused (layer).
func (m *Model) assemble(b *builder, untied bool, matrix func(name string, out, in int, emb bool) (*backend.Weight, error), vector func(name string, n int) (backend.Tensor, error)) error {
	c := &m.Config
	D, F, V := c.Dim, c.HiddenDim, c.VocabSize
	qd, kd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	var err error
	if m.embed, err = matrix("token_embd.weight", V, D, true); err != nil {
		return err
	}
	for l := 0; l < c.Layers; l++ {
		var ly layer
		p := fmt.Sprintf("blk.%d.", l)
		type spec struct {
			dst     **backend.Weight
			name    string
			out, in int
		}
		// group loads specs; with fused set (b fuses) it holds them and loads them as
		// one weight into *fused, clearing their own (or apart when fuse cannot).
		group := func(fused **backend.Weight, name string, specs ...spec) error {
			var hs []held
			if fused != nil && b.fuses() {
				b.hold = &hs
				defer func() { b.hold = nil }()
			}
			for _, s := range specs {
				if *s.dst, err = matrix(p+s.name, s.out, s.in, false); err != nil {
					return err
				}
			}
			if b.hold == nil {
				return nil
			}
			b.hold = nil
			if *fused, err = b.fuse(p+name, hs, len(specs)); err != nil || *fused == nil {
				return err
			}
			for _, s := range specs {
				*s.dst = nil
			}
			return nil
		}
		for _, g := range []struct {
			into  **backend.Weight
			name  string
			specs []spec
		}{
			{into: &ly.wqkv, name: "attn_qkv.weight", specs: []spec{{&ly.wq, "attn_q.weight", qd, D}, {&ly.wk, "attn_k.weight", kd, D}, {&ly.wv, "attn_v.weight", kd, D}}},
			{specs: []spec{{&ly.wo, "attn_output.weight", D, qd}}},
			{into: &ly.wgu, name: "ffn_gate_up.weight", specs: []spec{{&ly.gate, "ffn_gate.weight", F, D}, {&ly.up, "ffn_up.weight", F, D}}},
			{specs: []spec{{&ly.down, "ffn_down.weight", D, F}}},
		} {
			if err := group(g.into, g.name, g.specs...); err != nil {
				return err
			}
		}
		if ly.attnNorm, err = vector(p+"attn_norm.weight", D); err != nil {
			return err
		}
		if ly.ffnNorm, err = vector(p+"ffn_norm.weight", D); err != nil {
			return err
		}
		m.layers = append(m.layers, ly)
	}
	if m.outNorm, err = vector("output_norm.weight", D); err != nil {
		return err
	}
	m.output = m.embed
	if untied {
		m.output, err = matrix("output.weight", V, D, true)
	}
	return err
}
