package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/lora"
)

// LogitsMode says which of a sequence's rows produce logits.
type LogitsMode uint8

const (
	LogitsNone LogitsMode = iota // a prefill chunk that does not end the prompt
	LogitsLast                   // the next-token distribution
	LogitsAll                    // every row (teacher forcing, perplexity)
)

// Seq is one sequence's part of a forward pass.
type Seq struct {
	Tokens []int32    // the tokens computed in this pass
	Pos    int        // position of Tokens[0]; earlier positions are in the cache
	Blocks []int32    // block table covering positions [0, Pos+len(Tokens))
	Logits LogitsMode // which rows produce logits
	// LoRA is 1 + the slot of the model's LoRASet (SetLoRA) whose adapter applies to
	// the sequence's rows; 0 runs the base model.
	LoRA int
	// Prompt marks Tokens as prompt tokens (a prefill chunk, a preempted sequence's
	// recompute, text scored teacher-forced); false, as generated tokens (a decode row,
	// the rows that verify draft tokens). It is the role that picks the activation
	// precision of int8 matmuls (backend.Epilogue.Prompt: W8A8 on a device for prompt
	// rows, W8A16 for generated ones): a row's numerics depend on its role, never on
	// how many rows the pass holds or what they are.
	Prompt bool
}

// Batch is a pass's inputs as I32 tensors of the backend, what every layer reads:
// Forward stages them from its sequences, a captured decode step reads a DecodeIO's
// fixed buffers, and both run the same pass over them.
type Batch struct {
	IDs  backend.Tensor  // [1][n] token ids
	KV   backend.KVIndex // positions, sequences, block tables of the n rows
	Rows backend.Tensor  // [1][r] the rows whose logits are computed (r may be 0)
	// LoRA [1][n] holds each row's adapter slot (-1: the base model), or is the zero
	// Tensor when no row has one: the pass then issues no LoRA op.
	LoRA backend.Tensor
	// Prompt is how many rows, from the first, are prompt tokens (Seq.Prompt); the rest
	// are generated. Each layer's matmuls issue the two groups as separate calls, with
	// backend.Epilogue.Prompt set for the first (a captured decode step has none).
	Prompt int
}

// Workspace holds one lane's activations for batches of up to MaxTokens tokens. A
// workspace serves one forward pass at a time; concurrent lanes each need their own.
type Workspace struct {
	MaxTokens, MaxLogitRows int
	stream                  backend.Stream

	// Activations, in the backend's activation type.
	x, xb, q, k, v, att backend.Tensor // [MaxTokens][D | H*d | K*d]
	gate, up, hb        backend.Tensor // [MaxTokens][F]
	xl, logits          backend.Tensor // [MaxLogitRows][D | V]
	host                []float32      // [MaxLogitRows*V] logits copied back

	index  []int32 // Forward's host inputs, staged at once: ids, pos, seq, rows, tables
	heads  backend.AttnHeads
	tracer Tracer   // nil: passes are not traced (trace.go)
	lora   *LoRASet // adapter slots its passes apply (SetLoRA); nil: none
}

// NewWorkspace allocates activations for up to maxTokens tokens per pass, of which up to
// maxLogitRows produce logits, on a new stream of the model's backend.
func (m *Model) NewWorkspace(maxTokens, maxLogitRows int) (*Workspace, error) {
	return NewWorkspace(m.be, &m.Config, maxTokens, maxLogitRows)
}

// NewWorkspace allocates a workspace for a model of configuration c on be (stand-ins
// for a model, such as engine tests' fake, allocate theirs so), on a new stream.
// Activations are of be.Activations().
func NewWorkspace(be backend.Backend, c *Config, maxTokens, maxLogitRows int) (*Workspace, error) {
	if maxTokens <= 0 || maxLogitRows <= 0 {
		return nil, fmt.Errorf("workspace: need positive sizes, got %d tokens and %d logit rows", maxTokens, maxLogitRows)
	}
	s, err := be.NewStream()
	if err != nil {
		return nil, err
	}
	return NewWorkspaceOn(be, c, s, maxTokens, maxLogitRows)
}

