package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// TestStreamEqualsPlain: n choices, sampling with a seed, stop strings and logprobs
// give the same text streamed and not.
func TestStreamEqualsPlain(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	for _, body := range []string{
		`{"prompt":"Once upon a time","max_tokens":30,"n":3,"temperature":0.9,"seed":5}`,
		`{"prompt":"Once upon a time","max_tokens":48,"temperature":0,"stop":["Lily"]}`,
		`{"prompt":"The cat sat on the","max_tokens":20,"temperature":0.7,"top_k":20,"seed":9,"logprobs":2,"presence_penalty":0.5,"repetition_penalty":1.1}`,
	} {
		code, plain, _ := ts.post(t, "/v1/completions", body)
		require.Equal(t, 200, code, "%s", plain)
		var r completionResponse
		require.NoError(t, json.Unmarshal(plain, &r))
		resp := ts.streamReq(t, context.Background(), "/v1/completions", strings.TrimSuffix(body, "}")+`,"stream":true}`)
		sr := readSSE(t, resp.Body)
		resp.Body.Close()
		require.True(t, sr.done)
		for i, c := range r.Choices {
			require.Equal(t, i, c.Index)
			require.Equal(t, c.Text, sr.texts[i], "choice %d of %s", i, body)
			require.Equal(t, c.FinishReason, sr.finish[i])
		}
		if strings.Contains(body, `"n":3`) {
			require.Len(t, r.Choices, 3)
			require.NotEqual(t, r.Choices[0].Text, r.Choices[1].Text, "choices are sampled independently")
			require.Equal(t, 90, r.Usage.CompletionTokens)
		}
		if strings.Contains(body, "Lily") {
			require.Equal(t, ", there was a little girl named ", r.Choices[0].Text)
			require.Equal(t, "stop", r.Choices[0].FinishReason)
		}
		if strings.Contains(body, "logprobs") {
			lp := r.Choices[0].Logprobs
			require.NotNil(t, lp)
			require.Len(t, lp.Tokens, r.Usage.CompletionTokens)
			require.Len(t, lp.TokenLogprobs, r.Usage.CompletionTokens)
			require.Equal(t, r.Choices[0].Text, strings.Join(lp.Tokens, ""))
			for i, top := range lp.TopLogprobs {
				require.NotEmpty(t, top)
				require.LessOrEqual(t, len(top), 2)
				require.LessOrEqual(t, float32(lp.TokenLogprobs[i]), float32(0))
			}
		}
	}
	ts.waitIdle(t, 5*time.Second)
}

// TestChatLogprobs: chat logprobs in OpenAI's shape, streamed and not.
func TestChatLogprobs(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	body := `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":6,"temperature":0,"logprobs":true,"top_logprobs":3}`
	code, b, _ := ts.post(t, "/v1/chat/completions", body)
	require.Equal(t, 200, code, "%s", b)
	var r chatResponse
	require.NoError(t, json.Unmarshal(b, &r))
	lp := r.Choices[0].Logprobs
	require.NotNil(t, lp)
	require.Len(t, lp.Content, 6)
	var text strings.Builder
	for _, e := range lp.Content {
		text.WriteString(e.Token)
		require.Len(t, e.TopLogprobs, 3)
		require.Equal(t, e.Token, e.TopLogprobs[0].Token, "greedy picks the top token")
		require.Equal(t, len(e.Token), len(e.Bytes))
	}
	require.Equal(t, *r.Choices[0].Message.Content, text.String())

	resp := ts.streamReq(t, context.Background(), "/v1/chat/completions", strings.TrimSuffix(body, "}")+`,"stream":true}`)
	defer resp.Body.Close()
	raw, err := readAllString(resp)
	require.NoError(t, err)
	require.Equal(t, 6, strings.Count(raw, `"top_logprobs":[{"token":`))
}

// TestLongStreamOutlivesTimeouts: a stream longer than the server's read and write
// timeouts is not cut by them (the read deadline is lifted once the body is read; the
// write deadline moves with each chunk).
func TestLongStreamOutlivesTimeouts(t *testing.T) {
	ts := newTestServer(t, serverOpts{fake: 2 * time.Millisecond, quiet: true,
		cfg: Config{ReadTimeout: 150 * time.Millisecond, WriteTimeout: 150 * time.Millisecond}})
	start := time.Now()
	resp := ts.streamReq(t, context.Background(), "/v1/completions", `{"prompt":"x","max_tokens":300,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}`)
	sr := readSSE(t, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	require.Greater(t, took, 300*time.Millisecond, "the stream outlasts both timeouts")
	require.True(t, sr.done)
	require.Equal(t, "length", sr.finish[0])
	require.Equal(t, 300, sr.usage.CompletionTokens)
	// A non-streaming request of the same length too.
	code, b, _ := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":300,"ignore_eos":true}`)
	require.Equal(t, 200, code, "%s", b)
}

func readAllString(resp *http.Response) (string, error) {
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestChatTemplate: with Config.ChatPrompt set to the model's template renderer, chats
// are rendered by the template, and a template that raises rejects the conversation
// with a 400 that carries its message.
func TestChatTemplate(t *testing.T) {
	m := openStories(t)
	m.ChatTemplate = `{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('system messages are not supported') }}{% endif %}` +
		`<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}`
	eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{NumBlocks: 64})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	s, err := New(Config{ModelNames: []string{testModel}, ChatPrompt: func(msgs []chattemplate.Message, tools []chattemplate.Tool, limit int) ([]int32, error) {
		ids, _, err := m.ChatPromptTools(msgs, tools, true, limit)
		return ids, err
	}}, eng, m.Tokenizer, nil)
	require.NoError(t, err)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	ts := &testServer{Server: s, url: hs.URL, eng: eng, hs: hs}

	code, b, _ := ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3}`)
	require.Equal(t, 200, code, "%s", b)
	var r chatResponse
	require.NoError(t, json.Unmarshal(b, &r))
	want := m.Tokenizer.Encode("<user>Hi<assistant>", m.Tokenizer.DefaultOptions())
	require.Equal(t, len(want), r.Usage.PromptTokens)

	code, b, _ = ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"system","content":"x"},{"role":"user","content":"Hi"}]}`)
	require.Equal(t, 400, code, "%s", b)
	require.Contains(t, string(b), "the model's chat template rejected the conversation: system messages are not supported")
}
