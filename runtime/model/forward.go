package model

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/backend"
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
}

// Workspace holds one lane's activations for batches of up to MaxTokens tokens. A
// workspace serves one forward pass at a time; concurrent lanes each need their own.
type Workspace struct {
	MaxTokens, MaxLogitRows int
	stream                  backend.Stream

	x, xb, q, k, v, att backend.Tensor // [MaxTokens][D | H*d | K*d]
	gate, up, hb        backend.Tensor // [MaxTokens][F]
	xl, logits          backend.Tensor // [MaxLogitRows][D | V]
	host                []float32      // [MaxLogitRows*V] logits copied back

	ids, pos, slots, rows []int32
	attn                  backend.AttnBatch
}

// NewWorkspace allocates activations for up to maxTokens tokens per pass, of which up to
// maxLogitRows produce logits, on a new stream of the model's backend.
func (m *Model) NewWorkspace(maxTokens, maxLogitRows int) (*Workspace, error) {
	return NewWorkspace(m.be, &m.Config, maxTokens, maxLogitRows)
}

// NewWorkspace allocates a workspace for a model of configuration c on be (stand-ins
// for a model, such as engine tests' fake, allocate theirs so), on a new stream.
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
	qd, kd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	for _, a := range []struct {
		t          *backend.Tensor
		rows, cols int
	}{
		{&w.x, maxTokens, c.Dim}, {&w.xb, maxTokens, c.Dim}, {&w.q, maxTokens, qd},
		{&w.k, maxTokens, kd}, {&w.v, maxTokens, kd}, {&w.att, maxTokens, qd},
		{&w.gate, maxTokens, c.HiddenDim}, {&w.up, maxTokens, c.HiddenDim}, {&w.hb, maxTokens, c.HiddenDim},
		{&w.xl, maxLogitRows, c.Dim}, {&w.logits, maxLogitRows, c.VocabSize},
	} {
		if *a.t, err = be.Alloc(backend.F32, a.rows, a.cols); err != nil {
			return nil, fmt.Errorf("workspace: %w", err)
		}
	}
	w.host = make([]float32, maxLogitRows*c.VocabSize)
	w.attn = backend.AttnBatch{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Scale: float32(1 / math.Sqrt(float64(c.HeadDim)))}
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
	c := &m.Config
	ws.ids, ws.pos, ws.slots, ws.rows = ws.ids[:0], ws.pos[:0], ws.slots[:0], ws.rows[:0]
	ws.attn.Seqs = ws.attn.Seqs[:0]
	for i := range seqs {
		s := &seqs[i]
		n := len(s.Tokens)
		end := s.Pos + n
		switch {
		case n == 0:
			return nil, fmt.Errorf("forward: sequence %d has no tokens", i)
		case s.Pos < 0 || end > c.MaxSeqLen:
			return nil, fmt.Errorf("forward: sequence %d: positions %d..%d exceed the context of %d", i, s.Pos, end-1, c.MaxSeqLen)
		case (end+kv.BlockSize-1)/kv.BlockSize > len(s.Blocks):
			return nil, fmt.Errorf("forward: sequence %d: %d blocks of %d cannot hold %d positions", i, len(s.Blocks), kv.BlockSize, end)
		}
		q0 := len(ws.ids)
		if q0+n > ws.MaxTokens {
			return nil, fmt.Errorf("forward: batch of more than %d tokens for a workspace of %d", q0+n, ws.MaxTokens)
		}
		ws.attn.Seqs = append(ws.attn.Seqs, backend.AttnSeq{Q0: q0, NQ: n, Pos: s.Pos, Blocks: s.Blocks})
		for j, t := range s.Tokens {
			p := s.Pos + j
			ws.ids = append(ws.ids, t)
			ws.pos = append(ws.pos, int32(p))
			ws.slots = append(ws.slots, backend.Slot(s.Blocks, kv.BlockSize, p))
		}
		switch s.Logits {
		case LogitsLast:
			ws.rows = append(ws.rows, int32(q0+n-1))
		case LogitsAll:
			for j := 0; j < n; j++ {
				ws.rows = append(ws.rows, int32(q0+j))
			}
		}
	}
	if len(ws.rows) > ws.MaxLogitRows {
		return nil, fmt.Errorf("forward: %d logit rows for a workspace of %d", len(ws.rows), ws.MaxLogitRows)
	}
	n := len(ws.ids)
	if n == 0 {
		return nil, nil
	}
	x := ws.x.SliceRows(0, n)
	o := m.issuer(ws, "forward", indexed{
		rope:   func(x backend.Tensor) error { return m.be.RoPE(ws.stream, x, ws.pos, &m.rope) },
		write:  func(l int, k, v backend.Tensor) error { return m.be.WriteKV(ws.stream, kv, l, k, v, ws.slots) },
		attend: func(l int, out, q backend.Tensor) error { return m.be.Attention(ws.stream, out, q, kv, l, &ws.attn) },
	})
	o.embed(x, ws.ids)
	m.layerStack(o, ws, n)
	r := len(ws.rows)
	if o.err != nil || r == 0 {
		return nil, o.err
	}
	xl, logits := ws.xl.SliceRows(0, r), ws.logits.SliceRows(0, r)
	o.gather(xl, x, ws.rows)
	o.rmsNorm("output norm", xl, xl, m.outNorm)
	o.matmul("classifier", logits, xl, m.output, backend.Epilogue{})
	if o.err != nil {
		return nil, o.err
	}
	out := ws.host[:r*c.VocabSize]
	if err := m.be.Download(f32Bytes(out), logits); err != nil {
		return nil, fmt.Errorf("forward: logits: %w", err)
	}
	return out, nil
}

