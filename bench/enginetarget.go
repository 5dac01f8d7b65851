package bench

import (
	"context"
	"errors"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// EngineTarget submits requests to an in-process engine: the same measurements
// without HTTP, and the way to compare engine configurations on one machine. It times
// tokens as the engine emits them (there are no chunks to look at); HTTPTarget times
// chunks with visible text, so a token whose text is held back (part of a UTF-8
// character) arrives here earlier than over HTTP.
type EngineTarget struct {
	Engine *engine.Engine
}

// Generate implements Target.
func (t *EngineTarget) Generate(ctx context.Context, r GenRequest, onTokens func(n int)) (Usage, error) {
	ids := r.Prompt.IDs
	if ids == nil {
		tok := t.Engine.Tokenizer()
		ids = tok.Encode(r.Prompt.Text, tok.DefaultOptions())
	}
	seed := r.Seed
	req := &engine.Request{Prompt: ids, MaxTokens: r.MaxTokens, MinTokens: r.MinTokens, IgnoreEOS: r.IgnoreEOS, Seed: &seed,
		Sampling: sampling.Params{Temperature: float32(r.Temperature), TopP: 1, RepetitionPenalty: 1}}
	events, err := t.Engine.Submit(ctx, req)
	if err != nil {
		if errors.Is(err, engine.ErrQueueFull) {
			return Usage{}, &StreamError{Kind: KindQueueFull, Message: err.Error()}
		}
		return Usage{}, &StreamError{Kind: KindEngine, Message: err.Error()}
	}
	var u Usage
	var fail error
	for ev := range events {
		if ev.HasToken {
			onTokens(1)
		}
		if ev.Usage != nil {
			u = Usage{PromptTokens: ev.Usage.PromptTokens, CompletionTokens: ev.Usage.CompletionTokens}
		}
		switch ev.Finish {
		case engine.FinishError:
			fail = &StreamError{Kind: KindEngine, Message: errString(ev.Err)}
		case engine.FinishAbort, engine.FinishDeadline:
			if ctx.Err() != nil {
				fail = ctx.Err()
			} else {
				fail = &StreamError{Kind: KindEngine, Message: "aborted: " + string(ev.Finish)}
			}
		}
	}
	if fail == nil && ctx.Err() != nil {
		fail = ctx.Err()
	}
	return u, fail
}

func errString(err error) string {
	if err == nil {
		return "unknown engine error"
	}
	return err.Error()
}