// NewWorkspaceOn is the model's NewWorkspace on an existing stream s of its backend: a
// draft model's passes issued on a target lane's stream stay in that lane's order, so
// the lane's event fences cover them too.
func (m *Model) NewWorkspaceOn(s backend.Stream, maxTokens, maxLogitRows int) (*Workspace, error) {
	return NewWorkspaceOn(m.be, &m.Config, s, maxTokens, maxLogitRows)
}

// NewWorkspaceOn is NewWorkspace on an existing stream s of be.
func NewWorkspaceOn(be backend.Backend, c *Config, s backend.Stream, maxTokens, maxLogitRows int) (*Workspace, error) {
	if maxTokens <= 0 || maxLogitRows <= 0 {
		return nil, fmt.Errorf("workspace: need positive sizes, got %d tokens and %d logit rows", maxTokens, maxLogitRows)
	}
	var err error
	w := &Workspace{MaxTokens: maxTokens, MaxLogitRows: maxLogitRows, stream: s}
	qd, kd, act := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, be.Activations()
	for _, a := range []struct {
		t          *backend.Tensor
		rows, cols int
	}{
		{&w.x, maxTokens, c.Dim}, {&w.xb, maxTokens, c.Dim}, {&w.q, maxTokens, qd},
		{&w.k, maxTokens, kd}, {&w.v, maxTokens, kd}, {&w.att, maxTokens, qd},
		{&w.gate, maxTokens, c.HiddenDim}, {&w.up, maxTokens, c.HiddenDim}, {&w.hb, maxTokens, c.HiddenDim},
		{&w.xl, maxLogitRows, c.Dim}, {&w.logits, maxLogitRows, c.VocabSize},
	} {
		if *a.t, err = be.Alloc(act, a.rows, a.cols); err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
	}
	w.host = make([]float32, maxLogitRows*c.VocabSize)
	w.heads = backend.AttnHeads{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Scale: float32(1 / math.Sqrt(float64(c.HeadDim)))}
	return w, nil
}

// Stream is the backend stream the workspace's passes are issued on: the engine records
// events on it and makes it wait for other streams' work.
func (w *Workspace) Stream() backend.Stream { return w.stream }

// DefaultBlockSize is the KV block size in tokens.
const DefaultBlockSize = 16

// NewKVCache allocates a paged cache of blocks × blockSize token slots on the backend.
func (m *Model) NewKVCache(blocks, blockSize int) (*backend.KVCache, error) {
	return m.be.AllocKV(m.Config.Layers, blocks, blockSize, m.Config.KVHeads, m.Config.HeadDim)
}

// Forward runs one pass over seqs, writing their K/V into kv, and returns the logits
// rows the sequences asked for, in order ([rows][vocab], valid until the next pass on
// this workspace).
func (m *Model) Forward(ws *Workspace, kv *backend.KVCache, seqs []Seq) ([]float32, error) {
	b, n, err := m.stage(ws, kv, seqs)
	if err != nil || n == 0 {
		return nil, err
	}
	r := b.Rows.Cols
	logits := ws.logits.SliceRows(0, r)
	info := PassInfo{Kind: "forward", Phase: phaseOf(seqs), Tokens: n, Seqs: len(seqs), LogitRows: r}
	if err := m.pass(ws, kv, &b, logits, info); err != nil || r == 0 {
		return nil, err
	}
	out := ws.host[:r*m.Config.VocabSize]
	if err := m.be.Download(backend.Bytes(out), backend.F32, logits); err != nil {
		return nil, fmt.Errorf("forward: logits: %w", err)
	}
	return out, nil
}

