package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/engine"
)

// TestLoadQueueCap: 64 concurrent streaming clients against a queue cap of 16 (and 4
// sequences per step, so the queue really fills): each request either completes with
// exactly the text it gets alone or is refused with 429 and Retry-After; none hangs or
// is lost, and afterwards nothing runs and every KV block is free.
func TestLoadQueueCap(t *testing.T) {
	ts := newTestServer(t, serverOpts{engine: engine.Options{MaxNumSeqs: 4, MaxWaiting: 16}, quiet: true})
	prompts := []string{"Once upon a time", "Lily and Ben were playing", "The cat sat on the", "One day", "Tom had a red ball"}
	const maxTokens = 40
	want := map[string]string{}
	for _, p := range prompts {
		code, body, _ := ts.post(t, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0,"ignore_eos":true}`, p, maxTokens))
		require.Equal(t, 200, code, "%s", body)
		var r completionResponse
		require.NoError(t, json.Unmarshal(body, &r))
		want[p] = r.Choices[0].Text
	}

	const clients = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, rejected := 0, 0
	start := make(chan struct{})
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := prompts[i%len(prompts)]
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			body := fmt.Sprintf(`{"prompt":%q,"max_tokens":%d,"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}`, p, maxTokens)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+"/v1/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- fmt.Errorf("client %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusTooManyRequests:
				if resp.Header.Get("Retry-After") == "" {
					errs <- fmt.Errorf("client %d: 429 without Retry-After", i)
					return
				}
				mu.Lock()
				rejected++
				mu.Unlock()
			case http.StatusOK:
				sr := readSSE(t, resp.Body)
				if !sr.done || sr.texts[0] != want[p] || sr.finish[0] != "length" || sr.usage == nil || sr.usage.CompletionTokens != maxTokens {
					errs <- fmt.Errorf("client %d: stream done=%v finish=%q usage=%+v text %q, want %q", i, sr.done, sr.finish[0], sr.usage, sr.texts[0], want[p])
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			default:
				b, _ := io.ReadAll(resp.Body)
				errs <- fmt.Errorf("client %d: status %d: %s", i, resp.StatusCode, b)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.Equal(t, clients, ok+rejected, "every request answered")
	require.Positive(t, ok)
	t.Logf("%d completed, %d refused with 429", ok, rejected)
	st := ts.waitIdle(t, 5*time.Second)
	require.Equal(t, st.NumBlocks, st.FreeBlocks)
	require.Zero(t, ts.metric(t, "vllm:num_requests_running"))
	require.Zero(t, ts.metric(t, "vllm:num_requests_waiting"))
	require.Equal(t, float64(ok+len(prompts)), ts.metric(t, `vllm:request_success_total{finished_reason="length"}`))
	require.Equal(t, float64(rejected), ts.metric(t, `vireo_rejected_requests_total{reason="queue_full"}`))
}

// TestClientDisconnect: a client that drops mid-stream has its request aborted: the
// abort shows in the metrics and its KV blocks return to the pool, quickly.
func TestClientDisconnect(t *testing.T) {
	ts := newTestServer(t, serverOpts{fake: 2 * time.Millisecond, quiet: true})
	ctx, cancel := context.WithCancel(context.Background())
	resp := ts.streamReq(t, ctx, "/v1/completions", `{"prompt":"hello","max_tokens":1500,"ignore_eos":true,"stream":true}`)
	require.Equal(t, 200, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ { // a few tokens in: the request holds KV blocks
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		if line == "\n" {
			i--
		}
	}
	require.Less(t, ts.eng.Stats().FreeBlocks, ts.eng.Stats().NumBlocks, "the running request holds blocks")
	t0 := time.Now()
	cancel()
	resp.Body.Close()
	ts.waitIdle(t, 2*time.Second)
	took := time.Since(t0)
	require.Less(t, took, time.Second, "abort took %v", took)
	require.Eventually(t, func() bool {
		return ts.metric(t, `vllm:request_success_total{finished_reason="abort"}`) == 1
	}, 2*time.Second, 10*time.Millisecond)
	require.Zero(t, ts.metric(t, "vllm:num_requests_running"))
	require.Zero(t, ts.metric(t, "vllm:kv_cache_usage_perc"))
	t.Logf("aborted and freed %v after the disconnect", took)
}

// TestDrain: Drain refuses new requests (and /ready) with 503 and lets the stream in
// flight finish normally.
func TestDrain(t *testing.T) {
	ts := newTestServer(t, serverOpts{fake: time.Millisecond, quiet: true})
	resp := ts.streamReq(t, context.Background(), "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":300,"ignore_eos":true,"stream":true}`)
	require.Equal(t, 200, resp.StatusCode)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	_, err := br.ReadString('\n') // the role chunk: the request is in flight
	require.NoError(t, err)

	code, _ := ts.get(t, "/ready")
	require.Equal(t, 200, code)
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drained <- ts.Drain(ctx)
	}()
	require.Eventually(t, func() bool { c, _ := ts.get(t, "/ready"); return c == 503 }, 2*time.Second, 5*time.Millisecond)
	code, body, _ := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":2}`)
	require.Equal(t, 503, code, "%s", body)
	require.Contains(t, string(body), "shutting down")
	code, _ = ts.get(t, "/health")
	require.Equal(t, 200, code, "still alive while draining")

	sr := readSSE(t, br)
	require.True(t, sr.done)
	require.Equal(t, "length", sr.finish[0])
	require.Empty(t, sr.errMsg)
	require.NoError(t, <-drained)
	ts.waitIdle(t, 2*time.Second)
}

// TestDrainTimeout: what is still running when the drain's context ends is aborted;
// the stream says why and ends; the blocks are freed.
func TestDrainTimeout(t *testing.T) {
	ts := newTestServer(t, serverOpts{fake: 2 * time.Millisecond, quiet: true})
	resp := ts.streamReq(t, context.Background(), "/v1/completions", `{"prompt":"x","max_tokens":1500,"ignore_eos":true,"stream":true}`)
	require.Equal(t, 200, resp.StatusCode)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	_, err := br.ReadString('\n')
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = ts.Drain(ctx)
	require.ErrorContains(t, err, "aborted 1 in-flight requests")
	sr := readSSE(t, br)
	require.True(t, sr.done)
	require.Contains(t, sr.errMsg, "shutting down")
	ts.waitIdle(t, 2*time.Second)
}

// TestRequestTimeout: a request that outlives --request-timeout ends with 504 (or an
// error event on a stream) and frees its blocks.
func TestRequestTimeout(t *testing.T) {
	ts := newTestServer(t, serverOpts{fake: 2 * time.Millisecond, cfg: Config{RequestTimeout: 150 * time.Millisecond}, quiet: true})
	code, body, _ := ts.post(t, "/v1/completions", `{"prompt":"x","max_tokens":1500,"ignore_eos":true}`)
	require.Equal(t, 504, code, "%s", body)
	require.Contains(t, string(body), "request timeout of 150ms")
	resp := ts.streamReq(t, context.Background(), "/v1/completions", `{"prompt":"x","max_tokens":1500,"ignore_eos":true,"stream":true}`)
	sr := readSSE(t, resp.Body)
	resp.Body.Close()
	require.True(t, sr.done)
	require.Contains(t, sr.errMsg, "request timeout")
	ts.waitIdle(t, 2*time.Second)
}

// TestAPIKeys: with keys configured, /v1/* needs one; health and metrics stay open.
func TestAPIKeys(t *testing.T) {
	ts := newTestServer(t, serverOpts{cfg: Config{APIKeys: []string{"k1", "second-key"}}, quiet: true})
	do := func(path, key string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 401, do("/v1/models", ""))
	require.Equal(t, 401, do("/v1/models", "k2"))
	require.Equal(t, 401, do("/v1/models", "k"))
	require.Equal(t, 200, do("/v1/models", "k1"))
	require.Equal(t, 200, do("/v1/models", "second-key"))
	require.Equal(t, 200, do("/health", ""))
	require.Equal(t, 200, do("/metrics", ""))
}
