package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

func loadGolden(t *testing.T) golden {
	b, err := os.ReadFile(shared.Path(t, "golden", "stories260K.json"))
	require.NoError(t, err)
	var g golden
	require.NoError(t, json.Unmarshal(b, &g))
	require.NotEmpty(t, g.Cases)
	return g
}

// TestGoldenGreedy: greedy completions through HTTP — text prompt and token-id prompt,
// streamed and not — give the golden continuation of stories260K.
func TestGoldenGreedy(t *testing.T) {
	g := loadGolden(t)
	ts := newTestServer(t, serverOpts{})
	for _, c := range g.Cases {
		want := strings.ReplaceAll(c.GreedyText, "<0x0A>", "\n")
		prompt, _ := json.Marshal(c.Prompt)
		ids, _ := json.Marshal(c.PromptIDs)
		t.Run(fmt.Sprintf("%q", c.Prompt), func(t *testing.T) {
			for _, p := range []struct {
				name, prompt string
			}{{"text", string(prompt)}, {"ids", string(ids)}} {
				body := fmt.Sprintf(`{"model":%q,"prompt":%s,"max_tokens":%d,"temperature":0,"ignore_eos":true}`, testModel, p.prompt, len(c.GreedyIDs))
				code, resp, _ := ts.post(t, "/v1/completions", body)
				require.Equal(t, 200, code, "%s", resp)
				var r completionResponse
				require.NoError(t, json.Unmarshal(resp, &r))
				require.Len(t, r.Choices, 1)
				require.Equal(t, want, r.Choices[0].Text, "%s prompt", p.name)
				require.Equal(t, "length", r.Choices[0].FinishReason)
				require.Equal(t, usage{PromptTokens: len(c.PromptIDs), CompletionTokens: len(c.GreedyIDs), TotalTokens: len(c.PromptIDs) + len(c.GreedyIDs)}, r.Usage)

				stream := strings.TrimSuffix(body, "}") + `,"stream":true,"stream_options":{"include_usage":true}}`
				resp2 := ts.streamReq(t, context.Background(), "/v1/completions", stream)
				require.Equal(t, 200, resp2.StatusCode)
				require.Equal(t, "text/event-stream", resp2.Header.Get("Content-Type"))
				sr := readSSE(t, resp2.Body)
				resp2.Body.Close()
				require.True(t, sr.done, "stream ends with [DONE]")
				require.Equal(t, want, sr.texts[0], "streamed %s prompt", p.name)
				require.Equal(t, "length", sr.finish[0])
				require.NotNil(t, sr.usage)
				require.Equal(t, r.Usage, *sr.usage)
			}
		})
	}
	ts.waitIdle(t, 5e9)
}
