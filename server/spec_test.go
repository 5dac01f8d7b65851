package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/specdec"
)

// TestSpecDecodeMetrics: a server that speculates answers as one that does not, and
// exports vLLM's spec_decode counters (absent when speculation is off).
func TestSpecDecodeMetrics(t *testing.T) {
	plain := newTestServer(t, serverOpts{quiet: true})
	spec := newTestServer(t, serverOpts{quiet: true, engine: engine.Options{
		Speculative: specdec.Config{Method: specdec.MethodNGram, NumSpeculativeTokens: 3, PromptLookupMax: 3, PromptLookupMin: 1}}})
	body := `{"prompt":"Once upon a time, there was a little girl named Lily. Once upon a time, there was a little girl named","max_tokens":48,"temperature":0,"logprobs":2}`
	text := func(ts *testServer) string {
		code, b, _ := ts.post(t, "/v1/completions", body)
		require.Equal(t, 200, code, "%s", b)
		var r struct {
			Choices []struct {
				Text     string          `json:"text"`
				Logprobs json.RawMessage `json:"logprobs"`
			} `json:"choices"`
		}
		require.NoError(t, json.Unmarshal(b, &r))
		return r.Choices[0].Text + string(r.Choices[0].Logprobs)
	}
	require.Equal(t, text(plain), text(spec))

	drafts := spec.metric(t, "vllm:spec_decode_num_drafts_total")
	tokens := spec.metric(t, "vllm:spec_decode_num_draft_tokens_total")
	accepted := spec.metric(t, "vllm:spec_decode_num_accepted_tokens_total")
	require.Greater(t, drafts, 0.0)
	require.Greater(t, accepted, 0.0)
	require.LessOrEqual(t, tokens, 3*drafts)
	var sum float64
	for j := 0; j < 3; j++ {
		sum += spec.metric(t, fmt.Sprintf(`vllm:spec_decode_num_accepted_tokens_per_pos_total{position="%d"}`, j))
	}
	require.Equal(t, accepted, sum)
	_, m := plain.get(t, "/metrics")
	require.NotContains(t, string(m), "spec_decode")
	_, m = spec.get(t, "/metrics")
	require.True(t, strings.Contains(string(m), `vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="stories260K",position="2"}`), "%s", m)
}
