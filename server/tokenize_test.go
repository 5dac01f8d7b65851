package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// keysOf is a JSON object's keys, sorted.
func keysOf(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m), "%s", body)
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

type tokenizeResp struct {
	Count       int      `json:"count"`
	MaxModelLen int      `json:"max_model_len"`
	Tokens      []int32  `json:"tokens"`
	TokenStrs   []string `json:"token_strs"`
}

func (ts *testServer) tokenize(t *testing.T, body string) tokenizeResp {
	t.Helper()
	code, b, _ := ts.post(t, "/tokenize", body)
	require.Equal(t, 200, code, "%s -> %s", body, b)
	require.Equal(t, []string{"count", "max_model_len", "token_strs", "tokens"}, keysOf(t, b), "vLLM's TokenizeResponse")
	var r tokenizeResp
	require.NoError(t, json.Unmarshal(b, &r))
	require.Equal(t, len(r.Tokens), r.Count)
	return r
}

// TestTokenize: /tokenize and /detokenize in vLLM's shapes. A text's ids are the
// golden prompt ids (with BOS; without it for add_special_tokens false); a chat's are
// what a chat completion prefills, with or without the generation prompt; token
// strings are the vocabulary's; detokenize inverts tokenize; /version answers.
func TestTokenize(t *testing.T) {
	g := loadGolden(t)
	ts := newTestServer(t, serverOpts{quiet: true})
	bos := ts.dec.tok.BOS()
	for _, c := range g.Cases {
		want := make([]int32, len(c.PromptIDs))
		for i, id := range c.PromptIDs {
			want[i] = int32(id)
		}
		r := ts.tokenize(t, fmt.Sprintf(`{"model":%q,"prompt":%q}`, testModel, c.Prompt))
		require.Equal(t, want, r.Tokens, c.Prompt)
		require.Equal(t, 512, r.MaxModelLen)
		require.Nil(t, r.TokenStrs, "token_strs is null unless asked for")
		require.Equal(t, bos, want[0], "the golden ids start with BOS")

		r = ts.tokenize(t, fmt.Sprintf(`{"prompt":%q,"add_special_tokens":false,"return_token_strs":true}`, c.Prompt))
		require.Equal(t, want[1:], r.Tokens)
		require.Len(t, r.TokenStrs, r.Count)
		for i, id := range r.Tokens {
			require.Equal(t, ts.dec.tok.Spelling(id), r.TokenStrs[i])
		}

		ids, _ := json.Marshal(r.Tokens)
		code, b, _ := ts.post(t, "/detokenize", fmt.Sprintf(`{"model":%q,"tokens":%s}`, testModel, ids))
		require.Equal(t, 200, code, "%s", b)
		require.Equal(t, []string{"prompt"}, keysOf(t, b), "vLLM's DetokenizeResponse")
		var d struct{ Prompt string }
		require.NoError(t, json.Unmarshal(b, &d))
		require.Equal(t, c.Prompt, d.Prompt)
	}

	msgs := `"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Tell me a story."}]`
	chat := ts.tokenize(t, `{`+msgs+`}`)
	code, b, _ := ts.post(t, "/v1/chat/completions", `{`+msgs+`,"max_tokens":1}`)
	require.Equal(t, 200, code, "%s", b)
	var cr chatResponse
	require.NoError(t, json.Unmarshal(b, &cr))
	require.Equal(t, cr.Usage.PromptTokens, chat.Count, "the ids a chat completion prefills")
	noGen := ts.tokenize(t, `{`+msgs+`,"add_generation_prompt":false}`)
	require.Less(t, noGen.Count, chat.Count, "without the generation prompt")
	require.Equal(t, chat.Tokens[:noGen.Count], noGen.Tokens, "a prefix of it")
	withBOS := ts.tokenize(t, `{`+msgs+`,"add_special_tokens":true}`)
	require.Equal(t, bos, withBOS.Tokens[0])
	require.NotEqual(t, bos, withBOS.Tokens[1], "BOS once, not twice")

	// With tools, rendered as a chat completion offering them renders them.
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
	withTools := ts.tokenize(t, `{`+msgs+`,`+tools+`}`)
	require.Greater(t, withTools.Count, chat.Count, "the tools are rendered")
	code, b, _ = ts.post(t, "/v1/chat/completions", `{`+msgs+`,`+tools+`,"max_tokens":1}`)
	require.Equal(t, 200, code, "%s", b)
	cr = chatResponse{}
	require.NoError(t, json.Unmarshal(b, &cr))
	require.Equal(t, cr.Usage.PromptTokens, withTools.Count)

	code, b = ts.get(t, "/version")
	require.Equal(t, 200, code)
	require.Equal(t, []string{"version"}, keysOf(t, b))
}

