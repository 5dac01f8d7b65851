package servecmd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--model", "m.gguf", "--served-model-name", "a,b", "--served-model-name", "c",
		"--api-key", "k1", "--api-key", "k2", "--kv-cache-memory", "512MiB", "--prefill-streams", "3",
		"--max-waiting", "16", "--request-timeout", "30s", "--port", "0"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, listFlag{"a", "b", "c"}, o.servedNames)
	require.Equal(t, listFlag{"k1", "k2"}, o.apiKeys)
	require.Equal(t, byteSize(512<<20), o.kvCacheMemory)
	require.Equal(t, 3, o.prefillStreams)
	require.Equal(t, 16, o.maxWaiting)
	require.Equal(t, 30*time.Second, o.requestTimeout)

	for args, msg := range map[string]string{
		"--device cuda":            "built without CUDA",
		"--device tpu":             "unknown device",
		"--weights q4":             `invalid value "q4" for flag -weights: must be auto, int8 or f32`,
		"--quantization int4":      `invalid value "int4" for flag -quantization: must be auto, int8 or f32`,
		"--kv-cache-memory 1XB":    "unknown unit",
		"--port 70000":             "out of range",
		"--log-level loud":         "--log-level",
		"--api-key-file /nonexist": "--api-key-file",
		"m1.gguf m2.gguf":          `unexpected argument "m2.gguf" (one model: serve MODEL [flags])`,
		"a.gguf --model b.gguf":    `two models: "a.gguf" and --model "b.gguf"`,
	} {
		_, err := parseFlags(strings.Fields(args), io.Discard)
		require.ErrorContains(t, err, msg, args)
	}

	keys := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(keys, []byte("# keys\nalpha\n\n beta \n"), 0o600))
	o, err = parseFlags([]string{"--api-key-file", keys, "--api-key", "gamma"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, listFlag{"gamma", "alpha", "beta"}, o.apiKeys)
}

