// Command soak replays a hostile client's attack mix (issue 29) against a Vireo
// server on loopback for a bounded time, beside well-behaved traffic, and reports
// what it cost the server: resident memory, goroutines, KV-cache usage, requests lost
// or hung, whether /health stayed up, whether the server went back to idle, and how
// its shutdown went. It is a tool for people, not part of CI.
//
// By default it builds cmd/serve, starts it on 127.0.0.1 with the flags after "--",
// and stops it with SIGTERM at the end:
//
//	go run ./scripts/soak -duration 2m -- --model ../shared/models/stories260K/stories260K.bin
//
// or it attacks a server already running on loopback (-pid reads its RSS from /proc):
//
//	go run ./scripts/soak -url http://127.0.0.1:8000 -pid 1234
//
// The mix: valid requests (completions and chats, streamed and not, n up to 4) whose
// every answer is checked; bad requests (malformed JSON, wrong types, wrong values beside
// unknown fields, which are ignored, huge and deep values); token bombs (8 MiB prompts of ids, text and chat, 8 MiB field
// names and model values, responses of millions of tokens, bodies over the limit);
// slowloris connections (headers or bodies a byte at a time, silent connections);
// storms of concurrent streams; and clients that disconnect mid-stream, mid-body or
// while queued.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	duration    time.Duration
	url         string
	pid         int
	serve       string
	apiKey      string
	storm       int
	slowloris   int
	legit       int
	stormEvery  time.Duration
	jsonOut     string
	serverFlags []string
}

