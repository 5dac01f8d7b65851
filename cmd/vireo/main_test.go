package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

func TestGreedyMatchesGolden(t *testing.T) {
	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	var out, errOut bytes.Buffer
	err := run([]string{"-model", path, "-prompt", "Once upon a time", "-temperature", "0", "-max-tokens", "30", "-weights", "f32", "-quiet"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	require.True(t, strings.HasPrefix(out.String(), "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."), out.String())
	require.Contains(t, errOut.String(), "tokens/s")
}

func TestChatFlag(t *testing.T) {
	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	var out, errOut bytes.Buffer
	// stories260K has no chat template: the plain fallback "user: ...\nassistant: ".
	require.NoError(t, run([]string{"-model", path, "-chat", "-prompt", "Hi", "-max-tokens", "4", "-quiet", "-ignore-eos"}, &out, &errOut))
	require.NotContains(t, out.String(), "Hi", "the chat prompt is not echoed")
	m, err := llm.Open(path, "", cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	defer m.Close()
	ids, _, err := m.ChatPrompt([]chattemplate.Message{{Role: "user", Content: "Hi"}}, true)
	require.NoError(t, err)
	require.Contains(t, errOut.String(), fmt.Sprintf("prompt: %d tokens", len(ids)))
}

func TestSyntheticDefault(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"-max-tokens", "5", "-ignore-eos"}, &out, &errOut))
	require.Contains(t, errOut.String(), "synthetic model")
	require.Contains(t, errOut.String(), "generated: 5 tokens")
}

func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-weights", "int4"}, "-weights must be int8 or f32"},
		{[]string{"-device", "cuda"}, "built without CUDA"},
		{[]string{"-max-tokens", "-1"}, "-max-tokens must be >= 0"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-temperature", "-1"}, "temperature"},
		{[]string{"-model", "/nonexistent/model.gguf"}, "/nonexistent/model.gguf"},
		{[]string{"-model", "synthetic:nope"}, `unknown synthetic model "synthetic:nope"`},
	} {
		var out, errOut bytes.Buffer
		err := run(c.args, &out, &errOut)
		require.Error(t, err, "%v", c.args)
		require.Contains(t, err.Error(), c.want, "%v", c.args)
	}
}