// TestPositionalModel: vLLM's `serve MODEL [flags]`, flags before or after it, and the
// old --model; the weights default to the checkpoint's own precision.
func TestPositionalModel(t *testing.T) {
	for _, args := range [][]string{
		{"m.gguf", "--port", "0"}, {"--port", "0", "m.gguf"}, {"--model", "m.gguf", "--port", "0"}, {"m.gguf", "--model", "m.gguf"},
	} {
		o, err := parseFlags(args, io.Discard)
		require.NoError(t, err, "%v", args)
		require.Equal(t, "m.gguf", o.model, "%v", args)
		require.Equal(t, "auto", o.weights.String())
	}
	o, err := parseFlags([]string{"m.gguf", "--weights", "int8"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "int8", o.weights.String(), "--weights is an alias of --quantization")
	o, err = parseFlags([]string{"--quantization", "f32"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "f32", o.weights.String())

	var out, errOut strings.Builder
	require.NoError(t, Run(context.Background(), "vireo serve", []string{"m.gguf", "--version"}, &out, &errOut))
	require.Regexp(t, `^vireo serve \d+\.\d+\.\d+\S* \(.*go1\.\d+.*devices: cpu.*\)\n$`, out.String())
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1073741824": 1 << 30, "512MiB": 512 << 20, "2GiB": 2 << 30, "1.5G": 3 << 29, "100MB": 100e6, "64 KiB": 64 << 10} {
		got, err := parseBytes(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "MiB", "12 parsecs", "-5"} {
		_, err := parseBytes(in)
		require.Error(t, err, in)
	}
}

func TestHelp(t *testing.T) {
	var b strings.Builder
	_, err := parseFlags([]string{"--help"}, &b)
	require.True(t, errors.Is(err, flag.ErrHelp))
	help := b.String()
	for _, s := range []string{"Model:", "Engine (batching and memory):", "HTTP server:", "Limits and shutdown:", "Observability:",
		"--max-num-seqs", "--kv-cache-memory size", "--port int", "(default 8000)", "--api-key key", "synthetic:tiny"} {
		require.Contains(t, help, s)
	}
	// Every flag is in a group (the alias is documented beside its flag).
	grouped := map[string]bool{}
	for _, g := range flagGroups {
		for _, n := range g.names {
			grouped[n] = true
		}
	}
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(line, "  --") {
			name := strings.Fields(line)[0][2:]
			require.True(t, grouped[name], name)
		}
	}
	for _, f := range []string{"model", "tokenizer", "served-model-name", "host", "port", "max-num-seqs", "max-num-batched-tokens",
		"max-model-len", "api-key", "api-key-file", "enable-prefix-caching", "num-prefill-streams", "decode-steps", "weights", "device",
		"threads", "kv-cache-memory", "max-waiting", "shutdown-timeout", "request-timeout", "pprof-addr", "log-level", "max-body-bytes"} {
		require.True(t, grouped[f], "flag --%s is in --help", f)
	}
}

// TestSIGTERMDrains builds the binary, starts a long stream, sends SIGTERM in the
// middle of it, and checks that the stream still finishes, new requests are refused,
// and the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "serve")
	build := exec.Command("go", "build", "-o", bin, "github.com/vireo-ai/vireo/cmd/serve")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--host", "127.0.0.1", "--port", "0", "--served-model-name", "tiny",
		"--shutdown-timeout", "60s", "--threads", "1", "--pprof-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })

	// The log says where it listens (port 0: any free port).
	logs := bufio.NewScanner(stderr)
	var addr, pprofAddr string
	var logLines []string
	for addr == "" && logs.Scan() {
		line := logs.Text()
		logLines = append(logLines, line)
		var m struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log lines are JSON: %q", line)
		switch m.Msg {
		case "listening":
			addr = m.Addr
		case "pprof listening":
			pprofAddr = m.Addr
		}
	}
	require.NotEmpty(t, addr, "no listening line in %v", logLines)
	require.Contains(t, strings.Join(logLines, "\n"), "synthetic", "the log says the default model is synthetic")
	restLogs := make(chan []string, 1)
	go func() {
		var rest []string
		for logs.Scan() {
			rest = append(rest, logs.Text())
		}
		restLogs <- rest
	}()
	base := "http://" + addr

	// pprof is on its own listener only.
	require.NotEmpty(t, pprofAddr)
	pr, err := http.Get("http://" + pprofAddr + "/debug/pprof/cmdline")
	require.NoError(t, err)
	pr.Body.Close()
	require.Equal(t, 200, pr.StatusCode)
	pr, err = http.Get(base + "/debug/pprof/cmdline")
	require.NoError(t, err)
	pr.Body.Close()
	require.Equal(t, 404, pr.StatusCode)

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/completions",
		strings.NewReader(`{"prompt":"hello","max_tokens":400,"ignore_eos":true,"stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	br := bufio.NewReader(resp.Body)
	_, err = br.ReadString('\n') // the first token is out: the request is in flight
	require.NoError(t, err)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	// New requests are refused while the stream drains (or the listener is already
	// closed, if the stream has finished).
	require.Eventually(t, func() bool {
		r, err := http.Post(base+"/v1/completions", "application/json", strings.NewReader(`{"prompt":"x","max_tokens":1}`))
		if err != nil {
			return true
		}
		r.Body.Close()
		return r.StatusCode == 503
	}, 10*time.Second, 10*time.Millisecond)

	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	s := string(rest)
	require.Contains(t, s, `"finish_reason":"length"`, "the stream finished normally")
	require.True(t, strings.HasSuffix(s, "data: [DONE]\n\n"))
	require.NotContains(t, s, `"error"`)

	require.NoError(t, cmd.Wait(), "exit status 0")
	lines := <-restLogs
	joined := strings.Join(lines, "\n")
	require.Contains(t, joined, "signal received: draining")
	require.Regexp(t, `"signal received: draining".*"in_flight":[1-9]`, joined, "SIGTERM came while the stream was running")
	require.Contains(t, joined, `"msg":"stopped"`)
	require.Contains(t, joined, `"completion_tokens":400`)
}
