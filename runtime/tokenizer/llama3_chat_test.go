package tokenizer

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// TestLlama3ChatTemplate renders conversations with the chat template shipped in the
// real Llama 3 tokenizer_config.json and requires the reference's text
// (transformers.js apply_chat_template) and, after encoding, its ids.
func TestLlama3ChatTemplate(t *testing.T) {
	requireNode(t)
	var paths struct {
		Config string `json:"tokenizer_config"`
	}
	require.NoError(t, json.Unmarshal(runNode(t, nil, "files", "llama3"), &paths))
	raw, err := os.ReadFile(paths.Config)
	require.NoError(t, err)
	var cfg struct {
		ChatTemplate string `json:"chat_template"`
		BOS          string `json:"bos_token"`
		EOS          string `json:"eos_token"`
	}
	require.NoError(t, json.Unmarshal(raw, &cfg))
	require.NotEmpty(t, cfg.ChatTemplate)
	tmpl, err := chattemplate.Parse(cfg.ChatTemplate)
	require.NoError(t, err)
	tok := nodeHF(t, "llama3", "shipped")

	type msg = chattemplate.Message
	convs := [][]msg{
		{{Role: "user", Content: "Hello!"}},
		{{Role: "system", Content: "You are a helpful assistant."}, {Role: "user", Content: "What is 2+2?"}},
		{{Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello! How can I help?"}, {Role: "user", Content: "Tell me a joke."}},
		{{Role: "system", Content: "  padded system  "}, {Role: "user", Content: "\n\nleading newlines and trailing spaces   "}},
		{{Role: "user", Content: "naïve café — 東京 🚀 <|eot_id|> {{ not jinja }} {% neither %}"}},
		{{Role: "user", Content: ""}},
		{{Role: "system", Content: "Rules."}, {Role: "user", Content: "a"}, {Role: "assistant", Content: "b"}, {Role: "user", Content: "c"}, {Role: "assistant", Content: "d"}},
	}
	type req struct {
		Messages []msg `json:"messages"`
		AddGen   bool  `json:"add_generation_prompt"`
	}
	var reqs []string
	var cases []req
	for _, c := range convs {
		for _, gen := range []bool{true, false} {
			b, err := json.Marshal(req{Messages: c, AddGen: gen})
			require.NoError(t, err)
			reqs = append(reqs, string(b))
			cases = append(cases, req{c, gen})
		}
	}
	type out struct {
		Text string  `json:"text"`
		IDs  []int32 `json:"ids"`
	}
	// The chat mode reads one JSON object per line (nodeLines sends strings).
	var want []out
	for _, line := range bytes.Split(bytes.TrimSpace(runNode(t, []byte(strings.Join(reqs, "\n")+"\n"), "chat", "llama3")), []byte("\n")) {
		var o out
		require.NoError(t, json.Unmarshal(line, &o))
		want = append(want, o)
	}
	require.Len(t, want, len(cases))
	for i, c := range cases {
		got, err := chattemplate.RenderChat(tmpl, c.Messages, c.AddGen, map[string]string{"bos_token": cfg.BOS, "eos_token": cfg.EOS}, nil)
		require.NoError(t, err)
		require.Equal(t, want[i].Text, got, "conversation %d (generation prompt %v)", i/2, c.AddGen)
		require.Equal(t, want[i].IDs, tok.Encode(got, EncodeOptions{ParseSpecial: true}), "conversation %d ids", i/2)
	}
}
