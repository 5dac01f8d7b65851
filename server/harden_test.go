package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// The defects of issue 29 (server hardening), one test each; each failed before the fix.

// allocated is the bytes the process allocated while f ran (TotalAlloc grows with
// every allocation, whatever the GC does meanwhile).
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// apiErr decodes an OpenAI error body.
func apiErr(t testing.TB, body []byte) (msg string, param *string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "%.300s", body)
	return e.Error.Message, e.Error.Param
}

// TestPromptBombsCostTheirBytes (defect 1): an 8 MiB prompt, of token ids or of text,
// direct or in a chat, is refused for the context without being decoded into a huge
// array or tokenized whole: the request allocates a few times its body, where it used
// to allocate hundreds of MB (3.55 GB of RSS for eight concurrent id bombs, 760 MB
// per text bomb).
func TestPromptBombsCostTheirBytes(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	const body = 8<<20 - 64 // within the default 8 MiB body limit
	nIDs := (body - 40) / 2
	ids := `{"prompt":[` + strings.Repeat("1,", nIDs-1) + `1],"max_tokens":1}`
	story := strings.Repeat("Once upon a time ", (body-80)/17)
	text := `{"prompt":"` + story + `","max_tokens":1}`
	chat := `{"messages":[{"role":"user","content":"` + story + `"}],"max_tokens":1}`
	trimmed := len(strings.TrimSpace(story))
	for _, c := range []struct{ name, path, body, msg string }{
		{"ids", "/v1/completions", ids, fmt.Sprintf("the prompt is %d tokens, but this model's maximum context length is 512 tokens", nIDs)},
		{"text", "/v1/completions", text, fmt.Sprintf("the prompt is at least %d tokens (%d bytes of text; a token here spans at most 7), but this model's maximum context length is 512 tokens", (len(story)+6)/7, len(story))},
		{"chat", "/v1/chat/completions", chat, fmt.Sprintf("the prompt is at least %d tokens (%d bytes of message text; a token here spans at most 7), but this model's maximum context length is 512 tokens", (trimmed+6)/7, trimmed)},
	} {
		var code int
		var resp []byte
		n := allocated(func() { code, resp, _ = ts.post(t, c.path, c.body) })
		require.Equal(t, 400, code, "%s: %.300s", c.name, resp)
		msg, param := apiErr(t, resp)
		require.Contains(t, msg, c.msg, c.name)
		require.NotNil(t, param)
		t.Logf("%s bomb (%d bytes): refused, %d MiB allocated", c.name, len(c.body), n>>20)
		require.Less(t, n, uint64(6*len(c.body)), "%s: %d bytes allocated for a %d-byte body", c.name, n, len(c.body))
	}

	// Within the bytes' bound but past the context: the encoding stops at the limit.
	code, resp, _ := ts.post(t, "/v1/completions", `{"prompt":"`+strings.Repeat("a b ", 800)+`"}`)
	require.Equal(t, 400, code)
	msg, _ := apiErr(t, resp)
	require.Contains(t, msg, "the prompt is at least 512 tokens (counting stopped there), but this model's maximum context length is 512 tokens")
	code, resp, _ = ts.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"`+strings.Repeat("a b ", 800)+`"}]}`)
	require.Equal(t, 400, code)
	msg, _ = apiErr(t, resp)
	require.Regexp(t, `the prompt is at least 51\d tokens \(counting stopped there\), but this model's maximum context length is 512 tokens`, msg)
	// Ids are counted exactly when they are few enough to be worth it.
	code, resp, _ = ts.post(t, "/v1/completions", `{"prompt":[[`+strings.Repeat("5,", 599)+`5]]}`)
	require.Equal(t, 400, code)
	msg, _ = apiErr(t, resp)
	require.Contains(t, msg, "the prompt is 600 tokens, but this model's maximum context length is 512 tokens")
	require.Zero(t, ts.metric(t, `vllm:prompt_tokens_total`), "no bomb reached the engine")
}

