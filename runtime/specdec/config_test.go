package specdec

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Config
	}{
		{`{"method":"ngram","num_speculative_tokens":3}`, Config{Method: MethodNGram, NumSpeculativeTokens: 3, PromptLookupMax: 5, PromptLookupMin: 5}},
		{`{"method":"ngram","num_speculative_tokens":3,"prompt_lookup_max":4}`, Config{Method: MethodNGram, NumSpeculativeTokens: 3, PromptLookupMax: 4, PromptLookupMin: 4}},
		{`{"method":"ngram","num_speculative_tokens":5,"prompt_lookup_max":4,"prompt_lookup_min":2}`, Config{Method: MethodNGram, NumSpeculativeTokens: 5, PromptLookupMax: 4, PromptLookupMin: 2}},
		{`{"model":"[ngram]","num_speculative_tokens":1,"prompt_lookup_min":2}`, Config{Method: MethodNGram, NumSpeculativeTokens: 1, PromptLookupMax: 2, PromptLookupMin: 2}},
		{` {"method":"draft_model","model":"a.gguf","num_speculative_tokens":4} `, Config{Method: MethodDraftModel, Model: "a.gguf", NumSpeculativeTokens: 4}},
		{`{"model":"org/name","num_speculative_tokens":2,"quantization":"int8"}`, Config{Method: MethodDraftModel, Model: "org/name", NumSpeculativeTokens: 2, Quantization: "int8"}},
	} {
		got, err := Parse(c.in)
		require.NoError(t, err, c.in)
		require.Equal(t, c.want, got, c.in)
		again, err := Parse(got.String())
		require.NoError(t, err)
		require.Equal(t, got, again, "String round-trips")
	}
	for _, c := range []struct{ in, want string }{
		{``, "want a JSON object"},
		{`[1]`, "want a JSON object"},
		{`{}`, "needs a method"},
		{`null`, "needs a method"},
		{`{"num_speculative_tokens":3}`, "without a method"},
		{`{"method":"eagle","model":"x","num_speculative_tokens":3}`, `method "eagle" is not supported`},
		{`{"method":"ngram"}`, "num_speculative_tokens must be in [1, 16], got 0"},
		{`{"method":"ngram","num_speculative_tokens":17}`, "got 17"},
		{`{"method":"ngram","num_speculative_tokens":2,"prompt_lookup_min":4,"prompt_lookup_max":3}`, "prompt_lookup_min=4 must be <= prompt_lookup_max=3"},
		{`{"method":"ngram","num_speculative_tokens":2,"prompt_lookup_max":-1}`, "must be positive"},
		{`{"method":"ngram","model":"x","num_speculative_tokens":2}`, "takes no model"},
		{`{"method":"draft_model","num_speculative_tokens":2}`, "needs a model"},
		{`{"method":"draft_model","model":"x","num_speculative_tokens":2,"prompt_lookup_max":3}`, "ngram only"},
		{`{"method":"draft_model","model":"x","num_speculative_tokens":2,"quantization":"awq"}`, `quantization "awq"`},
		{`{"method":"ngram","num_speculative_tokens":2,"disable_by_batch_size":4}`, `field "disable_by_batch_size" is not supported`},
		{`{"method":"ngram","num_speculative_tokens":"3"}`, "cannot unmarshal"},
		{`{"method":"ngram","num_speculative_tokens":3} {}`, "trailing data"},
	} {
		_, err := Parse(c.in)
		require.ErrorContains(t, err, c.want, c.in)
	}
	var off Config
	require.NoError(t, off.Normalize())
	require.False(t, off.Enabled())
}

func TestCheckTokenizers(t *testing.T) {
	vocab := func(n int, rename map[int]string) *tokenizer.Tokenizer {
		v := &tokenizer.Vocab{Model: "llama", BOS: 1, EOS: 2, UNK: 0, AddBOS: true}
		for i := 0; i < n; i++ {
			s, ty := fmt.Sprintf("t%d", i), tokenizer.TypeNormal
			switch {
			case i == 0:
				s, ty = "<unk>", tokenizer.TypeUnknown
			case i <= 2:
				s, ty = []string{"", "<s>", "</s>"}[i], tokenizer.TypeControl
			case rename[i] != "":
				s = rename[i]
			}
			v.Tokens, v.Scores, v.Types = append(v.Tokens, s), append(v.Scores, 0), append(v.Types, ty)
		}
		tok, err := tokenizer.New(v)
		require.NoError(t, err)
		return tok
	}
	require.NoError(t, CheckTokenizers(vocab(40, nil), vocab(40, nil)))
	require.ErrorContains(t, CheckTokenizers(vocab(32, nil), vocab(40, nil)), "its vocabulary has 32 tokens, the target's 40")
	require.ErrorContains(t, CheckTokenizers(vocab(40, map[int]string{17: "hello"}), vocab(40, nil)), `differs from the target's at id 17 ("hello", the target's "t17")`)
}
