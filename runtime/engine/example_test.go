package engine_test

import (
	"context"
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// Stream a completion from the built-in synthetic model (swap in a GGUF or llama2.c
// path for real text).
func Example() {
	m, err := llm.Open("synthetic:tiny", "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsInt8})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close()

	prompt := m.Tokenizer.Encode("Once upon a time", m.Tokenizer.DefaultOptions())
	ids := make([]int32, len(prompt))
	for i, id := range prompt {
		ids[i] = int32(id)
	}
	seed := uint64(1)
	events, err := eng.Submit(context.Background(), &engine.Request{
		Prompt:    ids,
		MaxTokens: 8,
		IgnoreEOS: true,
		Seed:      &seed,
		Sampling:  sampling.Params{Temperature: 0.8, TopP: 0.95, RepetitionPenalty: 1},
	})
	if err != nil {
		panic(err)
	}
	tokens := 0
	for ev := range events {
		if ev.HasToken {
			tokens++
		}
		if ev.Finish != "" {
			fmt.Printf("%d tokens, finish %q, usage %+v\n", tokens, ev.Finish, *ev.Usage)
		}
	}
	// Output: 8 tokens, finish "length", usage {PromptTokens:17 CompletionTokens:8}
}
