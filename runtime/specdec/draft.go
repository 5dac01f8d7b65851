package specdec

import (
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// Drafter runs a draft model beside a target: its own weights and KV cache, the
// target's block tables.
type Drafter struct {
	m  *model.Model
	kv *backend.KVCache
}

// CheckDraft says why a draft model cannot serve a target: a different vocabulary
// (naming both sizes), a shorter context than the target's max model length, or
// another backend.
func CheckDraft(draft *model.Model, target *model.Config, targetBackend backend.Backend, maxModelLen int) error {
	switch {
	case draft.Config.VocabSize != target.VocabSize:
		return fmt.Errorf("draft model: its vocabulary has %d tokens, the target's %d: a draft must share the target's tokenizer", draft.Config.VocabSize, target.VocabSize)
	case draft.Config.MaxSeqLen < maxModelLen:
		return fmt.Errorf("draft model: its context of %d tokens is shorter than the max model length %d (lower --max-model-len)", draft.Config.MaxSeqLen, maxModelLen)
	case draft.Backend() != targetBackend:
		return fmt.Errorf("draft model: loaded on the %s backend, the target on %s: both must share one backend", draft.Backend().Name(), targetBackend.Name())
	}
	return nil
}

// KVBytesPerBlock is what one KV block of m takes on the CPU (f32 keys and values).
func KVBytesPerBlock(m *model.Model, blockSize int) int64 {
	c := &m.Config
	return int64(c.Layers) * 2 * int64(c.KVHeads*c.HeadDim*blockSize) * 4
}

// NewDrafter allocates the draft's KV cache: blocks × blockSize slots, the target's.
func NewDrafter(draft *model.Model, blocks, blockSize int) (*Drafter, error) {
	kv, err := draft.NewKVCache(blocks, blockSize)
	if err != nil {
		return nil, fmt.Errorf("draft model: kv cache: %w", err)
	}
	return &Drafter{m: draft, kv: kv}, nil
}

// Model is the draft model.
func (d *Drafter) Model() *model.Model { return d.m }

// NewWorkspace allocates draft activations on a target lane's stream s.
func (d *Drafter) NewWorkspace(s backend.Stream, maxTokens, maxLogitRows int) (*model.Workspace, error) {
	ws, err := d.m.NewWorkspaceOn(s, maxTokens, maxLogitRows)
	if err != nil {
		return nil, fmt.Errorf("draft model: %w", err)
	}
	return ws, nil
}

// Prefill computes the draft's KV for the target's prefill chunks seqs (their Logits
// modes are ignored: the draft needs none; their roles, Seq.Prompt, are kept). It
// splits the chunks to fit ws.
func (d *Drafter) Prefill(ws *model.Workspace, seqs []model.Seq) error {
	var batch []model.Seq
	used := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := d.m.Forward(ws, d.kv, batch)
		batch, used = batch[:0], 0
		if err != nil {
			return fmt.Errorf("draft prefill: %w", err)
		}
		return nil
	}
	for _, s := range seqs {
		toks, pos := s.Tokens, s.Pos
		for len(toks) > 0 {
			if used == ws.MaxTokens {
				if err := flush(); err != nil {
					return err
				}
			}
			n := min(len(toks), ws.MaxTokens-used)
			batch = append(batch, model.Seq{Tokens: toks[:n], Pos: pos, Blocks: s.Blocks, Logits: model.LogitsNone, Prompt: s.Prompt})
			used += n
			toks, pos = toks[n:], pos+n
		}
	}
	return flush()
}

// Row is one sequence to draft for.
type Row struct {
	// CatchUp are the tokens at positions Pos … Pos+len(CatchUp)-1 that the draft has
	// not computed yet; the last is the sequence's latest token (the one the target's
	// verification pass feeds). At least one.
	CatchUp []int32
	Pos     int
	Blocks  []int32 // the target's block table, reserved up to the drafts' positions
	N       int     // drafts wanted (>= 1)

	Params  sampling.Params // the request's sampling, Seed set
	Index   uint64          // draw number of the first draft (the request's tokens so far)
	History []int32         // what the penalties count (nil when Params does not penalize)
	// Mask, when set, is applied to the draft's logits of draw number index (the
	// request's EOS/stop suppression before min_tokens).
	Mask func(logits []float32, index uint64)

	// Results: the drafts and, for a sampling request, the distribution each was drawn
	// from (q[j] nil for a greedy one). Q's buffers are reused across calls.
	Drafts []int32
	Q      [][]float32
}

