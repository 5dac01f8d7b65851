package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/engine/enginetest"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

const testModel = "stories260K"

// testServer is a Server on a real engine behind an httptest listener.
type testServer struct {
	*Server
	url string
	eng *engine.Engine
	hs  *httptest.Server
}

type serverOpts struct {
	engine engine.Options
	cfg    Config
	fake   time.Duration // >0: a Fake model of shape synthetic:tiny with this step delay
	quiet  bool          // no per-request logs in the test output
	log    *zap.Logger   // the server's logger (default: the test's, warnings up)
	model  engine.Model  // another model with stories260K's tokenizer (default: stories260K)
}

func openStories(t testing.TB) *llm.Loaded {
	t.Helper()
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func newTestServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	var m engine.Model
	var tok *tokenizer.Tokenizer
	if o.fake > 0 { // no chat template: the server's plain format
		f, ftok, err := enginetest.NewFake("synthetic:tiny", cpu.New(cpu.Options{Threads: 1}), o.fake)
		require.NoError(t, err)
		m, tok = f, ftok
	} else {
		l := openStories(t)
		m, tok = l.Model, l.Tokenizer
		if o.model != nil {
			m = o.model
		}
		if o.cfg.ChatPrompt == nil { // as cmd/serve wires it
			o.cfg.ChatPrompt = func(msgs []chattemplate.Message, tools []chattemplate.Tool, limit int) ([]int32, error) {
				ids, _, err := l.ChatPromptTools(msgs, tools, true, limit)
				return ids, err
			}
			o.cfg.ChatEncode = func(msgs []chattemplate.Message, tools []chattemplate.Tool, addGen bool, limit int) ([]int32, error) {
				ids, _, err := l.ChatPromptTools(msgs, tools, addGen, limit)
				return ids, err
			}
		}
	}
	if o.engine.NumBlocks == 0 && o.engine.KVCacheBytes == 0 {
		o.engine.NumBlocks = 512
	}
	eng, err := engine.New(m, tok, o.engine)
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	if len(o.cfg.ModelNames) == 0 {
		o.cfg.ModelNames = []string{testModel}
	}
	log := zap.NewNop()
	switch {
	case o.log != nil:
		log = o.log
	case !o.quiet:
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	s, err := New(o.cfg, eng, tok, log)
	require.NoError(t, err)
	hs := httptest.NewUnstartedServer(s)
	hs.Config = s.NewHTTPServer("")
	hs.Start()
	t.Cleanup(hs.Close)
	return &testServer{Server: s, url: hs.URL, eng: eng, hs: hs}
}

// post sends a JSON body and returns the status and the whole response body.
func (ts *testServer) post(t testing.TB, path, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

func (ts *testServer) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(ts.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// sseResult is a parsed event stream.
type sseResult struct {
	texts  map[int]string
	finish map[int]string
	chunks int
	done   bool
	usage  *usage
	errMsg string
}

// readSSE parses an OpenAI event stream (either endpoint).
func readSSE(t testing.TB, r io.Reader) sseResult {
	t.Helper()
	res := sseResult{texts: map[int]string{}, finish: map[int]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		require.True(t, ok, "not an SSE data line: %q", line)
		require.False(t, res.done, "data after [DONE]: %q", line)
		if data == "[DONE]" {
			res.done = true
			continue
		}
		var ch struct {
			Choices []struct {
				Index int     `json:"index"`
				Text  *string `json:"text"`
				Delta *struct {
					Content *string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(data), &ch), "chunk %q", data)
		if ch.Error != nil {
			res.errMsg = ch.Error.Message
			continue
		}
		res.chunks++
		if ch.Usage != nil {
			res.usage = ch.Usage
		}
		for _, c := range ch.Choices {
			if c.Text != nil {
				res.texts[c.Index] += *c.Text
			}
			if c.Delta != nil && c.Delta.Content != nil {
				res.texts[c.Index] += *c.Delta.Content
			}
			if c.FinishReason != nil {
				res.finish[c.Index] = *c.FinishReason
			}
		}
	}
	return res
}

// metric scrapes /metrics and returns the value of one series (name plus its label
// text, e.g. `vllm:request_success_total{finished_reason="abort",model_name="x"}`
// or just a name for unlabelled-but-model series, matched by prefix).
func (ts *testServer) metric(t testing.TB, series string) float64 {
	t.Helper()
	code, body := ts.get(t, "/metrics")
	require.Equal(t, 200, code)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if seriesMatch(name, series) {
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("metric %s not found in:\n%s", series, body)
	return 0
}

// seriesMatch compares a scraped series name with a wanted one, ignoring the
// model_name label and label order.
func seriesMatch(got, want string) bool {
	gn, gl, _ := strings.Cut(got, "{")
	wn, wl, _ := strings.Cut(want, "{")
	if gn != wn {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(wl, "}"), ",") {
		if l != "" && !strings.Contains(gl, l) {
			return false
		}
	}
	return true
}

// waitIdle waits until the engine has nothing running and every KV block is free.
func (ts *testServer) waitIdle(t testing.TB, within time.Duration) engine.Stats {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := ts.eng.Stats()
		if st.Running == 0 && st.Waiting == 0 && st.FreeBlocks == st.NumBlocks && ts.InFlight() == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("engine not idle after %v: %+v, in flight %d", within, st, ts.InFlight())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// streamReq starts a streaming request and returns the response once headers arrive.
func (ts *testServer) streamReq(t testing.TB, ctx context.Context, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.url+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	return resp
}

type golden struct {
	Cases []struct {
		Prompt     string    `json:"prompt"`
		PromptIDs  []int     `json:"prompt_ids"`
		GreedyIDs  []int     `json:"greedy_ids"`
		GreedyText string    `json:"greedy_text"`
		Margins    []float64 `json:"top1_top2_logit_margin"`
	} `json:"cases"`
}
