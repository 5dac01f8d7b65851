package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

// TestRunLoRA: `vireo run -lora` (llama.cpp's --lora) generates what the engine
// generates for the same adapter (whose products equal the merged weights: see
// runtime/model's TestLoRAEqualsMerged) — for a PEFT directory and a GGUF adapter — and
// without it what the engine generates for the base model; a file that is not an
// adapter for the model is a clear error.
func TestRunLoRA(t *testing.T) {
	path := stories(t)
	m, err := llm.Open(path, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	defer m.Close()
	c := m.Model.Config
	dir := t.TempDir()
	peft, gguf := filepath.Join(dir, "poet"), filepath.Join(dir, "teller.gguf")
	_, err = loratest.WritePEFT(peft, &c, loratest.Options{Rank: 8, Seed: 31, Amp: 0.2}, nil)
	require.NoError(t, err)
	_, err = loratest.WriteGGUF(gguf, &c, loratest.Options{Rank: 4, Alpha: 8, RSLoRA: true, Seed: 32, Amp: 0.2})
	require.NoError(t, err)

	e, err := engine.New(m.Model, m.Tokenizer, engine.Options{NumBlocks: 64, LoRA: engine.LoRAOptions{MaxLoRAs: 1, MaxRank: 16}})
	require.NoError(t, err)
	defer e.Close()
	for name, p := range map[string]string{"poet": peft, "teller": gguf} {
		_, err := e.LoadAdapter(name, lora.Source{Path: p}, false)
		require.NoError(t, err)
	}
	const prompt, n = "Once upon a time", 40
	ids := m.Tokenizer.Encode(prompt, m.Tokenizer.DefaultOptions())
	want := func(adapter string) string {
		events, err := e.Submit(context.Background(), &engine.Request{Prompt: ids, MaxTokens: n, IgnoreEOS: true,
			Sampling: sampling.Params{TopP: 1, RepetitionPenalty: 1}, Adapter: adapter})
		require.NoError(t, err)
		var b strings.Builder
		for ev := range events {
			require.NoError(t, ev.Err)
			b.WriteString(ev.Text)
		}
		return b.String()
	}
	got := func(extra ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(append([]string{"run", path, prompt, "-temperature", "0", "-max-tokens", "40", "-ignore-eos", "-quiet"}, extra...), &out, &errOut)
		return out.String(), errOut.String(), err
	}
	base := want("")
	out, _, err := got()
	require.NoError(t, err)
	require.Equal(t, prompt+base, strings.TrimSuffix(out, "\n"), "the base model: vireo run and the engine agree")
	for name, p := range map[string]string{"poet": peft, "teller": gguf} {
		out, stderr, err := got("-lora", p)
		require.NoError(t, err, stderr)
		w := want(name)
		require.NotEqual(t, base, w, "the adapter must change the text for this test to mean anything")
		require.Equal(t, prompt+w, strings.TrimSuffix(out, "\n"), name)
	}

	notes := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notes, []byte("hello"), 0o644))
	_, _, err = got("-lora", notes)
	require.ErrorContains(t, err, "-lora: ")
	require.ErrorContains(t, err, "neither a PEFT adapter directory nor a GGUF adapter")
	other := c
	other.Dim *= 2
	bad := filepath.Join(dir, "other")
	_, err = loratest.WritePEFT(bad, &other, loratest.Options{Rank: 2}, nil)
	require.NoError(t, err)
	_, _, err = got("-lora", bad)
	require.ErrorContains(t, err, "q_proj")
}