// TestParsingIsBounded (defect 1): at most MaxConcurrentParsing requests are parsed
// and tokenized at once and as many wait; beyond that the server answers 429 at once
// instead of taking on more work. The chat template hook, which runs inside that
// stage, holds the requests there.
func TestParsingIsBounded(t *testing.T) {
	release := make(chan struct{})
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	var inTemplate sync.WaitGroup
	inTemplate.Add(1)
	var once sync.Once
	l := openStories(t)
	ts := newTestServer(t, serverOpts{quiet: true, cfg: Config{MaxConcurrentParsing: 1,
		ChatPrompt: func(msgs []chattemplate.Message, _ []chattemplate.Tool, limit int) ([]int32, error) {
			once.Do(inTemplate.Done)
			<-release
			ids, _, err := l.ChatPromptLimit(msgs, true, limit)
			return ids, err
		}}})
	t.Cleanup(free) // (after the server's cleanups, so first) a failing test must not leave handlers blocked
	chat := `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}`
	results := make(chan int, 2)
	go func() { code, _, _ := ts.post(t, "/v1/chat/completions", chat); results <- code }()
	inTemplate.Wait() // the first request holds the only slot
	go func() { code, _, _ := ts.post(t, "/v1/chat/completions", chat); results <- code }()
	// The second waits for the slot; wait until it does (the waiting room is then full).
	require.Eventually(t, func() bool {
		ts.parsing.mu.Lock()
		defer ts.parsing.mu.Unlock()
		return ts.parsing.waiting == 1
	}, 10*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/chat/completions", strings.NewReader(chat))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "the third request is answered at once, not held")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 429, resp.StatusCode, "%s", b)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	msg, _ := apiErr(t, b)
	require.Contains(t, msg, "parsing as many requests as it may at once (1, max_concurrent_parsing)")

	free()
	require.Equal(t, 200, <-results)
	require.Equal(t, 200, <-results)
	require.Equal(t, float64(1), ts.metric(t, `vireo_rejected_requests_total{reason="busy"}`))
}

// TestEchoedValuesAreClipped (defect 2): a client's field names, model and roles go
// into error messages and logs clipped to 256 bytes with a marker: an 8 MiB field name
// used to give a 16 MB response and an 8 MB log line.
func TestEchoedValuesAreClipped(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ts := newTestServer(t, serverOpts{log: zap.New(core)})
	huge := strings.Repeat("x", 8<<20-200)
	for _, c := range []struct{ path, body, param string }{
		{"/v1/completions", `{"prompt":"x","max_tokens":1,"` + huge + `":1}`, ""}, // unknown fields are ignored, and logged clipped
		{"/v1/completions", `{"prompt":"x","model":"` + huge + `"}`, "model"},
		{"/v1/chat/completions", `{"messages":[{"role":"` + huge + `","content":"hi"}]}`, "messages[0].role"},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"text","text":"hi","` + huge + `":1}]}],"max_tokens":1}`, ""},
		{"/v1/completions", `{"prompt":"x","max_tokens":1` + strings.Repeat("0", 8<<20-200) + `}`, "max_tokens"},
	} {
		code, resp, _ := ts.post(t, c.path, c.body)
		require.Less(t, len(resp), 2048, "a %d-byte response", len(resp))
		if c.param == "" {
			require.Equal(t, 200, code, "%s", resp)
			continue
		}
		require.Contains(t, []int{400, 404}, code)
		require.Less(t, len(resp), 2048, "a %d-byte response", len(resp))
		msg, param := apiErr(t, resp)
		require.Contains(t, msg, "...[truncated: ")
		require.Equal(t, c.param, *param)
		require.Less(t, len(*param), 512)
	}
	entries := logs.All()
	require.NotEmpty(t, entries)
	for _, e := range entries {
		enc, err := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()).EncodeEntry(e.Entry, e.Context)
		require.NoError(t, err)
		require.Less(t, enc.Len(), 4096, "a %d-byte log line", enc.Len())
	}
}

// TestResponseIsBounded (defect 4): the response a request may accumulate is checked
// before it runs. The request that used to give a 65 MB body and a 1.23 GB peak is
// refused with 400 naming the limit, and the responses of the requests in flight are
// bounded together (429 beyond).
func TestResponseIsBounded(t *testing.T) {
	ts := newTestServer(t, serverOpts{fake: time.Nanosecond, quiet: true}) // a context of 2,048
	var code int
	var resp []byte
	n := allocated(func() {
		code, resp, _ = ts.post(t, "/v1/completions", `{"prompt":"Once","max_tokens":1500,"n":128,"logprobs":20,"ignore_eos":true}`)
	})
	require.Equal(t, 400, code, "%.300s", resp)
	msg, param := apiErr(t, resp)
	require.Contains(t, msg, "the response could hold 4224000 tokens (n=128 × max_tokens=1500 × (2 + 20 top logprobs) per token), over this server's limit of 262144 per request")
	require.Equal(t, "max_tokens", *param)
	require.Less(t, n, uint64(1<<20), "refused before any work: %d bytes allocated", n)
	// Without logprobs the same request fits.
	code, resp, _ = ts.post(t, "/v1/completions", `{"prompt":"Once","max_tokens":20,"n":128,"ignore_eos":true}`)
	require.Equal(t, 200, code, "%.300s", resp)

	// Together: two streams of 600 tokens do not fit an allowance of 1,000.
	tf := newTestServer(t, serverOpts{fake: 2 * time.Millisecond, quiet: true, cfg: Config{MaxResponseTokens: 1000, MaxInflightResponseTokens: 1000}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := tf.streamReq(t, ctx, "/v1/completions", `{"prompt":"x","max_tokens":600,"ignore_eos":true,"stream":true}`)
	require.Equal(t, 200, stream.StatusCode)
	require.Equal(t, float64(600), tf.metric(t, "vireo_inflight_response_tokens"))
	code, resp, hdr := tf.post(t, "/v1/completions", `{"prompt":"x","max_tokens":600}`)
	require.Equal(t, 429, code, "%s", resp)
	require.NotEmpty(t, hdr.Get("Retry-After"))
	msg, _ = apiErr(t, resp)
	require.Contains(t, msg, "max_inflight_response_tokens")
	code, _, _ = tf.post(t, "/v1/completions", `{"prompt":"x","max_tokens":400}`)
	require.Equal(t, 200, code, "what is left of the allowance still serves")
	sr := readSSE(t, stream.Body)
	stream.Body.Close()
	require.Equal(t, "length", sr.finish[0])
	require.Eventually(t, func() bool { return tf.metric(t, "vireo_inflight_response_tokens") == 0 }, 5*time.Second, 5*time.Millisecond)
	code, _, _ = tf.post(t, "/v1/completions", `{"prompt":"x","max_tokens":600}`)
	require.Equal(t, 200, code, "the allowance is given back")
}

// TestKVCacheSmallerThanContextIsSaid (defect 5): with a KV cache of 5 blocks (80
// tokens) the server says max_model_len is 80 and refuses a request past it, where it
// used to claim 512 and end a 200-token request after 75 tokens with "length".
func TestKVCacheSmallerThanContextIsSaid(t *testing.T) {
	ts := newTestServer(t, serverOpts{engine: engine.Options{NumBlocks: 5}, quiet: true})
	code, body := ts.get(t, "/v1/models")
	require.Equal(t, 200, code)
	require.Contains(t, string(body), `"max_model_len":80`)
	code, resp, _ := ts.post(t, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":200,"ignore_eos":true}`)
	require.Equal(t, 400, code, "%s", resp)
	msg, _ := apiErr(t, resp)
	require.Contains(t, msg, "this model's maximum context length is 80 tokens, but 205 were requested")
	code, resp, _ = ts.post(t, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":75,"ignore_eos":true}`)
	require.Equal(t, 200, code, "%s", resp)
	var r completionResponse
	require.NoError(t, json.Unmarshal(resp, &r))
	require.Equal(t, 75, r.Usage.CompletionTokens, "every token asked for")
}