func main() {
	o := options{}
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "how long the attack mix runs (the whole run is bounded by this plus 2 minutes)")
	flag.StringVar(&o.url, "url", "", "attack a server already running at this loopback URL instead of starting one")
	flag.IntVar(&o.pid, "pid", 0, "with -url: the server's process id, to read its RSS from /proc (else from its metrics)")
	flag.StringVar(&o.serve, "serve", "", "the cmd/serve binary to start (default: go build ./cmd/serve into a temporary directory)")
	flag.StringVar(&o.apiKey, "api-key", "", "API key to send (a started server gets it through VLLM_API_KEY)")
	flag.IntVar(&o.storm, "storm", 300, "concurrent streams per storm")
	flag.DurationVar(&o.stormEvery, "storm-every", 20*time.Second, "time between storms")
	flag.IntVar(&o.slowloris, "slowloris", 64, "slowloris connections held open at once")
	flag.IntVar(&o.legit, "clients", 4, "well-behaved clients sending requests back to back")
	flag.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	flag.Parse()
	o.serverFlags = flag.Args()
	if err := soak(o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// counts are the outcomes of one kind of traffic.
type counts struct {
	sent, ok, refused, unexpected, lost, hung, cut atomic.Int64
	mu                                             sync.Mutex
	examples                                       []string // the first unexpected outcomes
}

func (c *counts) bad(format string, args ...any) {
	c.mu.Lock()
	if len(c.examples) < 5 {
		c.examples = append(c.examples, fmt.Sprintf(format, args...))
	}
	c.mu.Unlock()
}

type sample struct {
	at                         time.Duration
	rssMiB                     float64
	goroutines                 float64
	kv, running, waiting, inFl float64
	respTok                    float64
}

type run struct {
	o                                       options
	base                                    string
	client                                  *http.Client
	pid                                     int
	model                                   string
	ctxLen                                  int
	start                                   time.Time
	kinds                                   map[string]*counts
	order                                   []string
	healthN                                 atomic.Int64
	healthF                                 atomic.Int64
	mu                                      sync.Mutex
	samples                                 []sample
	maxLog                                  atomic.Int64 // longest server log line (started servers)
	logErrs                                 atomic.Int64 // server log lines at level error
	slowOpened, slowClosedByServer, slow408 atomic.Int64
}

func (r *run) kind(name string) *counts {
	if c, ok := r.kinds[name]; ok {
		return c
	}
	c := &counts{}
	r.kinds[name] = c
	r.order = append(r.order, name)
	return c
}

func soak(o options) error {
	deadline := time.Now().Add(o.duration + 2*time.Minute) // the whole run is bounded
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	r := &run{o: o, kinds: map[string]*counts{}, pid: o.pid}
	for _, k := range []string{"valid", "storm", "bad request", "token bomb", "disconnect"} {
		r.kind(k)
	}
	r.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0, DisableCompression: true}}

	var srv *exec.Cmd
	var srvDone chan error
	var tmp string
	if o.url == "" {
		var err error
		tmp, err = os.MkdirTemp("", "vireo-soak-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if srv, srvDone, err = r.startServer(ctx, tmp); err != nil {
			return err
		}
		defer func() {
			if srv.ProcessState == nil {
				srv.Process.Kill()
			}
		}()
	} else {
		u, err := url.Parse(o.url)
		if err != nil {
			return err
		}
		if !loopback(u.Hostname()) {
			return fmt.Errorf("-url %s is not a loopback address: soak attacks only servers on this machine", o.url)
		}
		r.base = strings.TrimSuffix(o.url, "/")
	}
	if err := r.discover(ctx); err != nil {
		return err
	}
	load0 := loadavg()
	fmt.Fprintf(os.Stderr, "soak: %s serving %q (context %d) on %s; attacking for %v\n", r.who(), r.model, r.ctxLen, r.base, o.duration)

	// Warm up and take the baseline.
	r.validOnce(ctx, r.kind("valid"), 0)
	time.Sleep(time.Second)
	before := r.sampleNow()

	r.start = time.Now()
	actx, stop := context.WithTimeout(ctx, o.duration)
	defer stop()
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	spawn(func() { r.monitor(actx) })
	for i := 0; i < o.legit; i++ {
		spawn(func() { r.validLoop(actx, i) })
	}
	spawn(func() { r.badLoop(actx) })
	spawn(func() { r.bombLoop(actx) })
	spawn(func() { r.stormLoop(actx) })
	spawn(func() { r.disconnectLoop(actx) })
	for i := 0; i < o.slowloris; i++ {
		spawn(func() { r.slowLoop(actx, i) })
	}
	wg.Wait()
	attacked := time.Since(r.start)

	// Back to idle?
	idleAt, idle := time.Duration(-1), false
	t0 := time.Now()
	for time.Since(t0) < 30*time.Second && ctx.Err() == nil {
		s := r.sampleNow()
		if s.running == 0 && s.waiting == 0 && s.kv == 0 && s.inFl == 0 {
			idleAt, idle = time.Since(t0), true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	settle(r)
	after := r.sampleNow()
	load1 := loadavg()

	rep := r.report(before, after, attacked, idle, idleAt, load0, load1)
	if srv != nil {
		t := time.Now()
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-srvDone:
			rep.ShutdownSeconds = time.Since(t).Seconds()
			rep.ShutdownExit = 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				rep.ShutdownExit = ee.ExitCode()
			}
		case <-time.After(40 * time.Second):
			srv.Process.Kill()
			rep.ShutdownSeconds, rep.ShutdownExit = -1, -1
		}
		rep.LongestLogLine = r.maxLog.Load()
		rep.ErrorLogLines = r.logErrs.Load()
	}
	rep.print(os.Stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if rep.Lost > 0 || rep.Hung > 0 || rep.HealthFailures > 0 || !idle || rep.Unexpected > 0 {
		return errors.New("the server lost, hung or mishandled requests, failed health checks or did not go idle: see the report")
	}
	return nil
}

