package servecmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/hub/hubtest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serveGreedy starts the server in-process on model, asks for a greedy completion under
// the name clients use, stops the server and returns the text and the logs.
func serveGreedy(t *testing.T, model string, extra ...string) (string, string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	args := append([]string{"--model", model, "--host", "127.0.0.1", "--port", "0", "--weights", "f32", "--threads", "1"}, extra...)
	go func() { done <- run(ctx, args, &logs) }()
	var addr string
	deadline := time.Now().Add(2 * time.Minute)
	for addr == "" {
		select {
		case err := <-done:
			t.Fatalf("serve %s stopped: %v\n%s", model, err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no listening line: %s", logs.String())
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var m struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "listening" {
				addr = m.Addr
			}
		}
	}
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0})
	resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Choices []struct{ Text string }
	}
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Len(t, out.Choices, 1)
	cancel()
	require.NoError(t, <-done)
	return out.Choices[0].Text, logs.String()
}

// TestServeHubModel: `serve --model org/name` downloads stories260K from a local
// stand-in for the Hub (its connection cut mid-transfer and resumed), answers under
// that name, and serves the local file's greedy text; offline it starts from the cache.
func TestServeHubModel(t *testing.T) {
	local := shared.Path(t, "models", "stories260K", "stories260K.gguf")
	data, err := os.ReadFile(local)
	require.NoError(t, err)
	srv := hubtest.New(t, &hubtest.Repo{ID: "vireo-test/stories260K-GGUF", Files: []hubtest.File{{Path: "stories260K.gguf", Data: data, LFS: true}}})
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_CACHE", filepath.Join(t.TempDir(), "hub"))
	t.Setenv("HF_HOME", t.TempDir())
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
	}
	want, _ := serveGreedy(t, local)
	require.NotEmpty(t, want)

	srv.CutAfter(data, int64(len(data)/3), 1)
	got, logs := serveGreedy(t, "vireo-test/stories260K-GGUF")
	require.Equal(t, want, got)
	require.Contains(t, logs, "transfer interrupted: resuming")
	require.Contains(t, logs, `"served_model_name":["vireo-test/stories260K-GGUF"]`)

	srv.Reset()
	got, _ = serveGreedy(t, "vireo-test/stories260K-GGUF", "--offline")
	require.Equal(t, want, got)
	require.Zero(t, srv.Count())

	_, err = parseFlags([]string{"--model", "x/y", "--offline"}, &syncBuffer{})
	require.NoError(t, err)
	err = run(context.Background(), []string{"--model", "vireo-test/absent", "--offline", "--port", "0"}, &syncBuffer{})
	require.ErrorContains(t, err, "vireo-test/absent: offline mode")
	require.Zero(t, srv.Count())
}