// TestTokenizeRefusals: the tokenizer endpoints' bad requests get a 4xx naming the
// field, and their work is bounded by the context, as vLLM bounds it.
func TestTokenizeRefusals(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true, cfg: Config{APIKeys: []string{"k"}}})
	long := strings.Repeat("Once upon a time ", 400)
	ids513 := "[" + strings.Repeat("5,", 512) + "5]"
	cases := []struct {
		path, body string
		status     int
		param, msg string
	}{
		{"/tokenize", `{"prompt":"x","messages":[{"role":"user","content":"x"}]}`, 400, "messages", "not both"},
		{"/tokenize", `{}`, 400, "prompt", `"prompt" (a text) or "messages" (a chat) is required`},
		{"/tokenize", `{"prompt":[1,2]}`, 400, "prompt", `"prompt" must be a string`},
		{"/tokenize", `{"prompt":` + fmt.Sprintf("%q", long) + `}`, 400, "prompt", "maximum context length is 512 tokens"},
		{"/tokenize", `{"messages":[{"role":"user","content":` + fmt.Sprintf("%q", long) + `}]}`, 400, "messages", "maximum context length is 512 tokens"},
		{"/tokenize", `{"messages":[{"role":"user","content":"x"}],"continue_final_message":true}`, 400, "continue_final_message", "Cannot set both"},
		{"/tokenize", `{"messages":[{"role":"user","content":"x"}],"chat_template":"{{ x }}"}`, 400, "chat_template", `"chat_template" is not supported`},
		{"/tokenize", `{"messages":[{"role":"wizard","content":"x"}]}`, 400, "messages[0].role", "must be one of"},
		{"/tokenize", `{"messages":[{"role":"user","content":"x"}],"tools":{"type":"function"}}`, 400, "tools", `"tools" must be an array`},
		{"/tokenize", `{"model":"gpt-4","prompt":"x"}`, 404, "model", `"gpt-4" does not exist`},
		{"/detokenize", `{"tokens":[1,600]}`, 400, "tokens", "token id 600 at position 1 is outside the vocabulary of 512 tokens"},
		{"/detokenize", `{"tokens":` + ids513 + `}`, 400, "tokens", "513 tokens to detokenize, but this model's maximum context length is 512"},
		{"/detokenize", `{"tokens":"abc"}`, 400, "tokens", "must be an array of token ids"},
		{"/detokenize", `{"tokens":[1.5]}`, 400, "tokens", "must be an array of token ids"},
		{"/detokenize", `{}`, 400, "tokens", `"tokens" is required`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, ts.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var e struct {
			Error struct {
				Message string  `json:"message"`
				Param   *string `json:"param"`
			} `json:"error"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, c.body)
		require.NotNil(t, e.Error.Param, c.body)
		require.Equal(t, c.param, *e.Error.Param, c.body)
		require.Contains(t, e.Error.Message, c.msg, c.body)
	}
	// The key guards the tokenizer endpoints as it guards /v1; /version stays open.
	code, _, _ := ts.post(t, "/tokenize", `{"prompt":"x"}`)
	require.Equal(t, 401, code)
	code, _ = ts.get(t, "/version")
	require.Equal(t, 200, code)
	code, _ = ts.get(t, "/tokenize")
	require.Equal(t, 401, code, "auth before the method")
}
