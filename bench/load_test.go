package bench

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/server"
)

// storiesServer serves stories260K through the real server on an httptest listener.
func storiesServer(t *testing.T) (*httptest.Server, *llm.Loaded) {
	t.Helper()
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", cpu.New(cpu.Options{Threads: 1}), model.Options{Weights: model.WeightsInt8})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{MaxNumSeqs: 16})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	srv, err := server.New(server.Config{ModelNames: []string{"stories260K"}, APIKeys: []string{"sk-test"}}, eng, m.Tokenizer, nil)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, m
}

// pctSorted is the test's own percentile: sort, then interpolate between the ranks
// around p/100*(n-1), written apart from the package's code.
func pctSorted(xs []float64, p float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := p / 100 * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

func requireDist(t *testing.T, what string, xs []float64, d Dist) {
	t.Helper()
	require.Equal(t, len(xs), d.N, what)
	if len(xs) == 0 {
		return
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	for _, c := range []struct {
		name      string
		want, got float64
	}{{"mean", sum / float64(len(xs)), d.Mean}, {"p50", pctSorted(xs, 50), d.P50}, {"p90", pctSorted(xs, 90), d.P90}, {"p99", pctSorted(xs, 99), d.P99}} {
		require.InDelta(t, c.want, c.got, 1e-9*math.Max(1, math.Abs(c.want)), "%s %s", what, c.name)
	}
}

// requireSVGs parses every chart as XML, start to end.
func requireSVGs(t *testing.T, dir string, r *Report) {
	t.Helper()
	require.NotEmpty(t, r.Charts)
	for _, c := range r.Charts {
		f, err := os.Open(filepath.Join(dir, c.File))
		require.NoError(t, err)
		d := xml.NewDecoder(f)
		root := ""
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			require.NoError(t, err, c.File)
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		f.Close()
		require.Equal(t, "svg", root, c.File)
	}
}

// readReport reads report.json back.
func readReport(t *testing.T, dir string) *Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "report.json"))
	require.NoError(t, err)
	var r Report
	require.NoError(t, json.Unmarshal(data, &r))
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "## Executive summary")
	require.Contains(t, string(md), "## Risks and mitigations")
	return &r
}

