package scheduler

import "time"

// FinishReason is why a request ended.
type FinishReason uint8

const (
	NotFinished    FinishReason = iota
	FinishedStop                // EOS or a stop string (engine decides)
	FinishedLength              // max new tokens, or the model/pool length cap
	Aborted                     // Cancel, or the engine aborted it
	Deadline                    // its deadline passed (Step/Expire)
	Rejected                    // can never be served; refused at Add
)

func (f FinishReason) String() string {
	switch f {
	case NotFinished:
		return "running"
	case FinishedStop:
		return "finished_stop"
	case FinishedLength:
		return "finished_length"
	case Aborted:
		return "aborted"
	case Deadline:
		return "deadline"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

type reqState uint8

const (
	stateWaiting reqState = iota
	statePrefill          // running, prompt (or re-prefill) not fully computed
	stateDecode           // running, generating
	stateFinished
)

// NewRequest is what the engine hands to Add.
type NewRequest struct {
	ID           string
	Prompt       []int32   // token ids; copied
	MaxNewTokens int       // >= 1
	Deadline     time.Time // zero: none
	// Adapter identifies the LoRA adapter the request runs with (0: the base model):
	// with Config.MaxAdapters, at most that many distinct non-zero adapters run at once.
	Adapter uint64
	// CacheSalt roots the request's prefix-cache chain: blocks are shared only between
	// requests of equal salt (the engine gives each loaded adapter its own; 0 for the
	// base model), since the same tokens under another adapter have other KV.
	CacheSalt uint64
}

// Request is the scheduler's view of one request. The engine reads it through
// the accessors; the slices they return are owned by the scheduler and valid
// until the next Schedule/Commit/Cancel/Step call.
type Request struct {
	id       string
	nPrompt  int
	tokens   []int32 // prompt + generated
	maxNew   int     // clamped to the length cap
	deadline time.Time
	arrival  uint64
	adapter  uint64 // NewRequest.Adapter
	salt     uint64 // NewRequest.CacheSalt: the parent hash of the first block

	state  reqState
	finish FinishReason

	blocks      []int32
	numComputed int      // tokens whose KV is in blocks
	hashes      []uint64 // chain hashes of the first len(hashes) full blocks
	numReg      int      // full blocks registered (or found duplicate)
	regBroken   bool     // a hash collision stopped registration
	long        bool
	want        int // drafted positions wanted in the next decode step (Result.Lookahead)

	// plan bookkeeping
	planID  uint64 // plan it is scheduled in (0: none)
	planIdx int    // index in that plan's decode or flat prefill list
	resID   uint64 // plan ID of the result seen in Commit (dedup)
	resIdx  int

	preemptions int
	roomWaits   int // steps at the head of the queue with room but not admitted
}

// ID is the caller's request id.
func (r *Request) ID() string { return r.id }

// Prompt is the prompt's token ids.
func (r *Request) Prompt() []int32 { return r.tokens[:r.nPrompt:r.nPrompt] }

// Output is the generated token ids so far (kept across preemptions).
func (r *Request) Output() []int32 { return r.tokens[r.nPrompt:len(r.tokens):len(r.tokens)] }

// Tokens is the full sequence: prompt followed by the generated tokens. Plan
// token ranges index into it.
func (r *Request) Tokens() []int32 { return r.tokens[:len(r.tokens):len(r.tokens)] }

// MaxNewTokens is the effective generation cap (the requested one, clamped so
// that prompt+output fits the model length and the pool).
func (r *Request) MaxNewTokens() int { return r.maxNew }

// Adapter is the request's NewRequest.Adapter.
func (r *Request) Adapter() uint64 { return r.adapter }

// NumComputed is how many tokens of Tokens() have KV in the cache.
func (r *Request) NumComputed() int { return r.numComputed }

// Finish is why the request ended (NotFinished while it runs or waits).
func (r *Request) Finish() FinishReason { return r.finish }

// Finished reports whether the request has ended.
func (r *Request) Finished() bool { return r.state == stateFinished }

// Preemptions is how many times the request was preempted.
func (r *Request) Preemptions() int { return r.preemptions }

func (r *Request) remaining() int { return r.maxNew - (len(r.tokens) - r.nPrompt) }