// Propose runs the draft for rows on ws: first the catch-up tokens (chunked to fit
// ws), whose last logits give each row's first draft, then one batched pass per
// further draft. Draft j of a row is computed at position Pos+len(CatchUp)-1+j and
// drawn with sampling.Sampler.DraftSample as draw number Index+j. The draft's KV is
// written at positions Pos … Pos+len(CatchUp)+N-2, which the caller has reserved.
func (d *Drafter) Propose(ws *model.Workspace, smp *sampling.Sampler, rows []*Row) error {
	if len(rows) > ws.MaxLogitRows {
		return fmt.Errorf("draft: %d rows for a workspace of %d logit rows", len(rows), ws.MaxLogitRows)
	}
	V := d.m.Config.VocabSize
	for _, r := range rows {
		if len(r.CatchUp) == 0 || r.N < 1 {
			return fmt.Errorf("draft: a row needs a token to feed and a draft to make (%d, %d)", len(r.CatchUp), r.N)
		}
		r.Drafts = r.Drafts[:0]
		for len(r.Q) < r.N {
			r.Q = append(r.Q, nil)
		}
	}
	var seqs []model.Seq
	var owners []*Row // the row of each logits row
	draw := func(r *Row, lg []float32) {
		j := len(r.Drafts)
		idx := r.Index + uint64(j)
		if r.Mask != nil {
			r.Mask(lg, idx)
		}
		hist := r.History
		if hist != nil && j > 0 {
			hist = append(hist[:len(hist):len(hist)], r.Drafts...)
		}
		tok, q := smp.DraftSample(r.Q[j][:0], lg, &r.Params, idx, hist)
		if q != nil {
			r.Q[j] = q
		} else {
			r.Q[j] = r.Q[j][:0]
		}
		r.Drafts = append(r.Drafts, tok)
	}
	run := func() error {
		logits, err := d.m.Forward(ws, d.kv, seqs)
		if err != nil {
			return fmt.Errorf("draft: %w", err)
		}
		for i, r := range owners {
			draw(r, logits[i*V:(i+1)*V])
		}
		seqs, owners = seqs[:0], owners[:0]
		return nil
	}

	// Catch-up passes: each row's pending tokens, in chunks that fit the workspace;
	// the pass holding a row's last token draws its first draft.
	done := make([]int, len(rows)) // catch-up tokens fed per row
	for {
		used, pending := 0, false
		for i, r := range rows {
			rest := len(r.CatchUp) - done[i]
			if rest == 0 {
				continue
			}
			pending = true
			n := min(rest, ws.MaxTokens-used)
			if n == 0 {
				continue
			}
			mode := model.LogitsNone
			if n == rest {
				mode = model.LogitsLast
				owners = append(owners, r)
			}
			seqs = append(seqs, model.Seq{Tokens: r.CatchUp[done[i] : done[i]+n], Pos: r.Pos + done[i], Blocks: r.Blocks, Logits: mode})
			done[i] += n
			used += n
		}
		if !pending {
			break
		}
		if err := run(); err != nil {
			return err
		}
	}
	// Further drafts, one token per row and pass.
	for j := 1; ; j++ {
		for _, r := range rows {
			if r.N > j {
				pos := r.Pos + len(r.CatchUp) - 1 + j
				seqs = append(seqs, model.Seq{Tokens: r.Drafts[j-1 : j], Pos: pos, Blocks: r.Blocks, Logits: model.LogitsLast})
				owners = append(owners, r)
			}
		}
		if len(seqs) == 0 {
			return nil
		}
		if err := run(); err != nil {
			return err
		}
	}
}

// CheckTokenizers refuses a draft whose tokenizer is not the target's: another
// vocabulary size (naming both) or another piece at some id (naming the first).
func CheckTokenizers(draft, target *tokenizer.Tokenizer) error {
	if draft.VocabSize() != target.VocabSize() {
		return fmt.Errorf("its vocabulary has %d tokens, the target's %d: a draft must share the target's tokenizer", draft.VocabSize(), target.VocabSize())
	}
	for id := int32(0); int(id) < target.VocabSize(); id++ {
		if a, b := draft.Piece(id), target.Piece(id); a != b {
			return fmt.Errorf("its tokenizer differs from the target's at id %d (%q, the target's %q)", id, a, b)
		}
	}
	return nil
}
