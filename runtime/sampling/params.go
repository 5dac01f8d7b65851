package sampling

import (
	"errors"
	"fmt"
	"math"
)

// Params are the per-request sampling parameters.
//
// The zero value is NOT valid (TopP and RepetitionPenalty must be positive); start
// from DefaultParams. Sample does not call Validate: validate once per request.
type Params struct {
	// Temperature divides the logits before the softmax; 0 selects greedy decoding.
	Temperature float32 `json:"temperature"`
	// TopK keeps only the TopK most likely tokens; 0 disables it.
	TopK int `json:"top_k"`
	// TopP keeps the smallest most-likely prefix whose probability mass is >= TopP;
	// 1 disables it. Must be in (0, 1].
	TopP float32 `json:"top_p"`
	// MinP keeps only tokens whose probability is >= MinP times that of the most
	// likely token; 0 disables it. Must be in [0, 1].
	MinP float32 `json:"min_p"`
	// RepetitionPenalty is the CTRL-style penalty (1 disables it). Must be > 0.
	RepetitionPenalty float32 `json:"repetition_penalty"`
	// PresencePenalty is subtracted once from the logit of every token in the history.
	PresencePenalty float32 `json:"presence_penalty"`
	// FrequencyPenalty is multiplied by a token's count in the history and subtracted.
	FrequencyPenalty float32 `json:"frequency_penalty"`
	// Seed keys the Philox generator (see Uniform).
	Seed uint64 `json:"seed"`
}

// DefaultParams returns plain sampling at temperature 1 with every filter and
// penalty disabled.
func DefaultParams() Params {
	return Params{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
}

// Greedy reports whether the parameters select greedy (argmax) decoding.
func (p *Params) Greedy() bool { return p.Temperature == 0 }

// Validate reports every invalid field, joined into one error (nil if all are valid).
func (p *Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sampling: "+format, args...))
	}
	finite := func(name string, v float32) bool {
		switch {
		case v != v:
			bad("%s is NaN", name)
		case math.IsInf(float64(v), 0):
			bad("%s must be finite, got %v", name, v)
		default:
			return true
		}
		return false
	}
	if finite("temperature", p.Temperature) && p.Temperature < 0 {
		bad("temperature must be >= 0, got %v", p.Temperature)
	}
	if p.TopK < 0 {
		bad("top_k must be >= 0 (0 disables it), got %d", p.TopK)
	}
	if p.TopP != p.TopP {
		bad("top_p is NaN")
	} else if !(p.TopP > 0 && p.TopP <= 1) {
		bad("top_p must be in (0, 1] (1 disables it), got %v", p.TopP)
	}
	if p.MinP != p.MinP {
		bad("min_p is NaN")
	} else if !(p.MinP >= 0 && p.MinP <= 1) {
		bad("min_p must be in [0, 1] (0 disables it), got %v", p.MinP)
	}
	if finite("repetition_penalty", p.RepetitionPenalty) && p.RepetitionPenalty <= 0 {
		bad("repetition_penalty must be > 0 (1 disables it), got %v", p.RepetitionPenalty)
	}
	finite("presence_penalty", p.PresencePenalty)
	finite("frequency_penalty", p.FrequencyPenalty)
	return errors.Join(errs...)
}