// TestNBeyondWaitingCap (defect 6): n above the waiting cap can never be queued: 400
// naming n, where it used to get 429 with Retry-After forever, even on an idle server.
func TestNBeyondWaitingCap(t *testing.T) {
	ts := newTestServer(t, serverOpts{engine: engine.Options{MaxWaiting: 4}, quiet: true})
	code, resp, hdr := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":2,"n":5}`)
	require.Equal(t, 400, code, "%s", resp)
	require.Empty(t, hdr.Get("Retry-After"))
	msg, param := apiErr(t, resp)
	require.Equal(t, "n", *param)
	require.Contains(t, msg, "at most 4 completions at a time")
	code, _, _ = ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":2,"n":4}`)
	require.Equal(t, 200, code)
}

// TestDrainUnblocksSlowBodies (defect 8, the server's part): a client that stops
// sending its body no longer holds a drain past its deadline: Drain aborts it, and
// its handler returns (WaitIdle) without waiting for the read timeout.
func TestDrainUnblocksSlowBodies(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true, cfg: Config{ReadTimeout: time.Hour}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
	require.Eventually(t, func() bool { return ts.InFlight() == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain's time is already up
	require.ErrorContains(t, ts.Drain(ctx), "aborted 1 in-flight requests")
	wctx, wcancel := context.WithTimeout(context.Background(), time.Minute)
	defer wcancel()
	require.NoError(t, ts.WaitIdle(wctx), "the handler returned, an hour before its read timeout")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, 503, resp.StatusCode)
}

// TestSmallOnes (defect 9): the Bearer scheme is case-insensitive; field names match
// exactly; sampling values the sampler cannot hold are refused naming the field; a
// body that stops arriving gets 408.
func TestSmallOnes(t *testing.T) {
	ts := newTestServer(t, serverOpts{cfg: Config{APIKeys: []string{"k1"}, ReadTimeout: 300 * time.Millisecond}, quiet: true})
	auth := func(h string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.url+"/v1/models", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, auth("bearer k1"))
	require.Equal(t, 200, auth("BEARER k1"))
	require.Equal(t, 200, auth("Bearer  k1 "))
	require.Equal(t, 401, auth("Basic k1"))
	require.Equal(t, 401, auth("Bearerk1"))

	post := func(path, body string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, ts.url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer k1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			return 200, "", ""
		}
		msg, param := apiErr(t, b)
		p := ""
		if param != nil {
			p = *param
		}
		return resp.StatusCode, msg, p
	}
	for _, c := range []struct{ path, body, param, msg string }{
		// Names match exactly: a key differing in case is an unknown field, ignored, and
		// never sets the field encoding/json would fold it onto.
		{"/v1/completions", `{"Prompt":"x"}`, "prompt", `"prompt" is required`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"},{"ROLE":"user","content":"hi"}]}`, "messages[1].role", `messages[1] has no "role"`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","Role":"wizard","content":"hi"}],"max_tokens":0,"MAX_TOKENS":3}`, "max_tokens", `"max_tokens" must be at least 1, got 0`},
		{"/v1/completions", `{"prompt":"x","repetition_penalty":1e308}`, "repetition_penalty", "cannot hold"},
		{"/v1/completions", `{"prompt":"x","repetition_penalty":1e-50}`, "repetition_penalty", "cannot hold"},
	} {
		code, msg, param := post(c.path, c.body)
		require.Equal(t, 400, code, c.body)
		require.Equal(t, c.param, param, c.body)
		require.Contains(t, msg, c.msg, c.body)
	}
	for _, body := range []string{
		`{"prompt":"x","max_tokens":2,"MAX_TOKENS":300}`,
		`{"prompt":"x","MAX_TOKENS":300,"max_tokens":2,"Max_Tokens":300,"max_to\u212aens":300}`, // the Kelvin sign folds to k
	} {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var r completionResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
		resp.Body.Close()
		require.Equal(t, 2, r.Usage.CompletionTokens, "%s: the case-folded names set nothing", body)
	}
	resp0 := func() string {
		req, _ := http.NewRequest(http.MethodPost, ts.url+"/v1/completions", strings.NewReader(`{"prompt":"x","max_tokens":2,"stream":true,"stream_options":{"Include_Usage":true}}`))
		req.Header.Set("Authorization", "Bearer k1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}()
	require.NotContains(t, resp0, `"usage"`, "stream_options.Include_Usage is not include_usage")
	code, _, _ := post("/v1/completions", `{"prompt":"x","max_tokens":2,"repetition_penalty":3e38}`)
	require.Equal(t, 200, code, "large but representable")
	code, _, _ = post("/v1/completions", `{"prompt":"x","max_\u0074okens":2}`)
	require.Equal(t, 200, code, "an escaped name is the same name")

	// A body that stops arriving: 408, and the connection is closed.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"prompt\":")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 408, resp.StatusCode, "%s", b)
	require.True(t, resp.Close, "Connection: close")
	msg, _ := apiErr(t, b)
	require.Contains(t, msg, "did not arrive within the server's read timeout of 300ms")
}