// stage checks seqs against the model and the cache, lays their inputs out in
// ws.index — ids, positions, sequence of each row, rows whose logits are kept, then
// the block tables [len(seqs)][width] (entries past a context -1) — and stages them
// as one tensor, the views of which make the Batch. n is the number of tokens.
func (m *Model) stage(ws *Workspace, kv *backend.KVCache, seqs []Seq) (b Batch, n int, err error) {
	c, bs := &m.Config, kv.BlockSize
	width, rows, maxCtx := 0, 0, 0
	adapted := false // some sequence names a LoRA slot
	for i := range seqs {
		s := &seqs[i]
		end := s.Pos + len(s.Tokens)
		switch {
		case len(s.Tokens) == 0:
			return b, 0, fmt.Errorf("forward: sequence %d has no tokens", i)
		case s.Pos < 0 || end > c.MaxSeqLen:
			return b, 0, fmt.Errorf("forward: sequence %d: positions %d..%d exceed the context of %d", i, s.Pos, end-1, c.MaxSeqLen)
		case (end+bs-1)/bs > len(s.Blocks):
			return b, 0, fmt.Errorf("forward: sequence %d: %d blocks of %d cannot hold %d positions", i, len(s.Blocks), bs, end)
		}
		for _, id := range s.Tokens {
			if id < 0 || int(id) >= c.VocabSize {
				return b, 0, fmt.Errorf("forward: sequence %d: token id %d outside the vocabulary [0, %d)", i, id, c.VocabSize)
			}
		}
		for _, blk := range s.Blocks[:(end+bs-1)/bs] {
			if blk < 0 || int(blk) >= kv.Blocks {
				return b, 0, fmt.Errorf("forward: sequence %d: block %d outside the cache of %d", i, blk, kv.Blocks)
			}
		}
		if s.LoRA != 0 {
			switch {
			case ws.lora == nil:
				return b, 0, fmt.Errorf("forward: sequence %d names LoRA slot %d, but the workspace has no adapter slots", i, s.LoRA-1)
			case ws.lora.owner != m:
				return b, 0, fmt.Errorf("forward: the workspace's adapter slots were made for another model")
			case s.LoRA < 0 || s.LoRA > ws.lora.Slots:
				return b, 0, fmt.Errorf("forward: sequence %d names LoRA slot %d outside [0, %d)", i, s.LoRA-1, ws.lora.Slots)
			}
			adapted = true
		}
		n += len(s.Tokens)
		if n > ws.MaxTokens {
			return b, 0, fmt.Errorf("forward: batch of more than %d tokens for a workspace of %d", n, ws.MaxTokens)
		}
		switch s.Logits {
		case LogitsLast:
			rows++
		case LogitsAll:
			rows += len(s.Tokens)
		}
		width, maxCtx = max(width, (end+bs-1)/bs), max(maxCtx, end)
	}
	if rows > ws.MaxLogitRows {
		return b, 0, fmt.Errorf("forward: %d logit rows for a workspace of %d", rows, ws.MaxLogitRows)
	}
	if n == 0 {
		return b, 0, nil
	}
	size := 3*n + rows + len(seqs)*width
	slotsAt := size // the LoRA slots follow the tables when some row has an adapter
	if adapted {
		size += n
	}
	if cap(ws.index) < size {
		ws.index = make([]int32, size)
	}
	x := ws.index[:size]
	ids, pos, seq, keep, tables := x[:n], x[n:2*n], x[2*n:3*n], x[3*n:3*n+rows], x[3*n+rows:slotsAt]
	slots := x[slotsAt:]
	// Rows: the prompt sequences' tokens first, then the generated ones', each group in
	// the order of seqs (a sequence's rows stay consecutive); logits rows follow seqs.
	prompt := 0
	for i := range seqs {
		if seqs[i].Prompt {
			prompt += len(seqs[i].Tokens)
		}
	}
	nextPrompt, nextGen, k := 0, prompt, 0
	for i := range seqs {
		s := &seqs[i]
		row := &nextGen
		if s.Prompt {
			row = &nextPrompt
		}
		for j, t := range s.Tokens {
			r := *row
			ids[r], pos[r], seq[r] = t, int32(s.Pos+j), int32(i)
			if adapted {
				slots[r] = int32(s.LoRA - 1)
			}
			if s.Logits == LogitsAll || (s.Logits == LogitsLast && j == len(s.Tokens)-1) {
				keep[k] = int32(r)
				k++
			}
			*row++
		}
		t := tables[i*width : (i+1)*width]
		used := copy(t, s.Blocks[:(s.Pos+len(s.Tokens)+bs-1)/bs])
		for j := used; j < width; j++ {
			t[j] = -1
		}
	}
	all, err := m.be.Stage(ws.stream, x)
	if err != nil {
		return b, 0, fmt.Errorf("forward: staging %d index values: %w", size, err)
	}
	b = Batch{
		IDs: all.View(0, 1, n),
		KV: backend.KVIndex{Pos: all.View(n, 1, n), Seq: all.View(2*n, 1, n),
			Tables: all.View(3*n+rows, len(seqs), width), MaxCtx: maxCtx},
		Rows:   all.View(3*n, 1, rows),
		Prompt: prompt,
	}
	if adapted {
		b.LoRA = all.View(slotsAt, 1, n)
	}
	return b, n, nil
}

