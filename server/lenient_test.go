package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// completionText runs one request and returns the first choice's text (either
// endpoint), requiring a 200.
func completionText(t *testing.T, ts *testServer, path, ctype, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s -> %s", body, b)
	var r struct {
		Choices []struct {
			Text    string `json:"text"`
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(b, &r))
	require.NotEmpty(t, r.Choices)
	return r.Choices[0].Text + r.Choices[0].Message.Content
}

// TestLenientRequests: what vLLM accepts, this server accepts, with the same output as
// without it — unknown fields anywhere in the body, the harmless defaults clients send
// (tool_choice "none" without tools, parallel_tool_calls, user, store, metadata,
// service_tier), and a JSON body under any Content-Type but multipart.
func TestLenientRequests(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	const C, Chat = "/v1/completions", "/v1/chat/completions"
	plain := completionText(t, ts, C, "application/json", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`)
	for _, c := range []struct{ ctype, body string }{
		{"application/json", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0,"max_token":5,"frobnicate":{"a":[1,{"b":2}]},"MAX_TOKENS":1}`},
		{"", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`},
		{"text/plain", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`},
		{"application/x-www-form-urlencoded", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`}, // curl -d without -H
		{"application/vnd.api+json; charset=utf-8", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0}`},
		{"application/json", `{"prompt":"Once upon a time","max_tokens":12,"temperature":0,"user":"u","stream_options":null}`},
	} {
		require.Equal(t, plain, completionText(t, ts, C, c.ctype, c.body), "%s %s", c.ctype, c.body)
	}
	msgs := `"messages":[{"role":"user","content":"Tell me a story."}]`
	chat := completionText(t, ts, Chat, "application/json", `{`+msgs+`,"max_tokens":12,"temperature":0}`)
	for _, body := range []string{
		`{` + msgs + `,"max_tokens":12,"temperature":0,"tool_choice":"none","parallel_tool_calls":true,"user":"u1","store":true,"metadata":{"k":"v"},"service_tier":"auto"}`,
		`{` + msgs + `,"max_tokens":12,"temperature":0,"tool_choice":null,"parallel_tool_calls":false,"store":false,"tools":null}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"Tell me a story.","cache_control":{"type":"ephemeral"}}],"mood":"happy"}],"max_tokens":12,"temperature":0,"guided_whatever":1}`,
		`{` + msgs + `,"max_tokens":12,"temperature":0,"stream_options":null,"extra_body":{"top_k":3}}`,
	} {
		require.Equal(t, chat, completionText(t, ts, Chat, "application/json", body), "%s", body)
	}
}

// TestUnknownFieldsLog: each request's ignored fields are logged at debug level; a
// warning comes the first time a field name is seen, at most warnBurst of them at once
// and one more per warnEvery after, the name clipped and array indexes folded, so no
// stream of requests can flood the log. The clock is the test's.
func TestUnknownFieldsLog(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := newTestServer(t, serverOpts{log: zap.New(core)})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts.fields.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	warnings := func() []observer.LoggedEntry {
		return logs.FilterMessageSnippet("ignoring a request field").AllUntimed()
	}
	send := func(extra string) {
		t.Helper()
		code, body, _ := ts.post(t, "/v1/completions", `{"prompt":"Once","max_tokens":1`+extra+`}`)
		require.Equal(t, 200, code, "%s", body)
	}

	for range 30 {
		send(`,"foo":1`)
	}
	w := warnings()
	require.Len(t, w, 1, "one warning per field name")
	require.Equal(t, "foo", w[0].ContextMap()["field"])
	require.Equal(t, 30, logs.FilterMessage("request fields ignored").Len(), "every request at debug level")

	// Array indexes fold: messages[3].x and messages[0].x are one name.
	for i := range 3 {
		code, body, _ := ts.post(t, "/v1/chat/completions", fmt.Sprintf(`{"messages":[%s{"role":"user","content":"Hi","x":1}],"max_tokens":1}`,
			strings.Repeat(`{"role":"user","content":"Hi"},`, i)))
		require.Equal(t, 200, code, "%s", body)
	}
	w = warnings()
	require.Len(t, w, 2)
	require.Equal(t, "messages[].x", w[1].ContextMap()["field"])

	// A flood of new names: warnBurst warnings in all, then nothing until time passes.
	for i := range 100 {
		send(fmt.Sprintf(`,"x%d":1`, i))
	}
	require.Len(t, warnings(), warnBurst)
	mu.Lock()
	now = now.Add(warnEvery)
	mu.Unlock()
	send(`,"late":1,"later":2`)
	w = warnings()
	require.Len(t, w, warnBurst+1, "one more per warnEvery")
	require.Equal(t, "late", w[warnBurst].ContextMap()["field"])

	// A huge name is clipped wherever it is logged.
	mu.Lock()
	now = now.Add(10 * warnEvery)
	mu.Unlock()
	long := strings.Repeat("n", 100_000)
	send(`,"` + long + `":1`)
	w = warnings()
	field := w[len(w)-1].ContextMap()["field"].(string)
	require.True(t, strings.HasPrefix(field, strings.Repeat("n", maxIgnoredName)))
	require.Less(t, len(field), maxIgnoredName+40)
	for _, e := range logs.All() {
		for _, f := range e.Context {
			require.Less(t, len(f.String), 1024, "no logged value repeats the name whole")
		}
	}

	// A body with a thousand unknown keys names maxIgnoredNames of them and counts the rest.
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, `,"k%d":%d`, i, i)
	}
	send(b.String())
	last := logs.FilterMessage("request fields ignored").AllUntimed()
	ctx := last[len(last)-1].ContextMap()
	require.Len(t, ctx["fields"], maxIgnoredNames)
	require.EqualValues(t, 1000-maxIgnoredNames, ctx["more"])
}