func (r *run) who() string {
	if r.pid > 0 {
		return "pid " + strconv.Itoa(r.pid)
	}
	return "server"
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// startServer builds (unless -serve) and starts cmd/serve on 127.0.0.1:0 and waits
// for its "listening" line.
func (r *run) startServer(ctx context.Context, tmp string) (*exec.Cmd, chan error, error) {
	bin := r.o.serve
	if bin == "" {
		bin = filepath.Join(tmp, "serve")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/serve")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("go build ./cmd/serve (run soak from the repository root): %v\n%s", err, out)
		}
	}
	args := append([]string{"--host", "127.0.0.1", "--port", "0", "--shutdown-timeout", "10s"}, r.o.serverFlags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = os.Environ()
	if r.o.apiKey != "" {
		cmd.Env = append(cmd.Env, "VLLM_API_KEY="+r.o.apiKey)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	r.pid = cmd.Process.Pid
	logf, _ := os.Create(filepath.Join(tmp, "serve.log"))
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			if n := int64(len(line)); n > r.maxLog.Load() {
				r.maxLog.Store(n)
			}
			if bytes.Contains(line, []byte(`"level":"error"`)) {
				r.logErrs.Add(1)
			}
			if logf != nil {
				logf.Write(append(line, '\n'))
			}
			if !sent {
				var m struct{ Msg, Addr string }
				if json.Unmarshal(line, &m) == nil && m.Msg == "listening" {
					addr <- m.Addr
					sent = true
				}
			}
		}
		if !sent {
			close(addr)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case a, ok := <-addr:
		if !ok {
			return nil, nil, fmt.Errorf("the server exited before listening: %v", <-done)
		}
		r.base = "http://" + a
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return nil, nil, errors.New("the server did not start listening within 2 minutes")
	}
	return cmd, done, nil
}

// discover reads the served model and its context.
func (r *run) discover(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/v1/models", nil)
	r.auth(req)
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var m struct {
		Data []struct {
			ID          string `json:"id"`
			MaxModelLen int    `json:"max_model_len"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Data) == 0 {
		return fmt.Errorf("GET /v1/models: status %d, %v", resp.StatusCode, err)
	}
	r.model, r.ctxLen = m.Data[0].ID, m.Data[0].MaxModelLen
	return nil
}

func (r *run) auth(req *http.Request) {
	if r.o.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.apiKey)
	}
}

// post sends a body and returns the response (nil with the error when none came).
func (r *run) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	r.auth(req)
	return r.client.Do(req)
}

// --- valid traffic -----------------------------------------------------------

// validLoop sends valid requests back to back and checks every answer.
func (r *run) validLoop(ctx context.Context, seed int) {
	c := r.kind("valid")
	for i := 0; ctx.Err() == nil; i++ {
		r.validOnce(ctx, c, seed*100003+i)
	}
}

func (r *run) validOnce(ctx context.Context, c *counts, i int) {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	maxTok := 8 + rng.IntN(40)
	n := 1 + rng.IntN(4)
	stream := rng.IntN(2) == 0
	var path, body string
	if rng.IntN(2) == 0 {
		path = "/v1/completions"
		body = fmt.Sprintf(`{"prompt":"Once upon a time, there was a","max_tokens":%d,"n":%d,"stream":%v,"temperature":0.8,"seed":%d}`, maxTok, n, stream, i)
	} else {
		path = "/v1/chat/completions"
		body = fmt.Sprintf(`{"messages":[{"role":"user","content":"Tell me a story about a cat."}],"max_tokens":%d,"n":%d,"stream":%v,"logprobs":true,"top_logprobs":2}`, maxTok, n, stream)
	}
	r.exchange(ctx, c, path, body, stream, n)
}

// exchange sends one valid request and classifies the outcome: ok (complete answer),
// refused (429 or 503), lost (an answer cut short or malformed), hung (no answer in
// 60 s), cut (stopped by the end of the soak), unexpected (another status).
func (r *run) exchange(ctx context.Context, c *counts, path, body string, stream bool, n int) {
	c.sent.Add(1)
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	resp, err := r.post(rctx, path, []byte(body))
	if err != nil {
		r.failed(ctx, rctx, c, "no response: %v", err)
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case 200:
	case 429, 503:
		io.Copy(io.Discard, resp.Body)
		c.refused.Add(1)
		return
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		c.unexpected.Add(1)
		c.bad("%s: status %d: %s", path, resp.StatusCode, b)
		return
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.failed(ctx, rctx, c, "%s: reading the answer: %v", path, err)
		return
	}
	if why := checkAnswer(b, stream, n); why != "" {
		c.lost.Add(1)
		c.bad("%s: %s", path, why)
		return
	}
	c.ok.Add(1)
}

// failed classifies a transport failure: the soak's end, a timeout, or a loss.
func (r *run) failed(soakCtx, reqCtx context.Context, c *counts, format string, args ...any) {
	switch {
	case soakCtx.Err() != nil:
		c.cut.Add(1)
	case reqCtx.Err() != nil:
		c.hung.Add(1)
		c.bad(format, args...)
	default:
		c.lost.Add(1)
		c.bad(format, args...)
	}
}

// checkAnswer says what is wrong with a 200 answer ("" for nothing): every one of the
// n choices must end with stop or length, and a stream must end with [DONE].
func checkAnswer(b []byte, stream bool, n int) string {
	finished := map[int]string{}
	if !stream {
		var v struct {
			Choices []struct {
				Index        int    `json:"index"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return "malformed JSON: " + err.Error()
		}
		for _, c := range v.Choices {
			finished[c.Index] = c.FinishReason
		}
	} else {
		s := string(b)
		if !strings.HasSuffix(s, "data: [DONE]\n\n") {
			return "stream without [DONE]"
		}
		for _, line := range strings.Split(s, "\n") {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var v struct {
				Choices []struct {
					Index        int     `json:"index"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Error any `json:"error"`
			}
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				return "malformed chunk: " + err.Error()
			}
			if v.Error != nil {
				return fmt.Sprintf("error event: %v", v.Error)
			}
			for _, c := range v.Choices {
				if c.FinishReason != nil {
					finished[c.Index] = *c.FinishReason
				}
			}
		}
	}
	for i := 0; i < n; i++ {
		if f := finished[i]; f != "stop" && f != "length" {
			return fmt.Sprintf("choice %d finished with %q", i, f)
		}
	}
	return ""
}

// stormLoop fires storms of concurrent streams.
func (r *run) stormLoop(ctx context.Context) {
	c := r.kind("storm")
	wait := r.o.stormEvery / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = r.o.stormEvery
		var wg sync.WaitGroup
		for i := 0; i < r.o.storm; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body := fmt.Sprintf(`{"prompt":"Lily and Ben were playing","max_tokens":24,"stream":true,"stream_options":{"include_usage":true},"seed":%d}`, i)
				r.exchange(ctx, c, "/v1/completions", body, true, 1)
			}()
		}
		wg.Wait()
	}
}

// --- bad requests and bombs -------------------------------------------------

type badReq struct {
	method, path, ctype, body string
}

func badRequests() []badReq {
	const C, Chat = "/v1/completions", "/v1/chat/completions"
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	var out []badReq
	for _, b := range []string{
		`{"prompt":`, `{"prompt":"x",}`, ``, `["x"]`, `{"prompt":"x"} {}`, `{"prompt":"x","max_token":5,"max_tokens":0}`,
		`{"prompt":"x","MAX_TOKENS":5,"max_tokens":-1}`, `{"prompt":"x","temperature":"hot"}`, `{"prompt":"x","max_tokens":1.5}`,
		`{"prompt":42}`, `{"prompt":["a","b"]}`, `{"prompt":[1,99999999]}`, `{"prompt":[-1]}`, `{"prompt":"x","max_tokens":0}`,
		`{"prompt":"x","temperature":3}`, `{"prompt":"x","top_p":0}`, `{"prompt":"x","n":0}`, `{"prompt":"x","n":129}`,
		`{"prompt":"x","logprobs":21}`, `{"prompt":"x","stop":7}`, `{"prompt":"x","repetition_penalty":1e308}`,
		`{"prompt":"x","max_tokens":1e400}`, `{"prompt":"x","echo":true}`, `{"prompt":"x","logit_bias":{"5":1}}`,
		`{"prompt":"x","stream_options":{"include_usage":true}}`, `{"prompt":"\xff\xfe"}`, `{"prompt":` + deep + `}`,
		`{"model":"gpt-4","prompt":"x"}`, `{"prompt":"x","max_tokens":99999999}`, `{"prompt":"x","seed":"7"}`,
	} {
		out = append(out, badReq{http.MethodPost, C, "application/json", b})
	}
	for _, b := range []string{
		`{"messages":"hi"}`, `{"messages":[]}`, `{"messages":[{"role":"wizard","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x"}}]}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}`,
		`{"messages":[{"role":"user","content":5}]}`, `{"messages":[{"Role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"top_logprobs":3}`,
	} {
		out = append(out, badReq{http.MethodPost, Chat, "application/json", b})
	}
	return append(out,
		badReq{http.MethodPost, C, "multipart/form-data; boundary=x", "--x\r\n"},
		badReq{http.MethodPost, C, "application/x-www-form-urlencoded", "prompt=x"},
		badReq{http.MethodGet, C, "", ""},
		badReq{http.MethodPost, "/v1/embeddings", "application/json", `{}`},
		badReq{http.MethodPost, "/v1/" + strings.Repeat("a", 60000), "application/json", `{}`},
	)
}

// badLoop cycles through malformed requests: each must get a 4xx, never a 5xx.
func (r *run) badLoop(ctx context.Context) {
	c := r.kind("bad request")
	reqs := badRequests()
	for i := 0; ctx.Err() == nil; i++ {
		b := reqs[i%len(reqs)]
		r.expect4xx(ctx, c, b.method, b.path, b.ctype, []byte(b.body))
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *run) expect4xx(ctx context.Context, c *counts, method, path, ctype string, body []byte) {
	c.sent.Add(1)
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, r.base+path, bytes.NewReader(body))
	if err != nil {
		c.unexpected.Add(1)
		return
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	r.auth(req)
	resp, err := r.client.Do(req)
	if err != nil {
		r.failed(ctx, rctx, c, "%s %.60s: %v", method, path, err)
		return
	}
	defer resp.Body.Close()
	n, _ := io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode == 429 || resp.StatusCode == 503:
		c.refused.Add(1)
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && n < 8192:
		c.ok.Add(1)
	default:
		c.unexpected.Add(1)
		c.bad("%s %.60s (%.80s): status %d, %d-byte answer", method, path, body, resp.StatusCode, n)
	}
}

// bombLoop sends requests that are cheap to write and used to be expensive to serve.
func (r *run) bombLoop(ctx context.Context) {
	c := r.kind("token bomb")
	const size = 8<<20 - 256
	story := strings.Repeat("Once upon a time ", size/17)
	huge := strings.Repeat("x", size)
	maxTok := max(1, min(1500, r.ctxLen-8))
	bombs := [][2]string{
		{"/v1/completions", `{"prompt":[` + strings.Repeat("1,", size/2-8) + `1],"max_tokens":1}`},
		{"/v1/completions", `{"prompt":"` + story + `","max_tokens":1}`},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"` + story + `"}],"max_tokens":1}`},
		{"/v1/completions", `{"prompt":"x","max_tokens":0,"` + huge + `":1}`}, // the unknown field is ignored; max_tokens is wrong
		{"/v1/completions", `{"prompt":"x","model":"` + huge + `"}`},
		{"/v1/chat/completions", `{"messages":[{"role":"` + huge + `","content":"x"}]}`},
		{"/v1/completions", fmt.Sprintf(`{"prompt":"Once","max_tokens":%d,"n":128,"logprobs":20,"ignore_eos":true}`, maxTok)},
		{"/v1/completions", `{"prompt":"` + strings.Repeat("a", 9<<20) + `"}`}, // over the body limit
	}
	for i := 0; ctx.Err() == nil; i++ {
		b := bombs[i%len(bombs)]
		r.expect4xx(ctx, c, http.MethodPost, b[0], "application/json", []byte(b[1]))
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// --- slow and vanishing clients -------------------------------------------------

// slowLoop holds one slowloris connection at a time, in turn: headers a byte at a
// time, a body a byte at a time, or nothing at all. The server must close each
// within its header or read timeout without it costing anyone else.
func (r *run) slowLoop(ctx context.Context, i int) {
	host := strings.TrimPrefix(r.base, "http://")
	for k := 0; ctx.Err() == nil; k++ {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return
		}
		r.slowOpened.Add(1)
		// The server either answers (408 for a body that stops arriving) or closes the
		// connection (a header that does not arrive); either ends this connection.
		closed := make(chan struct{})
		var got408 atomic.Bool
		go func() {
			line, _ := bufio.NewReader(conn).ReadString('\n')
			got408.Store(strings.Contains(line, " 408 "))
			close(closed)
		}()
		var msg string
		switch (i + k) % 3 {
		case 0: // headers, a byte at a time
			msg = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Padding: " + strings.Repeat("a", 4096)
		case 1: // a complete header, then a body a byte at a time (longer than the read timeout lets through)
			body := `{"prompt":"` + strings.Repeat("Once upon a time ", 20) + `","max_tokens":4}`
			fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", len(body))
			if r.o.apiKey != "" {
				fmt.Fprintf(conn, "Authorization: Bearer %s\r\n", r.o.apiKey)
			}
			fmt.Fprint(conn, "\r\n")
			msg = body
		case 2: // nothing
		}
		tick := time.NewTicker(time.Second)
	trickle:
		for j := 0; ; j++ {
			select {
			case <-ctx.Done():
				break trickle
			case <-closed:
				r.slowClosedByServer.Add(1)
				if got408.Load() {
					r.slow408.Add(1)
				}
				break trickle
			case <-tick.C:
				if j < len(msg) {
					conn.Write([]byte{msg[j]})
				}
			}
		}
		tick.Stop()
		conn.Close()
	}
}

// disconnectLoop starts requests and walks away: mid-stream, mid-body, and while the
// request waits or runs without a stream.
func (r *run) disconnectLoop(ctx context.Context) {
	c := r.kind("disconnect")
	host := strings.TrimPrefix(r.base, "http://")
	for i := 0; ctx.Err() == nil; i++ {
		c.sent.Add(1)
		switch i % 3 {
		case 0: // a long stream, dropped after a few chunks
			rctx, cancel := context.WithCancel(ctx)
			resp, err := r.post(rctx, "/v1/completions", []byte(`{"prompt":"Once","max_tokens":1000,"ignore_eos":true,"stream":true}`))
			if err == nil {
				br := bufio.NewReader(resp.Body)
				for j := 0; j < 6; j++ {
					if _, err := br.ReadString('\n'); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
			cancel()
		case 1: // half a body, then gone
			conn, err := net.Dial("tcp", host)
			if err == nil {
				fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"prompt\":\"Once up")
				time.Sleep(20 * time.Millisecond)
				conn.Close()
			}
		case 2: // a non-streaming request abandoned while it runs
			rctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
			resp, err := r.post(rctx, "/v1/completions", []byte(`{"prompt":"Once","max_tokens":800,"ignore_eos":true,"n":2}`))
			if err == nil {
				resp.Body.Close()
			}
			cancel()
		}
		c.ok.Add(1)
		time.Sleep(20 * time.Millisecond)
	}
}

// --- monitoring ---------------------------------------------------------------

func (r *run) monitor(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.healthN.Add(1)
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(hctx, http.MethodGet, r.base+"/health", nil)
		resp, err := r.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if (err != nil || resp.StatusCode != 200) && ctx.Err() == nil {
			r.healthF.Add(1)
		}
		cancel()
		s := r.sampleNow()
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
	}
}

func (r *run) sampleNow() sample {
	s := sample{at: time.Since(r.start)}
	m := r.metrics()
	s.goroutines = m["go_goroutines"]
	s.kv = m["vllm:kv_cache_usage_perc"]
	s.running = m["vllm:num_requests_running"]
	s.waiting = m["vllm:num_requests_waiting"]
	s.inFl = m["vireo_requests_in_flight"]
	s.respTok = m["vireo_inflight_response_tokens"]
	s.rssMiB = m["process_resident_memory_bytes"] / (1 << 20)
	if r.pid > 0 {
		if kb := procStatus(r.pid, "VmRSS"); kb > 0 {
			s.rssMiB = float64(kb) / 1024
		}
	}
	return s
}

// metrics scrapes /metrics into name -> value (labels dropped; the first series of a
// name wins).
func (r *run) metrics() map[string]float64 {
	out := map[string]float64{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/metrics", nil)
	resp, err := r.client.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "{")
		if _, seen := out[name]; seen {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out
}

// procStatus reads a kB field of /proc/<pid>/status.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// settle closes the soak's own idle keep-alive connections (each holds a server
// goroutine) and waits a moment, so the last sample counts what the server kept.
func settle(r *run) {
	r.client.CloseIdleConnections()
	time.Sleep(2 * time.Second)
}

// --- the report ---------------------------------------------------------------

type kindReport struct {
	Kind                                           string
	Sent, OK, Refused, Unexpected, Lost, Hung, Cut int64
	Examples                                       []string `json:",omitempty"`
}

type report struct {
	Duration                     float64
	LoadAvgStart, LoadAvgEnd     string
	Kinds                        []kindReport
	Lost, Hung, Unexpected       int64
	HealthChecks, HealthFailures int64
	RSSMiBStart, RSSMiBMax       float64
	RSSMiBEnd, RSSMiBPeakHWM     float64
	GoroutinesStart              float64
	GoroutinesMax                float64
	GoroutinesEnd                float64
	KVUsageMax, KVUsageEnd       float64
	WaitingMax                   float64
	InflightResponseTokensMax    float64
	SlowlorisOpened              int64
	SlowlorisClosedByServer      int64
	Slowloris408                 int64
	IdleAfter                    bool
	IdleAfterSeconds             float64
	ShutdownSeconds              float64 `json:",omitempty"`
	ShutdownExit                 int
	LongestLogLine               int64 `json:",omitempty"`
	ErrorLogLines                int64
}

func (r *run) report(before, after sample, attacked time.Duration, idle bool, idleAt time.Duration, load0, load1 string) *report {
	rep := &report{Duration: attacked.Seconds(), LoadAvgStart: load0, LoadAvgEnd: load1,
		RSSMiBStart: before.rssMiB, RSSMiBEnd: after.rssMiB, GoroutinesStart: before.goroutines, GoroutinesEnd: after.goroutines,
		KVUsageEnd: after.kv, IdleAfter: idle, IdleAfterSeconds: idleAt.Seconds(),
		HealthChecks: r.healthN.Load(), HealthFailures: r.healthF.Load(),
		SlowlorisOpened: r.slowOpened.Load(), SlowlorisClosedByServer: r.slowClosedByServer.Load(), Slowloris408: r.slow408.Load()}
	for _, s := range r.samples {
		rep.RSSMiBMax = max(rep.RSSMiBMax, s.rssMiB)
		rep.GoroutinesMax = max(rep.GoroutinesMax, s.goroutines)
		rep.KVUsageMax = max(rep.KVUsageMax, s.kv)
		rep.WaitingMax = max(rep.WaitingMax, s.waiting)
		rep.InflightResponseTokensMax = max(rep.InflightResponseTokensMax, s.respTok)
	}
	if r.pid > 0 {
		rep.RSSMiBPeakHWM = float64(procStatus(r.pid, "VmHWM")) / 1024
	}
	for _, k := range r.order {
		c := r.kinds[k]
		kr := kindReport{Kind: k, Sent: c.sent.Load(), OK: c.ok.Load(), Refused: c.refused.Load(), Unexpected: c.unexpected.Load(),
			Lost: c.lost.Load(), Hung: c.hung.Load(), Cut: c.cut.Load(), Examples: c.examples}
		rep.Kinds = append(rep.Kinds, kr)
		rep.Lost += kr.Lost
		rep.Hung += kr.Hung
		rep.Unexpected += kr.Unexpected
	}
	return rep
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n## Soak: %.0f s of the attack mix (load average %s at the start, %s at the end)\n\n", rep.Duration, rep.LoadAvgStart, rep.LoadAvgEnd)
	fmt.Fprintln(w, "| traffic | sent | answered as expected | refused (429/503) | unexpected | lost | hung | cut by the end |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, k := range rep.Kinds {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d |\n", k.Kind, k.Sent, k.OK, k.Refused, k.Unexpected, k.Lost, k.Hung, k.Cut)
	}
	fmt.Fprintf(w, "| slowloris connections | %d | closed by the server: %d (408: %d) | | | | | |\n\n", rep.SlowlorisOpened, rep.SlowlorisClosedByServer, rep.Slowloris408)
	fmt.Fprintln(w, "| server | before | max | after |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fmt.Fprintf(w, "| RSS (MiB) | %.0f | %.0f (VmHWM %.0f) | %.0f |\n", rep.RSSMiBStart, rep.RSSMiBMax, rep.RSSMiBPeakHWM, rep.RSSMiBEnd)
	fmt.Fprintf(w, "| goroutines | %.0f | %.0f | %.0f |\n", rep.GoroutinesStart, rep.GoroutinesMax, rep.GoroutinesEnd)
	fmt.Fprintf(w, "| KV-cache usage | | %.0f%% | %.0f%% |\n", 100*rep.KVUsageMax, 100*rep.KVUsageEnd)
	fmt.Fprintf(w, "| waiting requests | | %.0f | |\n", rep.WaitingMax)
	fmt.Fprintf(w, "| reserved response tokens | | %.0f | |\n\n", rep.InflightResponseTokensMax)
	fmt.Fprintf(w, "- /health: %d checks, %d failed\n", rep.HealthChecks, rep.HealthFailures)
	fmt.Fprintf(w, "- back to idle (nothing running or waiting, no KV block held, no request in flight): %v, %.1f s after the attack\n", rep.IdleAfter, rep.IdleAfterSeconds)
	if rep.ShutdownSeconds != 0 {
		fmt.Fprintf(w, "- SIGTERM: exit %d after %.2f s; longest log line %d bytes; %d error log lines\n", rep.ShutdownExit, rep.ShutdownSeconds, rep.LongestLogLine, rep.ErrorLogLines)
	}
	for _, k := range rep.Kinds {
		for _, e := range k.Examples {
			fmt.Fprintf(w, "- %s: %s\n", k.Kind, e)
		}
	}
}
