package engine

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/specdec"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/scheduler"
)

// completion is one of a request's N sequences as the engine tracks it.
type completion struct {
	req     *Request
	ctx     context.Context
	out     *outbox
	index   int
	id      string             // scheduler id
	sreq    *scheduler.Request // nil while deferred behind leader
	leader  *completion        // the first completion of the request, while deferred
	seed    uint64
	stream  *tokenizer.Stream
	pending string // decoded text held back: it may start a stop string
	history []int32
	made    int // tokens generated (delivered or held)
	done    bool
	// queued: when Submit took the request; scheduled: when the completion first
	// entered a step (zero until then).
	queued, scheduled time.Time
	// hostNext: the device sampler refused this completion's last position; its next
	// token is sampled on the host (eager decode), then the device may take it again.
	hostNext bool
	matcher  *grammar.Matcher // the request's constraint, nil when unconstrained
	adapter  *adapterEntry    // the request's LoRA adapter, nil for the base model
	err      error            // why the completion failed (with FinishError)
	// Speculative decoding: prompt lookup's proposal for the next step; how many
	// positions the draft model has computed; the draft's scratch.
	proposal []int32
	draftPos int
	row      *specdec.Row
}

// maskLogits applies what the request forbids before sampling: end-of-sequence and
// stop tokens before MinTokens.
func (c *completion) maskLogits(logits []float32, eos []int32) { c.maskLogitsAt(logits, eos, c.made) }

// maskLogitsAt is maskLogits for the completion's token number made (a draft model
// drafting ahead).
func (c *completion) maskLogitsAt(logits []float32, eos []int32, made int) {
	if made >= c.req.MinTokens {
		return
	}
	inf := float32(math.Inf(-1))
	if !c.req.IgnoreEOS {
		for _, id := range eos {
			logits[id] = inf
		}
	}
	for _, id := range c.req.StopTokenIDs {
		logits[id] = inf
	}
}

// accept takes a sampled token: it produces the token's event and says whether the
// completion is finished (and why). logits are the raw model logits for logprobs.
func (e *Engine) accept(c *completion, tok int32, logits []float32, lp *lane, now time.Time) (ev Event, fin FinishReason) {
	c.made++
	c.history = append(c.history, tok)
	ev = Event{Index: c.index, Token: tok, HasToken: true, Time: now}
	if c.req.Logprobs || c.req.TopLogprobs > 0 {
		ev.Logprob, ev.TopLogprobs = lp.logprobs(logits, tok, c.req.TopLogprobs)
	}
	stopTok := !c.req.IgnoreEOS && slices.Contains(e.opt.EOSIDs, tok)
	for _, id := range c.req.StopTokenIDs {
		stopTok = stopTok || tok == id
	}
	if stopTok {
		ev.Text = c.pending + c.stream.Flush()
		c.pending = ""
		return ev, FinishStop
	}
	c.pending += c.stream.Add(tok)
	if len(c.req.Stop) > 0 {
		if i, _ := firstStop(c.pending, c.req.Stop); i >= 0 {
			ev.Text = c.pending[:i]
			c.pending = ""
			return ev, FinishStop
		}
	}
	if c.made >= c.req.MaxTokens {
		ev.Text = c.pending + c.stream.Flush()
		c.pending = ""
		return ev, FinishLength
	}
	hold := stopPrefixLen(c.pending, c.req.Stop)
	ev.Text = c.pending[:len(c.pending)-hold]
	c.pending = c.pending[len(c.pending)-hold:]
	return ev, ""
}

// firstStop returns the earliest match of any stop string in s.
func firstStop(s string, stops []string) (int, string) {
	best, which := -1, ""
	for _, st := range stops {
		if i := strings.Index(s, st); i >= 0 && (best < 0 || i < best) {
			best, which = i, st
		}
	}
	return best, which
}

// stopPrefixLen is the length of the longest suffix of s that begins a stop string:
// that text must wait for the next token.
func stopPrefixLen(s string, stops []string) int {
	hold := 0
	for _, st := range stops {
		for n := min(len(st)-1, len(s)); n > hold; n-- {
			if strings.HasSuffix(s, st[:n]) {
				hold = n
				break
			}
		}
	}
	return hold
}

// lane is one forward-pass worker: a workspace on its own stream and sampling scratch.
type lane struct {
	ws      *model.Workspace
	dws     *model.Workspace // a draft model's workspace on the same stream (prefill lanes)
	stream  backend.Stream   // ws's stream
	waits   []backend.Event  // scratch of fences.wait
	sampler sampling.Sampler
	lsm     []float32
	gmask   []uint64  // constraint mask scratch
	cids    []int32   // allowed ids of a compact constrained row
	cvals   []float32 // their logits
	cpos    []int32   // id → position in cids (-1 elsewhere), for the history
	chist   []int32   // history mapped to positions
	// prof and dprof time the passes on ws and dws (Options.Profiler; nil without one).
	prof, dprof *profiling.Lane
}

func (l *lane) logprobs(logits []float32, tok int32, k int) (float32, []sampling.TokenLogprob) {
	if cap(l.lsm) < len(logits) {
		l.lsm = make([]float32, len(logits))
	}
	l.lsm = l.lsm[:len(logits)]
	sampling.LogSoftmax(l.lsm, logits)
	var top []sampling.TokenLogprob
	if k > 0 {
		top = sampling.TopLogprobs(logits, k, make([]sampling.TokenLogprob, 0, k))
	}
	return l.lsm[tok], top
}