// TestLoadAgainstServer drives the real server on stories260K for a few seconds at
// concurrency 1 and 4, writes the report, and checks every aggregate in report.json
// against the raw per-request records.
func TestLoadAgainstServer(t *testing.T) {
	hs, m := storiesServer(t)
	target := &HTTPTarget{BaseURL: hs.URL, APIKey: "sk-test"}
	name, err := target.ServedModel(context.Background())
	require.NoError(t, err)
	require.Equal(t, "stories260K", name)
	target.Model = name
	w := WorkloadConfig{InputLen: 64, OutputLen: 48, RangeRatio: 0.25, VocabSize: m.Config.VocabSize, FirstID: 3, BOS: 1, Seed: 7, FixedOutput: true}
	res := &LoadResult{Command: "go test", Target: hs.URL, Host: ThisHost()}
	for _, c := range []struct{ conc, n int }{{1, 8}, {4, 32}} {
		w.NumPrompts = c.n
		run, err := RunLoad(context.Background(), target, w, LoadConfig{Concurrency: c.conc, Warmup: 1, Timeout: 30 * time.Second, SLO: SLO{TTFTms: 1000, ITLms: 100}}, nil)
		require.NoError(t, err)
		res.Runs = append(res.Runs, run)
	}
	dir := t.TempDir()
	_, err = WriteReport(BuildReport("stories260K load", "go test", res, nil, nil, nil), dir, "report")
	require.NoError(t, err)
	r := readReport(t, dir)
	requireSVGs(t, dir, r)
	require.Len(t, r.Load.Runs, 2)
	for _, run := range r.Load.Runs {
		s := run.Summary
		var ttft, itl, tpot, e2e []float64
		in, out, good := 0, 0, 0
		end := 0.0
		for _, rec := range run.Records {
			require.Empty(t, rec.Error)
			require.Equal(t, rec.MaxTokens, rec.OutputTokens, "fixed output length: ignore_eos and min_tokens")
			require.InDelta(t, 48, rec.MaxTokens, 12)
			require.Equal(t, rec.OutputTokens, rec.Chunks)
			require.Len(t, rec.ITLms, rec.OutputTokens-1)
			require.InDelta(t, float64(w.InputLen), float64(rec.PromptTokens), float64(w.InputLen)*w.RangeRatio+1)
			ttft, e2e = append(ttft, rec.TTFTms), append(e2e, rec.E2Ems)
			itl = append(itl, rec.ITLms...)
			tp := (rec.E2Ems - rec.TTFTms) / float64(rec.OutputTokens-1)
			tpot = append(tpot, tp)
			in += rec.PromptTokens
			out += rec.OutputTokens
			if rec.TTFTms <= 1000 && tp <= 100 {
				good++
			}
			end = math.Max(end, rec.StartS+rec.E2Ems/1000)
			sumGaps := 0.0
			for _, g := range rec.ITLms {
				sumGaps += g
			}
			require.LessOrEqual(t, rec.TTFTms+sumGaps, rec.E2Ems+1e-6)
		}
		require.Equal(t, len(run.Records), s.Completed)
		require.Equal(t, 0, s.Failed)
		requireDist(t, "ttft", ttft, s.TTFTms)
		requireDist(t, "itl", itl, s.ITLms)
		requireDist(t, "tpot", tpot, s.TPOTms)
		requireDist(t, "e2e", e2e, s.E2Ems)
		require.Equal(t, in, s.InputTokens)
		require.Equal(t, out, s.OutputTokens)
		require.InDelta(t, end, s.DurationS, 1e-6)
		require.InDelta(t, float64(len(run.Records))/s.DurationS, s.RequestThroughput, 1e-9)
		require.InDelta(t, float64(out)/s.DurationS, s.OutputThroughput, 1e-9)
		require.InDelta(t, float64(in+out)/s.DurationS, s.TotalThroughput, 1e-9)
		require.Equal(t, good, s.GoodRequests)
		require.InDelta(t, float64(good)/s.DurationS, s.Goodput, 1e-9)
	}
	// The executive summary quotes the measured numbers.
	require.Equal(t, r.Load.Runs[0].Summary.E2Ems.Mean, r.Summary[0].Value)
	require.Equal(t, r.Load.Runs[0].Summary.TTFTms.P50, r.Summary[1].Value)
	require.Empty(t, r.Risks)
}

// TestLoadAgainstEngine is the in-process path: the same workload straight into the
// engine, with prompts from a text file.
func TestLoadAgainstEngine(t *testing.T) {
	m, err := llm.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), "", cpu.New(cpu.Options{Threads: 1}), model.Options{})
	require.NoError(t, err)
	defer m.Close()
	eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{})
	require.NoError(t, err)
	defer eng.Close()
	file := filepath.Join(t.TempDir(), "prompts.txt")
	require.NoError(t, os.WriteFile(file, []byte("Once upon a time\n\nThe cat sat\nLily went to the park\n"), 0o644))
	run, err := RunLoad(context.Background(), &EngineTarget{Engine: eng}, WorkloadConfig{NumPrompts: 5, PromptsFile: file, OutputLen: 8, FixedOutput: true},
		LoadConfig{Concurrency: 2}, nil)
	require.NoError(t, err)
	require.Equal(t, 5, run.Summary.Completed)
	for _, r := range run.Records {
		require.Equal(t, 8, r.OutputTokens)
		require.Greater(t, r.PromptTokens, 3)
	}
}