// indexed are the ops of a layer that read per-row indices (positions, cache slots,
// block tables): host slices in Forward, device buffers in DecodeStepAt.
type indexed struct {
	rope   func(x backend.Tensor) error
	write  func(layer int, k, v backend.Tensor) error
	attend func(layer int, out, q backend.Tensor) error
}

// issuer issues one pass's ops on a workspace's stream and keeps the first error
// ("errors are values"): once an op fails, the later ones are skipped, and err names
// the pass, the layer and the op.
type issuer struct {
	m     *Model
	st    backend.Stream
	ix    indexed
	what  string // "forward", "decode step"
	layer int    // -1 outside the layer stack
	err   error
}

func (m *Model) issuer(ws *Workspace, what string, ix indexed) *issuer {
	return &issuer{m: m, st: ws.stream, ix: ix, what: what, layer: -1}
}

// check records err, the first failure of the pass, naming op.
func (o *issuer) check(op string, err error) {
	switch {
	case err == nil || o.err != nil:
	case o.layer >= 0:
		o.err = fmt.Errorf("%s: layer %d: %s: %w", o.what, o.layer, op, err)
	default:
		o.err = fmt.Errorf("%s: %s: %w", o.what, op, err)
	}
}

func (o *issuer) embed(x backend.Tensor, ids []int32) {
	if o.err == nil {
		o.check("embed", o.m.be.Embed(o.st, x, o.m.embed, ids))
	}
}

func (o *issuer) gather(dst, x backend.Tensor, rows []int32) {
	if o.err == nil {
		o.check("gather", o.m.be.GatherRows(o.st, dst, x, rows))
	}
}

func (o *issuer) rmsNorm(op string, out, x, w backend.Tensor) {
	if o.err == nil {
		o.check(op, o.m.be.RMSNorm(o.st, out, x, w, o.m.Config.NormEps))
	}
}

func (o *issuer) matmul(op string, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) {
	if o.err == nil {
		o.check(op, o.m.be.MatMul(o.st, out, x, w, epi))
	}
}

func (o *issuer) siluMul(out, gate, up backend.Tensor) {
	if o.err == nil {
		o.check("silu", o.m.be.SiLUMul(o.st, out, gate, up))
	}
}

func (o *issuer) rope(op string, x backend.Tensor) {
	if o.err == nil {
		o.check(op, o.ix.rope(x))
	}
}

func (o *issuer) writeKV(k, v backend.Tensor) {
	if o.err == nil {
		o.check("write kv", o.ix.write(o.layer, k, v))
	}
}

func (o *issuer) attend(out, q backend.Tensor) {
	if o.err == nil {
		o.check("attention", o.ix.attend(o.layer, out, q))
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
		// Attention block: x += Wo · attn(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x)).
		o.rmsNorm("attn norm", xn, x, ly.attnNorm)
		o.matmul("q", q, xn, ly.wq, backend.Epilogue{})
		o.matmul("k", k, xn, ly.wk, backend.Epilogue{})
		o.matmul("v", v, xn, ly.wv, backend.Epilogue{})
		o.rope("rope q", q)
		o.rope("rope k", k)
		o.writeKV(k, v)
		o.attend(att, q)
		o.matmul("attn output", x, att, ly.wo, backend.Epilogue{Accumulate: true})
		// FFN block: x += W2 · (silu(W1·n(x)) * W3·n(x)).
		o.rmsNorm("ffn norm", xn, x, ly.ffnNorm)
		o.matmul("ffn gate", gate, xn, ly.gate, backend.Epilogue{})
		o.matmul("ffn up", up, xn, ly.up, backend.Epilogue{})
		o.siluMul(hb, gate, up)
		o.matmul("ffn down", x, hb, ly.down, backend.Epilogue{Accumulate: true})
	}
	o.layer = -1
}
