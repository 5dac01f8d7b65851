package servecmd

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/specdec"
)

func TestSpeculativeConfigFlag(t *testing.T) {
	o, err := parseFlags([]string{"--speculative-config", `{"method":"ngram","num_speculative_tokens":3,"prompt_lookup_max":4}`}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: 3, PromptLookupMax: 4, PromptLookupMin: 4}, o.speculative)
	o, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.False(t, o.speculative.Enabled())
	for in, want := range map[string]string{
		`{"method":"medusa","model":"m","num_speculative_tokens":3}`: `--speculative-config: speculative config: method "medusa" is not supported`,
		`{"method":"ngram"}`: "num_speculative_tokens must be in [1, 16]",
		`{"method":"ngram","num_speculative_tokens":2,"draft_tensor_parallel_size":1}`: `field "draft_tensor_parallel_size" is not supported`,
		`ngram`: "want a JSON object",
	} {
		_, err := parseFlags([]string{"--speculative-config", in}, io.Discard)
		require.ErrorContains(t, err, want, in)
	}
}

// TestOpenDraft: the draft loads on the target's backend in the format asked for, and
// one with another vocabulary is refused at start-up naming both sizes.
func TestOpenDraft(t *testing.T) {
	be := cpu.New(cpu.Options{})
	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	target, err := llm.Open(path, "", be, model.Options{})
	require.NoError(t, err)
	defer target.Close()
	open := func(model, quant string) (*llm.Loaded, error) {
		o := &options{offline: true, speculative: specdec.Config{Method: specdec.MethodDraftModel, Model: model, NumSpeculativeTokens: 2, Quantization: quant}}
		return openDraft(context.Background(), o, target.Options, be, target, zap.NewNop(), io.Discard)
	}
	d, err := open(path, "int8")
	require.NoError(t, err)
	require.Equal(t, "int8", d.Options.Weights.String())
	require.Same(t, be, d.Backend())
	d.Close()
	_, err = open("synthetic:tiny", "")
	require.ErrorContains(t, err, "its vocabulary has 259 tokens, the target's 512")
	none, err := openDraft(context.Background(), &options{}, target.Options, be, target, zap.NewNop(), io.Discard)
	require.NoError(t, err)
	require.Nil(t, none)
}
