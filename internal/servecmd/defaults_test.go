package servecmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// startServe runs the command in-process until the test ends; it returns the address
// it listens on and its logs so far (after the listening line).
func startServe(t *testing.T, args ...string) (addr string, logs func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var buf syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"--port", "0", "--threads", "1"}, args...), &buf) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	for addr == "" {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, buf.String())
		case <-time.After(5 * time.Millisecond):
		}
		sc := bufio.NewScanner(strings.NewReader(buf.String()))
		for sc.Scan() {
			var m struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Msg == "listening" {
				addr = m.Addr
			}
		}
	}
	return addr, buf.String
}

// TestBindsLoopbackByDefault: without --host the server listens on 127.0.0.1 only;
// --host 0.0.0.0 opts in to every interface, with a warning when no API key guards it.
func TestBindsLoopbackByDefault(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", o.host)

	const warn = "listening beyond this machine without an API key"
	addr, logs := startServe(t)
	require.True(t, strings.HasPrefix(addr, "127.0.0.1:"), addr)
	require.NotContains(t, logs(), warn)

	addr, logs = startServe(t, "--host", "0.0.0.0")
	require.False(t, strings.HasPrefix(addr, "127."), addr)
	require.Contains(t, logs(), warn)
	var line struct{ Level, Addr string }
	for _, l := range strings.Split(logs(), "\n") {
		if strings.Contains(l, warn) {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
		}
	}
	require.Equal(t, "warn", line.Level)

	_, logs = startServe(t, "--host", "0.0.0.0", "--api-key", "k")
	require.NotContains(t, logs(), warn, "a key guards it")
}

// TestDefaultServedName: a file is served under its name without the extension, a
// directory under its name, a Hub name or synthetic shape as given; the path itself
// is still accepted in "model" (vLLM's default name), but /v1/models lists the short one.
func TestDefaultServedName(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "Llama-3.2-1B-Instruct-Q8_0.gguf")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	hfDir := filepath.Join(dir, "TinyLlama-1.1B-Chat")
	require.NoError(t, os.Mkdir(hfDir, 0o755))
	for in, want := range map[string]string{
		file:                                 "Llama-3.2-1B-Instruct-Q8_0",
		hfDir:                                "TinyLlama-1.1B-Chat",
		hfDir + "/":                          "TinyLlama-1.1B-Chat",
		"bartowski/Llama-3.2-1B-GGUF:Q8_0":   "bartowski/Llama-3.2-1B-GGUF:Q8_0",
		"meta-llama/Llama-3.2-1B-Instruct":   "meta-llama/Llama-3.2-1B-Instruct",
		"org/name/dir/file.gguf@v1":          "org/name/dir/file.gguf@v1",
		"synthetic:tiny":                     "synthetic:tiny",
		filepath.Join(dir, "absent.gguf"):    filepath.Join(dir, "absent.gguf"),
		filepath.Join(dir, "noext"):          filepath.Join(dir, "noext"),
		"../shared/models/x/stories260K.bin": "../shared/models/x/stories260K.bin", // absent here: as given
	} {
		require.Equal(t, want, defaultServedName(in), in)
	}
	wd, err := os.Getwd()
	require.NoError(t, err)
	t.Chdir(hfDir)
	require.Equal(t, "TinyLlama-1.1B-Chat", defaultServedName("."))
	t.Chdir(wd)

	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	addr, _ := startServe(t, path)
	resp, err := http.Get("http://" + addr + "/v1/models")
	require.NoError(t, err)
	var models struct{ Data []struct{ ID string } }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&models))
	resp.Body.Close()
	require.Len(t, models.Data, 1)
	require.Equal(t, "stories260K", models.Data[0].ID)
	for _, name := range []string{"stories260K", path} {
		body, _ := json.Marshal(map[string]any{"model": name, "prompt": "Once", "max_tokens": 2})
		resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		var out struct{ Model string }
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		require.Equal(t, "stories260K", out.Model, "answered under the served name")
	}
}
