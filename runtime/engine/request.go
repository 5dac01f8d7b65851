package engine

import (
	"errors"
	"fmt"
	"time"

	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// Request is one prompt to complete, N times.
type Request struct {
	ID           string          // optional; the engine assigns one when empty
	Prompt       []int32         // token ids, BOS included if the model wants one
	MaxTokens    int             // most tokens to generate per completion (>= 1)
	MinTokens    int             // EOS and stop token ids are suppressed before this many
	Sampling     sampling.Params // zero Temperature is greedy
	Seed         *uint64         // nil: a random seed per request
	Stop         []string        // stop strings: the text ends before the first match
	StopTokenIDs []int32         // tokens that end a completion (besides EOS)
	IgnoreEOS    bool            // keep generating past EOS
	N            int             // completions (default 1); they share the prompt's blocks via the prefix cache
	Logprobs     bool            // report each token's log-probability
	TopLogprobs  int             // and the top alternatives (0..20)
	Deadline     time.Time       // zero: none
	// Constraint, when set, restricts the output to its language (JSON Schema, regex,
	// choice: see package grammar): each step's logits are masked to the tokens that
	// keep the output valid before sampling (temperature, top-k/p, min-p and penalties
	// act within that set), end-of-sequence is allowed only where the output is
	// complete, and the mask keeps the output finishable within MaxTokens (see
	// grammar.Matcher). Incompatible with IgnoreEOS. Stop token ids that are not
	// end-of-sequence ids cannot be sampled under a constraint; MinTokens holds unless
	// the constrained output is complete earlier (then end-of-sequence is allowed).
	Constraint *grammar.Grammar
	// Class is the request's class in op profiles (runtime/profiling's class label:
	// e.g. "interactive", "batch"; the server sets "chat" or "completion"): at most
	// MaxClassLen bytes of letters, digits and ._:- ; "" is none.
	Class string
	// Adapter names a LoRA adapter registered with Engine.LoadAdapter that the request
	// runs with ("": the base model). The request holds it until its last event, so
	// unloading it meanwhile does not disturb the request.
	Adapter string
}

// MaxClassLen bounds Request.Class.
const MaxClassLen = 32

// validClass reports whether s is a valid Request.Class.
func validClass(s string) bool {
	if len(s) > MaxClassLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// FinishReason says why a completion ended (OpenAI's names where they exist).
type FinishReason string

const (
	FinishStop     FinishReason = "stop"     // EOS, a stop token or a stop string
	FinishLength   FinishReason = "length"   // max tokens or the context
	FinishAbort    FinishReason = "abort"    // cancelled
	FinishDeadline FinishReason = "deadline" // the request's deadline passed
	FinishError    FinishReason = "error"    // the backend failed; Event.Err says why
)

// Usage counts a completion's tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Timing says when a completion went through the engine's phases, for metrics
// (vLLM's queue and prefill times): Queued is when Submit took the request,
// Scheduled when the completion first entered a step (zero when it never did).
type Timing struct {
	Queued, Scheduled time.Time
}

// Event is one step of one completion: a token with its text delta, and on the last
// event the finish reason and usage. Text may be empty while it is held back (an
// incomplete UTF-8 character, or a possible start of a stop string).
type Event struct {
	Index       int   // which of the request's N completions
	Token       int32 // valid when HasToken
	HasToken    bool
	Text        string
	Logprob     float32                 // when Request.Logprobs
	TopLogprobs []sampling.TokenLogprob // when Request.TopLogprobs > 0
	Finish      FinishReason            // "" until the completion's last event
	Usage       *Usage                  // on the last event
	Timing      *Timing                 // on the last event
	Err         error                   // with FinishError
	Time        time.Time               // when the engine produced it
}

// Errors Submit returns.
var (
	ErrClosed    = errors.New("engine: closed")
	ErrQueueFull = errors.New("engine: waiting queue full")
	ErrInvalid   = errors.New("engine: invalid request")
)

// MaxTopLogprobs bounds Request.TopLogprobs.
const MaxTopLogprobs = 20

func (r *Request) validate(vocab, maxModelLen int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case len(r.Prompt) == 0:
		return bad("empty prompt")
	case len(r.Prompt) >= maxModelLen:
		return bad("prompt of %d tokens does not fit the maximum model length of %d (one token must be left to generate)", len(r.Prompt), maxModelLen)
	case r.MaxTokens < 1:
		return bad("max_tokens must be at least 1, got %d", r.MaxTokens)
	case r.MinTokens < 0 || r.MinTokens > r.MaxTokens:
		return bad("min_tokens %d must be in [0, max_tokens=%d]", r.MinTokens, r.MaxTokens)
	case r.N < 0 || r.N > 128:
		return bad("n must be in [1, 128], got %d", r.N)
	case r.TopLogprobs < 0 || r.TopLogprobs > MaxTopLogprobs:
		return bad("top_logprobs must be in [0, %d], got %d", MaxTopLogprobs, r.TopLogprobs)
	case !validClass(r.Class):
		return bad("class %.40q: want at most %d bytes of letters, digits and ._:-", r.Class, MaxClassLen)
	}
	for _, id := range r.Prompt {
		if id < 0 || int(id) >= vocab {
			return bad("prompt token id %d outside the vocabulary of %d", id, vocab)
		}
	}
	for _, id := range r.StopTokenIDs {
		if id < 0 || int(id) >= vocab {
			return bad("stop token id %d outside the vocabulary of %d", id, vocab)
		}
	}
	for _, s := range r.Stop {
		if s == "" {
			return bad("empty stop string")
		}
	}
	if r.Constraint != nil && r.IgnoreEOS {
		return bad("a constraint (structured output) cannot be combined with ignore_eos: the output must end where the constraint is satisfied")
	}
	if err := r.Sampling.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}