func failingRun(t *testing.T, url string, timeout time.Duration) (*LoadResult, *Report, string) {
	t.Helper()
	w := WorkloadConfig{NumPrompts: 4, InputLen: 8, OutputLen: 4, VocabSize: 259, FirstID: 3, BOS: 1, FixedOutput: true}
	run, err := RunLoad(context.Background(), &HTTPTarget{BaseURL: url}, w, LoadConfig{Concurrency: 2, Timeout: timeout}, nil)
	require.NoError(t, err, "failed requests are data, not an error")
	res := &LoadResult{Target: url, Runs: []*LoadRun{run}}
	dir := t.TempDir()
	_, err = WriteReport(BuildReport("failing", "go test", res, nil, nil, nil), dir, "report")
	require.NoError(t, err)
	r := readReport(t, dir)
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	for _, c := range r.Charts {
		_, err := os.Stat(filepath.Join(dir, c.File))
		require.NoError(t, err)
	}
	return res, r, string(md)
}

func TestLoadServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	res, r, md := failingRun(t, url, 5*time.Second)
	require.True(t, res.AllFailed())
	s := r.Load.Runs[0].Summary
	require.Equal(t, 4, s.Failed)
	require.Equal(t, map[string]int{KindRefused: 4}, s.Errors)
	require.Contains(t, md, "4 of 4 requests failed")
	require.Contains(t, md, KindRefused)
	require.NotEmpty(t, r.Risks)
	require.Contains(t, r.Risks[0].Mitigation, "server is up")
}

func TestLoadServer500(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"message":"the backend failed","type":"server_error","param":null,"code":null}}`)
	}))
	defer hs.Close()
	res, r, md := failingRun(t, hs.URL, 5*time.Second)
	require.True(t, res.AllFailed())
	require.Equal(t, map[string]int{"http_500": 4}, r.Load.Runs[0].Summary.Errors)
	require.Contains(t, r.Load.Runs[0].Records[0].Error, "the backend failed")
	require.Contains(t, md, "http_500")
}

// sseFake streams n tokens, waiting delay before each; it fails requests whose
// prompt has the given first id with an error event mid-stream.
func sseFake(n int, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Prompt    []int `json:"prompt"`
			MaxTokens int   `json:"max_tokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 0; i < min(n, body.MaxTokens); i++ {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"text\":\"t%d\",\"finish_reason\":null}]}\n\n", i)
			fl.Flush()
		}
		if n < body.MaxTokens {
			return // cut short: no finish, no [DONE]
		}
		fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"length\"}]}\n\n")
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d}}\n\n", len(body.Prompt), body.MaxTokens)
		fmt.Fprint(w, "data: [DONE]\n\n")
	})
}

func TestLoadSlowServer(t *testing.T) {
	hs := httptest.NewServer(sseFake(4, 150*time.Millisecond)) // 4 tokens take 600 ms
	defer hs.Close()
	res, r, md := failingRun(t, hs.URL, 250*time.Millisecond)
	require.True(t, res.AllFailed())
	s := r.Load.Runs[0].Summary
	require.Equal(t, map[string]int{KindTimeout: 4}, s.Errors)
	rec := r.Load.Runs[0].Records[0]
	require.Contains(t, rec.Error, "timeout")
	require.Equal(t, 1, rec.Chunks, "the token that came before the timeout is recorded")
	require.Greater(t, rec.TTFTms, 100.0)
	require.Contains(t, md, "timeout")
	require.Contains(t, r.Risks[0].Mitigation, "--timeout")
}

func TestLoadTruncatedStream(t *testing.T) {
	hs := httptest.NewServer(sseFake(2, 0)) // ends after 2 of 4 tokens without [DONE]
	defer hs.Close()
	_, r, _ := failingRun(t, hs.URL, 5*time.Second)
	require.Equal(t, map[string]int{KindTruncated: 4}, r.Load.Runs[0].Summary.Errors)
}

