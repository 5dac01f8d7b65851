package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/engine/enginetest"
)

// BenchmarkStreams256 measures the server's own cost: 256 concurrent streaming
// completions on a Fake model whose forward pass only sleeps, so what the server
// process spends is HTTP, JSON, SSE writes, the engine's bookkeeping and sampling —
// not arithmetic. The clients run in a child process (this test binary,
// TestLoadGenerator), so the process rusage is the server's alone. Reported: server
// CPU µs per streamed token (target < 20), tokens/s, and the client's µs/token.
//
// Two shapes: tinyllama-1.1b (vocab 32000), where the engine's per-token work over
// the whole vocabulary (the Fake's logit rows, greedy sampling's copy and argmax)
// shows, and tiny (vocab 259), where that work vanishes and what is left is the
// server and the engine's bookkeeping.
//
//	go test ./server/ -run '^$' -bench Streams256 -benchtime 3x [-cpuprofile cpu.prof]
func BenchmarkStreams256(b *testing.B) {
	for _, shape := range []string{"tinyllama-1.1b", "tiny"} {
		b.Run(shape, func(b *testing.B) { benchStreams(b, "synthetic:"+shape) })
	}
}

func benchStreams(b *testing.B, shape string) {
	const streams, maxTokens = 256, 128
	step := 5 * time.Millisecond
	if v := os.Getenv("VIREO_BENCH_STEP"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(b, err)
		step = d
	}
	m, tok, err := enginetest.NewFake(shape, cpu.New(cpu.Options{Threads: 1}), step)
	require.NoError(b, err)
	eng, err := engine.New(m, tok, engine.Options{MaxNumSeqs: streams, NumBlocks: streams * 10, MaxWaiting: 2 * streams})
	require.NoError(b, err)
	defer eng.Close()
	// A real JSON logger (to nowhere): the per-request log line is part of the cost.
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	s, err := New(Config{ModelNames: []string{"fake"}}, eng, tok, log)
	require.NoError(b, err)
	hs := s.NewHTTPServer("127.0.0.1:0")
	ln, err := netListen()
	require.NoError(b, err)
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + ln.Addr().String()

	b.ResetTimer()
	var before syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &before))
	t0 := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadGenerator$")
	cmd.Env = append(os.Environ(), "VIREO_LOADGEN_URL="+url, "VIREO_LOADGEN_STREAMS="+strconv.Itoa(streams),
		"VIREO_LOADGEN_ROUNDS="+strconv.Itoa(b.N), "VIREO_LOADGEN_MAX_TOKENS="+strconv.Itoa(maxTokens))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(b, err, "load generator: %s\n%s", out, stderr.String())
	elapsed := time.Since(t0)
	var after syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &after))
	b.StopTimer()

	var res loadResult
	_, line, ok := bytes.Cut(out, []byte("LOADGEN "))
	require.True(b, ok, "load generator output: %s", out)
	line, _, _ = bytes.Cut(line, []byte("\n"))
	require.NoError(b, json.Unmarshal(line, &res), "load generator output: %s", out)
	require.Zero(b, res.Errors, "load generator: %s", res.FirstErr)
	require.Equal(b, int64(streams*maxTokens*b.N), res.Tokens)
	cpuUsed := tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
	client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b.ReportMetric(float64(cpuUsed.Microseconds())/float64(res.Tokens), "server-µs/token")
	b.ReportMetric(float64(res.Tokens)/elapsed.Seconds(), "tokens/s")
	b.ReportMetric(float64(client.Microseconds())/float64(res.Tokens), "client-µs/token")
	b.ReportMetric(0, "ns/op")
	st := eng.Stats()
	require.Equal(b, st.NumBlocks, st.FreeBlocks)
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

type loadResult struct {
	Tokens   int64  `json:"tokens"`
	Chunks   int64  `json:"chunks"`
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_error"`
}

// TestLoadGenerator is BenchmarkStreams256's client side, run in a child process; it
// does nothing in a normal test run.
func TestLoadGenerator(t *testing.T) {
	url := os.Getenv("VIREO_LOADGEN_URL")
	if url == "" {
		t.Skip("the load generator of BenchmarkStreams256 (runs only as its child process)")
	}
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	streams, rounds, maxTokens := atoi("VIREO_LOADGEN_STREAMS"), atoi("VIREO_LOADGEN_ROUNDS"), atoi("VIREO_LOADGEN_MAX_TOKENS")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams, DisableCompression: true}}
	var res loadResult
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if res.Errors == 0 {
			res.FirstErr = err.Error()
		}
		res.Errors++
	}
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		for i := 0; i < streams; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"model":"fake","prompt":"request %d of round %d","max_tokens":%d,"ignore_eos":true,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`, i, round, maxTokens)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					fail(err)
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					b, _ := io.ReadAll(resp.Body)
					fail(fmt.Errorf("status %d: %s", resp.StatusCode, b))
					return
				}
				br := bufio.NewReaderSize(resp.Body, 64<<10)
				var chunks, tokens int64
				done := false
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						break
					}
					if !bytes.HasPrefix(line, []byte("data: ")) {
						continue
					}
					chunks++
					if bytes.HasPrefix(line, []byte("data: [DONE]")) {
						done = true
					} else if bytes.Contains(line, []byte(`"usage":{`)) {
						var u struct {
							Usage usage `json:"usage"`
						}
						if err := json.Unmarshal(line[len("data: "):], &u); err != nil {
							fail(err)
							return
						}
						tokens = int64(u.Usage.CompletionTokens)
					}
				}
				if !done || tokens != int64(maxTokens) {
					fail(fmt.Errorf("stream ended early: done=%v tokens=%d", done, tokens))
				}
				mu.Lock()
				res.Tokens += tokens
				res.Chunks += chunks
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("\nLOADGEN %s\n", b)
}