// pass issues the model over b on ws's stream: the embedding, every layer, and, for
// the r rows of b.Rows, the final norm and the classifier into logits [r][vocab].
// info.Kind names the pass in errors; ws's tracer, if any, sees it.
func (m *Model) pass(ws *Workspace, kv *backend.KVCache, b *Batch, logits backend.Tensor, info PassInfo) error {
	n, r := b.IDs.Cols, b.Rows.Cols
	if n > ws.MaxTokens || r > ws.MaxLogitRows || logits.Rows != r {
		return fmt.Errorf("%s: %d rows, logits %s of %d for a workspace of %d tokens and %d logit rows", info.Kind, n, logits, r, ws.MaxTokens, ws.MaxLogitRows)
	}
	if b.Prompt < 0 || b.Prompt > n {
		return fmt.Errorf("%s: %d prompt rows of %d", info.Kind, b.Prompt, n)
	}
	o := &issuer{m: m, st: ws.stream, kv: kv, at: &b.KV, heads: &ws.heads, what: info.Kind, layer: -1, tr: ws.tracer, prompt: b.Prompt}
	if o.tr != nil {
		o.tr.BeginPass(info)
	}
	if b.LoRA.Buf != nil {
		o.loraSlots, o.loraSet = b.LoRA, ws.lora
		if o.loraSet == nil || o.loraSet.owner != m {
			return fmt.Errorf("%s: a batch with LoRA slots on a workspace without this model's adapter slots", info.Kind)
		}
	}
	x := ws.x.SliceRows(0, n)
	o.embed(x, b.IDs)
	m.layerStack(o, ws, n)
	if r > 0 {
		xl := ws.xl.SliceRows(0, r)
		o.gather(xl, x, b.Rows)
		o.rmsNorm(OpOutputNorm, xl, xl, m.outNorm)
		// The classifier's rows are in the sequences' order, both roles mixed: it runs
		// them all as generated rows (W8A16), a fixed precision for every logit row.
		o.prompt = 0
		o.matmul(OpClassifier, logits, xl, m.output, backend.Epilogue{})
	}
	if o.tr != nil {
		o.tr.EndPass(o.err)
	}
	return o.err
}

// issuer issues one pass's ops on a workspace's stream and keeps the first error
// ("errors are values"): once an op fails, the later ones are skipped, and err names
// the pass, the layer and the op.
type issuer struct {
	m     *Model
	st    backend.Stream
	kv    *backend.KVCache
	at    *backend.KVIndex
	heads *backend.AttnHeads
	what  string // "forward", "decode step"
	layer int    // -1 outside the layer stack
	err   error
	tr    Tracer // nil: none
	// The batch's LoRA slots and the model's set, when some row has an adapter.
	loraSlots backend.Tensor
	loraSet   *LoRASet
	// prompt is how many leading rows of the layers' matmuls are prompt tokens
	// (Batch.Prompt): matmul issues them and the rest as two calls.
	prompt int
}

// begin and end bracket an op for the tracer.
func (o *issuer) begin(op Op) {
	if o.tr != nil {
		o.tr.BeginOp(op, o.layer)
	}
}

func (o *issuer) end(op Op) {
	if o.tr != nil {
		o.tr.EndOp(op, o.layer)
	}
}

// check records err, the first failure of the pass, naming op.
func (o *issuer) check(op Op, err error) {
	switch {
	case err == nil || o.err != nil:
	case o.layer >= 0:
		o.err = fmt.Errorf("%s: layer %d: %s: %w", o.what, o.layer, op, err)
	default:
		o.err = fmt.Errorf("%s: %s: %w", o.what, op, err)
	}
}

