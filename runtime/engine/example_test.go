package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// Stream a completion from the built-in synthetic model (swap in a GGUF or llama2.c
// path for real text).
func Example() {
	m, err := llm.Open("synthetic:tiny", "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsAuto})
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
	seed := uint64(1)
	events, err := eng.Submit(context.Background(), &engine.Request{
		Prompt:    prompt,
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

// TestDocExampleRuns: the code in the package documentation is the Example's, line
// for line, so it compiles and runs (go test runs the Example and checks its Output).
func TestDocExampleRuns(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	var code []string
	for _, line := range strings.Split(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			code = append(code, "\t"+rest)
		} else if len(code) > 0 && line == "//" {
			code = append(code, "")
		} else if len(code) > 0 {
			break
		}
	}
	require.Greater(t, len(code), 15)
	for len(code) > 0 && code[len(code)-1] == "" {
		code = code[:len(code)-1]
	}
	require.Contains(t, string(src), "func Example() {\n"+strings.Join(code, "\n")+"\n")
}

// Constrain the output to a JSON Schema: every step's logits are masked to the tokens
// that keep the output valid, so even random weights produce a parsable object that
// ends by end-of-sequence within MaxTokens. Compile a schema once and reuse the
// *grammar.Grammar across requests (its per-vocabulary tables are built on first use).
func Example_constrained() {
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

	schema, err := grammar.JSONSchema([]byte(`{
		"type": "object",
		"properties": {"answer": {"enum": ["yes", "no"]}, "confidence": {"type": "integer", "minimum": 0, "maximum": 100}},
		"required": ["answer", "confidence"],
		"additionalProperties": false
	}`), grammar.Options{NoWhitespace: true})
	if err != nil {
		panic(err) // a *grammar.SchemaError names the keyword it cannot enforce
	}
	prompt := m.Tokenizer.Encode("Is the sky blue?", m.Tokenizer.DefaultOptions())
	events, err := eng.Submit(context.Background(), &engine.Request{
		Prompt:     prompt,
		MaxTokens:  64,
		Sampling:   sampling.Params{TopP: 1, RepetitionPenalty: 1}, // greedy
		Constraint: schema,
	})
	if err != nil {
		panic(err)
	}
	var text string
	for ev := range events {
		text += ev.Text
		if ev.Finish != "" {
			var v struct {
				Answer     string
				Confidence int
			}
			err := json.Unmarshal([]byte(text), &v)
			fmt.Printf("finish %q, parses: %v, answer in {yes, no}: %v\n", ev.Finish, err == nil, v.Answer == "yes" || v.Answer == "no")
		}
	}
	// Output: finish "stop", parses: true, answer in {yes, no}: true
}
