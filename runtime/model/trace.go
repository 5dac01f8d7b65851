package model

// Op is one op of a pass as the issuer issues it (forward.go), in pass order: the
// embedding, the layer stack's ops once per layer, then the logit rows' gather, norm
// and classifier. A Tracer sees each by its Op; errors name it by its String.
type Op uint8

const (
	OpEmbed      Op = iota // table rows of the token ids
	OpAttnNorm             // RMSNorm before attention
	OpQ                    // q projection (MatMul)
	OpK                    // k projection
	OpV                    // v projection
	OpRopeQ                // RoPE of q
	OpRopeK                // RoPE of k
	OpWriteKV              // K and V into the paged cache
	OpAttention            // paged attention
	OpAttnOutput           // o projection, += residual
	OpFFNNorm              // RMSNorm before the FFN
	OpFFNGate              // gate projection
	OpFFNUp                // up projection
	OpSiLUMul              // silu(gate) · up
	OpFFNDown              // down projection, += residual
	OpGather               // the rows whose logits are kept
	OpOutputNorm           // the final RMSNorm
	OpClassifier           // the logits
	NumOps                 // the number of ops
)

// opNames are the ops' names, as profiles and errors give them (Hugging Face's names
// for the projections).
var opNames = [NumOps]string{
	OpEmbed: "embed", OpAttnNorm: "attn_norm", OpQ: "q_proj", OpK: "k_proj", OpV: "v_proj",
	OpRopeQ: "rope_q", OpRopeK: "rope_k", OpWriteKV: "write_kv", OpAttention: "attention",
	OpAttnOutput: "o_proj", OpFFNNorm: "ffn_norm", OpFFNGate: "gate_proj", OpFFNUp: "up_proj",
	OpSiLUMul: "silu_mul", OpFFNDown: "down_proj", OpGather: "gather", OpOutputNorm: "output_norm",
	OpClassifier: "classifier",
}

func (o Op) String() string {
	if o < NumOps {
		return opNames[o]
	}
	return "op?"
}

// InLayer reports whether o runs once per layer (inside the layer stack) rather than
// once per pass.
func (o Op) InLayer() bool { return o >= OpAttnNorm && o <= OpFFNDown }

// Phase is what a pass computes: prompt chunks, one new token per sequence, or both.
type Phase uint8

const (
	PhasePrefill Phase = iota // every sequence brings several tokens (prompt chunks, verification passes)
	PhaseDecode               // every sequence brings one token
	PhaseMixed                // some of each
)

func (p Phase) String() string {
	switch p {
	case PhasePrefill:
		return "prefill"
	case PhaseDecode:
		return "decode"
	}
	return "mixed"
}

// phaseOf is the phase of a pass over seqs.
func phaseOf(seqs []Seq) Phase {
	one, more := false, false
	for i := range seqs {
		if len(seqs[i].Tokens) == 1 {
			one = true
		} else {
			more = true
		}
	}
	switch {
	case one && more:
		return PhaseMixed
	case one:
		return PhaseDecode
	}
	return PhasePrefill
}

// PassInfo describes a pass to a Tracer.
type PassInfo struct {
	Kind      string // "forward" (Forward) or "decode step" (DecodeStep)
	Phase     Phase
	Tokens    int // rows computed (a decode step: its bucket's rows, idle ones included)
	Seqs      int // sequences
	LogitRows int // rows whose logits are computed
}

// Tracer observes the passes issued on a workspace, op by op: a profiler's clock or
// device events, NVTX ranges (runtime/profiling). Its methods are called on the
// goroutine issuing the pass, in issue order: BeginPass, then per op BeginOp and EndOp
// (layer -1 outside the layer stack), the layer stack's ops bracketed by BeginLayer and
// EndLayer, and EndPass with the pass's error (nil on success) once a pass has begun.
// On an asynchronous backend the calls mark issue points on the workspace's stream,
// not completion. Without a tracer (the default) a pass calls nothing and allocates
// nothing for it. A captured decode step (CaptureDecode) is never traced: a replay
// runs no host code to call one.
type Tracer interface {
	BeginPass(p PassInfo)
	BeginLayer(layer int)
	BeginOp(op Op, layer int)
	EndOp(op Op, layer int)
	EndLayer(layer int)
	EndPass(err error)
}

// SetTracer makes t observe the passes issued on w from now on (nil: none). It must not
// be called while a pass runs on w.
func (w *Workspace) SetTracer(t Tracer) { w.tracer = t }

// Tracer is the workspace's tracer, or nil.
func (w *Workspace) Tracer() Tracer { return w.tracer }