func (o *issuer) embed(x, ids backend.Tensor) {
	if o.err == nil {
		o.begin(OpEmbed)
		o.check(OpEmbed, o.m.be.Embed(o.st, x, o.m.embed, ids))
		o.end(OpEmbed)
	}
}

func (o *issuer) gather(dst, x, rows backend.Tensor) {
	if o.err == nil {
		o.begin(OpGather)
		o.check(OpGather, o.m.be.GatherRows(o.st, dst, x, rows))
		o.end(OpGather)
	}
}

func (o *issuer) rmsNorm(op Op, out, x, w backend.Tensor) {
	if o.err == nil {
		o.begin(op)
		o.check(op, o.m.be.RMSNorm(o.st, out, x, w, o.m.Config.NormEps))
		o.end(op)
	}
}

// matmul issues out (+)= x·Wᵀ by role: rows [0, o.prompt) as one call marked Prompt,
// the rest as another (one call when all rows share a role), so each row gets the
// precision of its role whatever else the pass holds.
func (o *issuer) matmul(op Op, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) {
	if o.err == nil {
		o.begin(op)
		p := min(o.prompt, x.Rows)
		if out.Rows != x.Rows {
			p = 0 // one call: the backend reports the mismatch
		}
		if p > 0 {
			pe := epi
			pe.Prompt = true
			o.check(op, o.m.be.MatMul(o.st, out.SliceRows(0, p), x.SliceRows(0, p), w, pe))
		}
		if p < x.Rows && o.err == nil {
			o.check(op, o.m.be.MatMul(o.st, out.SliceRows(p, out.Rows), x.SliceRows(p, x.Rows), w, epi))
		}
		o.lora(op, out, x, epi)
		o.end(op)
	}
}

// matmulSplit issues x·Wᵀ of a fused weight into outs (backend.SplitMatMuler), by role
// as matmul does, then each output's adapter products (ops[i] names output i's
// projection), all in op's tracer bracket.
func (o *issuer) matmulSplit(op Op, ops []Op, outs []backend.Tensor, x backend.Tensor, w *backend.Weight) {
	if o.err != nil {
		return
	}
	o.begin(op)
	sm, ok := o.m.be.(backend.SplitMatMuler)
	if !ok {
		o.check(op, fmt.Errorf("fused weight %q on a backend without split outputs", w.Name))
	}
	p := min(o.prompt, x.Rows)
	for _, out := range outs {
		if out.Rows != x.Rows {
			p = 0 // one call: the backend reports the mismatch
		}
	}
	part := func(r0, r1 int, prompt bool) {
		if o.err != nil {
			return
		}
		sub := make([]backend.Tensor, len(outs))
		for i, out := range outs {
			sub[i] = out
			if r1-r0 != x.Rows {
				sub[i] = out.SliceRows(r0, r1)
			}
		}
		o.check(op, sm.MatMulSplit(o.st, sub, x.SliceRows(r0, r1), w, backend.Epilogue{Prompt: prompt}))
	}
	if p > 0 {
		part(0, p, true)
	}
	if p < x.Rows {
		part(p, x.Rows, false)
	}
	for i, out := range outs {
		o.lora(ops[i], out, x, backend.Epilogue{})
	}
	o.end(op)
}

// loraTargets are the projections adapters apply to, by op.
var loraTargets = map[Op]lora.Target{OpQ: lora.TargetQ, OpK: lora.TargetK, OpV: lora.TargetV, OpAttnOutput: lora.TargetO,
	OpFFNGate: lora.TargetGate, OpFFNUp: lora.TargetUp, OpFFNDown: lora.TargetDown}

// lora adds the rows' adapter products of op's target in the current layer to out (x:
// the projection's input), when the batch has adapters. It runs inside the
// projection's tracer bracket, so profiles count an adapter's product with its
// projection.
func (o *issuer) lora(op Op, out, x backend.Tensor, epi backend.Epilogue) {
	t, ok := loraTargets[op]
	if !ok || o.loraSet == nil || o.err != nil {
		return
	}
	if epi.SiLUGLU {
		o.check(op, errors.New("lora: a fused SiLU-GLU projection cannot take adapter products"))
		return
	}
	if err := o.m.be.(backend.LoRAer).LoRA(o.st, out, x, &o.loraSet.stacks[o.layer][t], o.loraSlots); err != nil {
		o.check(op, fmt.Errorf("lora: %w", err))
	}
}

