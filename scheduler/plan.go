package scheduler

// DecodeItem asks for NumSteps decode steps of one running request. Step j
// (0-based) feeds the token at position Pos+j — Tokens()[Pos] for j = 0, then
// each freshly sampled token — and writes its KV into the slot of position
// Pos+j in BlockTable (block (Pos+j)/BlockSize, offset (Pos+j)%BlockSize). The
// scheduler has already reserved the blocks for all NumSteps positions.
//
// Lookahead > 0 makes the item a verification pass (NumSteps is then 1): the pass
// feeds Tokens()[Pos] and up to Lookahead drafted tokens at positions Pos+1 …
// Pos+Lookahead, whose slots are reserved as well, and yields the accepted drafts
// followed by one sampled token.
type DecodeItem struct {
	Req        *Request
	NumSteps   int
	Pos        int
	BlockTable []int32
	Lookahead  int
}

// PrefillItem asks for the KV of Tokens()[Start:End] of one request, on top of
// the KV already in BlockTable for positions < Start. When End equals
// len(Tokens()) the chunk completes the sequence and the engine samples one
// token from the logits of position End-1.
type PrefillItem struct {
	Req        *Request
	Start, End int
	BlockTable []int32
}

// Complete reports whether this chunk finishes the request's prefill (so one
// token is sampled from it).
func (it PrefillItem) Complete() bool { return it.End == len(it.Req.tokens) }

// PrefillGroup is one prefill forward pass, to run on prefill lane Lane.
type PrefillGroup struct {
	Lane  int
	Items []PrefillItem
}

// Plan is one scheduler step. Decode is one forward pass (or NumSteps passes on
// the device); each PrefillGroup is another, on its own lane; groups are
// independent of each other and of the decode group. The Plan and every slice
// in it are owned by the scheduler and valid until Commit.
type Plan struct {
	ID      uint64
	Decode  []DecodeItem
	Prefill []PrefillGroup
	// NumTokens is what the plan charges against MaxNumBatchedTokens: one per
	// decode sequence (per forward pass), every drafted position, and every prefill
	// token.
	NumTokens int
	// NumLookahead counts the drafted positions of the decode items.
	NumLookahead int
	// NumPrefillTokens counts the prefill tokens alone.
	NumPrefillTokens int
}

// Empty reports whether the plan has no work.
func (p *Plan) Empty() bool { return len(p.Decode) == 0 && len(p.Prefill) == 0 }

// NumSeqs is the number of requests in the plan.
func (p *Plan) NumSeqs() int {
	n := len(p.Decode)
	for _, g := range p.Prefill {
		n += len(g.Items)
	}
	return n
}

// Result is the engine's outcome of one plan item.
//
// For a decode item: the tokens sampled, 1..NumSteps (fewer when the request
// finished early; overshoot already dropped); for a verification pass, the accepted
// drafts and then the sampled token, 1..Lookahead+1 (the scheduler then releases the
// blocks reserved for rejected drafts). For a prefill chunk that
// completes the sequence: exactly one token. For a partial prefill chunk: no
// tokens (and no Result is needed). Finish, when set (FinishedStop,
// FinishedLength or Aborted), ends the request after Tokens are appended.
//
// Lookahead is how many drafted positions the request wants verified in its next
// decode step (0..Config.SpecTokens): the engine's proposer knows it once the
// request has its latest token. The scheduler grants what the step leaves room for.
type Result struct {
	Req       *Request
	Tokens    []int32
	Finish    FinishReason
	Lookahead int
}
