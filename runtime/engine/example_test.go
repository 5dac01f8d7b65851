package engine_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
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