func (o *issuer) siluMul(out, gate, up backend.Tensor) {
	if o.err == nil {
		o.begin(OpSiLUMul)
		o.check(OpSiLUMul, o.m.be.SiLUMul(o.st, out, gate, up))
		o.end(OpSiLUMul)
	}
}

func (o *issuer) rope(op Op, x backend.Tensor) {
	if o.err == nil {
		o.begin(op)
		o.check(op, o.m.be.RoPE(o.st, x, o.at.Pos, &o.m.rope))
		o.end(op)
	}
}

func (o *issuer) writeKV(k, v backend.Tensor) {
	if o.err == nil {
		o.begin(OpWriteKV)
		o.check(OpWriteKV, o.m.be.WriteKV(o.st, o.kv, o.layer, k, v, o.at))
		o.end(OpWriteKV)
	}
}

func (o *issuer) attend(out, q backend.Tensor) {
	if o.err == nil {
		o.begin(OpAttention)
		o.check(OpAttention, o.m.be.Attention(o.st, out, q, o.kv, o.layer, o.at, o.heads))
		o.end(OpAttention)
	}
}

// layerStack issues every transformer layer over rows [0, n) of ws.x, in place.
func (m *Model) layerStack(o *issuer, ws *Workspace, n int) {
	x, xn := ws.x.SliceRows(0, n), ws.xb.SliceRows(0, n)
	q, k, v, att := ws.q.SliceRows(0, n), ws.k.SliceRows(0, n), ws.v.SliceRows(0, n), ws.att.SliceRows(0, n)
	gate, up, hb := ws.gate.SliceRows(0, n), ws.up.SliceRows(0, n), ws.hb.SliceRows(0, n)
	for l := range m.layers {
		ly := &m.layers[l]
		o.layer = l
		if o.tr != nil {
			o.tr.BeginLayer(l)
		}
		// Attention block: x += Wo · attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x)).
		o.rmsNorm(OpAttnNorm, xn, x, ly.attnNorm)
		if ly.wqkv != nil { // one product into q, k and v, timed as q_proj
			o.matmulSplit(OpQ, []Op{OpQ, OpK, OpV}, []backend.Tensor{q, k, v}, xn, ly.wqkv)
		} else {
			o.matmul(OpQ, q, xn, ly.wq, backend.Epilogue{})
			o.matmul(OpK, k, xn, ly.wk, backend.Epilogue{})
			o.matmul(OpV, v, xn, ly.wv, backend.Epilogue{})
		}
		o.rope(OpRopeQ, q)
		o.rope(OpRopeK, k)
		o.writeKV(k, v)
		o.attend(att, q)
		o.matmul(OpAttnOutput, x, att, ly.wo, backend.Epilogue{Accumulate: true})
		// FFN block: x += W2 · (silu(W1·n(x)) * W3·n(x)).
		o.rmsNorm(OpFFNNorm, xn, x, ly.ffnNorm)
		switch {
		case ly.wgu != nil && o.loraSet == nil:
			// gate, up and silu(gate)·up in one product (the SiLU-GLU epilogue), timed
			// as gate_proj.
			o.matmul(OpFFNGate, hb, xn, ly.wgu, backend.Epilogue{SiLUGLU: true})
		case ly.wgu != nil:
			// Adapters add to gate and up apart: split outputs, then SiLUMul.
			o.matmulSplit(OpFFNGate, []Op{OpFFNGate, OpFFNUp}, []backend.Tensor{gate, up}, xn, ly.wgu)
			o.siluMul(hb, gate, up)
		default:
			o.matmul(OpFFNGate, gate, xn, ly.gate, backend.Epilogue{})
			o.matmul(OpFFNUp, up, xn, ly.up, backend.Epilogue{})
			o.siluMul(hb, gate, up)
		}
		o.matmul(OpFFNDown, x, hb, ly.down, backend.Epilogue{Accumulate: true})
		if o.tr != nil {
			o.tr.EndLayer(l)
		}
	}
	o.layer = -1
}