// TestOpenLoop: Poisson arrivals are seeded, have the asked mean rate, and requests
// are sent at their arrival times whatever the server does.
func TestOpenLoop(t *testing.T) {
	a, b := poissonArrivals(2000, 50, 3), poissonArrivals(2000, 50, 3)
	require.Equal(t, a, b)
	require.NotEqual(t, a, poissonArrivals(2000, 50, 4))
	rate := float64(len(a)-1) / a[len(a)-1].Seconds()
	require.InDelta(t, 50, rate, 5)

	hs := httptest.NewServer(sseFake(4, 20*time.Millisecond))
	defer hs.Close()
	w := WorkloadConfig{NumPrompts: 12, InputLen: 8, OutputLen: 4, VocabSize: 259, FirstID: 3, BOS: 1, FixedOutput: true, Seed: 1}
	cfg := LoadConfig{RequestRate: 40, Seed: 5}
	run, err := RunLoad(context.Background(), &HTTPTarget{BaseURL: hs.URL + "/v1/"}, w, cfg, nil)
	require.NoError(t, err)
	require.Equal(t, 12, run.Summary.Completed)
	at := poissonArrivals(12, 40, 5)
	for i, rec := range run.Records {
		require.GreaterOrEqual(t, rec.StartS, at[i].Seconds()-1e-3, "request %d sent before its arrival time", i)
		require.Equal(t, 4, rec.OutputTokens)
	}
	require.Equal(t, "rate=40/s", run.Label())
}

func TestReadSSE(t *testing.T) {
	n := 0
	u, err := readSSE(context.Background(), strings.NewReader(
		": keep-alive\n\ndata: {\"choices\":[{\"text\":\"a\",\"finish_reason\":null}]}\n\n"+
			"data: {\"choices\":[{\"text\":\"\",\"finish_reason\":null}]}\n\n"+ // no visible text: not an arrival
			"data: {\"choices\":[{\"text\":\"b\",\"finish_reason\":null}]}\n\n"+
			"data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"stop\"}]}\n\n"+ // finish only: not an arrival
			"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n"),
		func(k int) { n += k })
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, Usage{PromptTokens: 5, CompletionTokens: 3}, u)

	_, err = readSSE(context.Background(), strings.NewReader("data: {\"error\":{\"message\":\"boom\"}}\n\n"), func(int) {})
	require.Equal(t, KindStream, ErrorKind(err))
	require.Contains(t, err.Error(), "boom")
	_, err = readSSE(context.Background(), strings.NewReader("data: {not json\n\n"), func(int) {})
	require.Equal(t, KindStream, ErrorKind(err))
}

func TestErrorKind(t *testing.T) {
	require.Equal(t, "", ErrorKind(nil))
	require.Equal(t, KindTimeout, ErrorKind(fmt.Errorf("x: %w", context.DeadlineExceeded)))
	require.Equal(t, KindCanceled, ErrorKind(context.Canceled))
	require.Equal(t, "http_429", ErrorKind(&HTTPError{Status: 429}))
	require.Equal(t, KindOther, ErrorKind(errors.New("?")))
}

func TestWorkload(t *testing.T) {
	w := WorkloadConfig{NumPrompts: 200, InputLen: 100, OutputLen: 50, RangeRatio: 0.5, VocabSize: 512, FirstID: 3, BOS: 1, Seed: 9}
	a, err := w.Prompts(200)
	require.NoError(t, err)
	b, _ := w.Prompts(200)
	require.Equal(t, a, b, "seeded")
	lens := map[int]bool{}
	for _, p := range a {
		require.Equal(t, int32(1), p.IDs[0])
		require.Equal(t, len(p.IDs), p.InputLen)
		require.GreaterOrEqual(t, p.InputLen, 50)
		require.LessOrEqual(t, p.InputLen, 150)
		require.GreaterOrEqual(t, p.OutputLen, 25)
		require.LessOrEqual(t, p.OutputLen, 75)
		for _, id := range p.IDs[1:] {
			require.True(t, id >= 3 && id < 512)
		}
		lens[p.InputLen] = true
	}
	require.Greater(t, len(lens), 20, "lengths are distributed")
	w.RangeRatio = 0
	c, _ := w.Prompts(3)
	for _, p := range c {
		require.Equal(t, 100, p.InputLen)
		require.Equal(t, 50, p.OutputLen)
	}
	_, err = WorkloadConfig{InputLen: 10, OutputLen: 5, RangeRatio: 1}.Prompts(1)
	require.Error(t, err)
}
