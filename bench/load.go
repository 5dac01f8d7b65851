package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/vireo-ai/vireo/runtime/profiling"
)

// SLO is the service-level objective goodput counts against: a request is good when
// its TTFT and its mean inter-token latency (TPOT, as vLLM's goodput) are both within
// bounds. A zero bound is not checked.
type SLO struct {
	TTFTms float64 `json:"ttft_ms"`
	ITLms  float64 `json:"itl_ms"`
}

// LoadConfig is how requests are sent.
type LoadConfig struct {
	// Concurrency is the number of requests in flight in a closed loop; with a
	// RequestRate it caps the requests in flight (0: no cap).
	Concurrency int `json:"concurrency"`
	// RequestRate is the mean arrival rate in requests/s of an open loop with Poisson
	// arrivals (seeded); 0 means a closed loop.
	RequestRate float64       `json:"request_rate"`
	Warmup      int           `json:"warmup"` // requests sent and discarded first
	Timeout     time.Duration `json:"timeout_ns"`
	Temperature float64       `json:"temperature"`
	Seed        uint64        `json:"seed"`
	SLO         SLO           `json:"slo"`
}

// Record is one request as the client saw it. Times are milliseconds; StartS is when it
// was sent, in seconds after the run began.
type Record struct {
	Index        int       `json:"index"`
	StartS       float64   `json:"start_s"`
	TTFTms       float64   `json:"ttft_ms"` // 0 when no token arrived
	E2Ems        float64   `json:"e2e_ms"`
	ITLms        []float64 `json:"itl_ms"` // gaps between successive token arrivals
	PromptTokens int       `json:"prompt_tokens"`
	MaxTokens    int       `json:"max_tokens"`    // asked for
	OutputTokens int       `json:"output_tokens"` // the usage count when reported, else the chunks
	Chunks       int       `json:"chunks"`
	Error        string    `json:"error,omitempty"`
	ErrorKind    string    `json:"error_kind,omitempty"`
}

// OK reports whether the request completed.
func (r *Record) OK() bool { return r.Error == "" }

// TPOTms is the mean time per output token after the first, or -1 with fewer than two.
func (r *Record) TPOTms() float64 {
	if r.OutputTokens < 2 {
		return -1
	}
	return (r.E2Ems - r.TTFTms) / float64(r.OutputTokens-1)
}

// Summary aggregates a run's records. Latencies count completed requests only.
type Summary struct {
	Requests          int            `json:"requests"`
	Completed         int            `json:"completed"`
	Failed            int            `json:"failed"`
	Errors            map[string]int `json:"errors"` // by kind
	DurationS         float64        `json:"duration_s"`
	InputTokens       int            `json:"input_tokens"`
	OutputTokens      int            `json:"output_tokens"`
	RequestThroughput float64        `json:"request_throughput"`     // completed requests/s
	OutputThroughput  float64        `json:"output_throughput"`      // output tokens/s
	TotalThroughput   float64        `json:"total_token_throughput"` // (input+output) tokens/s
	GoodRequests      int            `json:"good_requests"`          // completed within the SLO
	Goodput           float64        `json:"goodput"`                // good requests/s
	TTFTms            Dist           `json:"ttft_ms"`
	ITLms             Dist           `json:"itl_ms"`
	TPOTms            Dist           `json:"tpot_ms"`
	E2Ems             Dist           `json:"e2e_ms"`
	FirstError        string         `json:"first_error,omitempty"` // an example message
}

// Summarize computes a run's aggregates from its records.
func Summarize(recs []Record, durationS float64, slo SLO) Summary {
	s := Summary{Requests: len(recs), Errors: map[string]int{}, DurationS: durationS}
	var ttft, itl, tpot, e2e []float64
	for i := range recs {
		r := &recs[i]
		if !r.OK() {
			s.Failed++
			s.Errors[r.ErrorKind]++
			if s.FirstError == "" {
				s.FirstError = r.Error
			}
			continue
		}
		s.Completed++
		s.InputTokens += r.PromptTokens
		s.OutputTokens += r.OutputTokens
		ttft = append(ttft, r.TTFTms)
		e2e = append(e2e, r.E2Ems)
		itl = append(itl, r.ITLms...)
		t := r.TPOTms()
		if t >= 0 {
			tpot = append(tpot, t)
		}
		if (slo.TTFTms <= 0 || r.TTFTms <= slo.TTFTms) && (slo.ITLms <= 0 || t <= slo.ITLms) {
			s.GoodRequests++
		}
	}
	s.TTFTms, s.ITLms, s.TPOTms, s.E2Ems = NewDist(ttft), NewDist(itl), NewDist(tpot), NewDist(e2e)
	if durationS > 0 {
		s.RequestThroughput = float64(s.Completed) / durationS
		s.OutputThroughput = float64(s.OutputTokens) / durationS
		s.TotalThroughput = float64(s.InputTokens+s.OutputTokens) / durationS
		s.Goodput = float64(s.GoodRequests) / durationS
	}
	return s
}

// LoadRun is one load run: its configuration, every request and the aggregates.
type LoadRun struct {
	Config   LoadConfig     `json:"config"`
	Workload WorkloadConfig `json:"workload"`
	Started  time.Time      `json:"started"`
	Records  []Record       `json:"records"`
	Summary  Summary        `json:"summary"`
	// Ops is the run's op profile (bench load --engine --profile), nil without one.
	Ops *OpProfile `json:"ops,omitempty"`
}

// OpProfile is an op profile recorded over a run (runtime/profiling): where the pprof
// file was written and its summary (every op's time, calls and share of step time).
type OpProfile struct {
	File    string            `json:"file"`
	Backend string            `json:"backend"`
	Summary profiling.Summary `json:"summary"`
}

// RunLoad sends the workload's requests to t (after cfg.Warmup discarded ones) and
// records each. Failed requests are recorded, not returned as an error: the error is
// only for a workload that cannot be built.
func RunLoad(ctx context.Context, t Target, w WorkloadConfig, cfg LoadConfig, prog *Progress) (*LoadRun, error) {
	if w.NumPrompts <= 0 {
		return nil, fmt.Errorf("number of prompts must be positive, got %d", w.NumPrompts)
	}
	if cfg.RequestRate <= 0 && cfg.Concurrency <= 0 {
		return nil, fmt.Errorf("a closed loop needs a positive concurrency, got %d", cfg.Concurrency)
	}
	prompts, err := w.Prompts(cfg.Warmup + w.NumPrompts)
	if err != nil {
		return nil, err
	}
	reqs := make([]GenRequest, len(prompts))
	for i, p := range prompts {
		reqs[i] = GenRequest{Prompt: p, MaxTokens: p.OutputLen, Temperature: cfg.Temperature, Seed: cfg.Seed + uint64(i)}
		if w.FixedOutput {
			reqs[i].IgnoreEOS, reqs[i].MinTokens = true, p.OutputLen
		}
	}
	if cfg.Warmup > 0 {
		conc := cfg.Concurrency
		if conc <= 0 {
			conc = cfg.Warmup
		}
		runSchedule(ctx, t, reqs[:cfg.Warmup], nil, conc, cfg.Timeout, nil)
	}
	reqs = reqs[cfg.Warmup:]
	var at []time.Duration
	if cfg.RequestRate > 0 {
		at = poissonArrivals(len(reqs), cfg.RequestRate, cfg.Seed)
	}
	run := &LoadRun{Config: cfg, Workload: w, Started: time.Now().UTC()}
	var dur time.Duration
	run.Records, dur = runSchedule(ctx, t, reqs, at, cfg.Concurrency, cfg.Timeout, prog)
	run.Summary = Summarize(run.Records, dur.Seconds(), cfg.SLO)
	return run, nil
}

// poissonArrivals returns n arrival offsets with exponential gaps of mean 1/rate.
func poissonArrivals(n int, rate float64, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 0xa54ff53a5f1d36f1))
	at := make([]time.Duration, n)
	var t float64
	for i := range at {
		at[i] = time.Duration(t * float64(time.Second))
		t += rng.ExpFloat64() / rate
	}
	return at
}

// runSchedule sends reqs — in a closed loop of conc workers when at is nil, else each
// at its arrival offset (with at most conc in flight when conc > 0) — and returns the
// records and the span from the start to the last completion.
func runSchedule(ctx context.Context, t Target, reqs []GenRequest, at []time.Duration, conc int, timeout time.Duration, prog *Progress) ([]Record, time.Duration) {
	recs := make([]Record, len(reqs))
	start := time.Now()
	var sem chan struct{}
	if conc > 0 {
		sem = make(chan struct{}, conc)
	}
	var wg sync.WaitGroup
	if at == nil {
		next := make(chan int)
		for w := 0; w < conc; w++ {
			wg.Go(func() {
				for i := range next {
					recs[i] = doRequest(ctx, t, reqs[i], i, start, timeout)
					prog.Done(recs[i].OK())
				}
			})
		}
		for i := range reqs {
			next <- i
		}
		close(next)
	} else {
		for i := range reqs {
			select {
			case <-time.After(time.Until(start.Add(at[i]))):
			case <-ctx.Done():
			}
			if sem != nil {
				sem <- struct{}{}
			}
			wg.Go(func() {
				recs[i] = doRequest(ctx, t, reqs[i], i, start, timeout)
				if sem != nil {
					<-sem
				}
				prog.Done(recs[i].OK())
			})
		}
	}
	wg.Wait()
	end := start
	for i := range recs {
		if e := start.Add(time.Duration((recs[i].StartS*1e3 + recs[i].E2Ems) * float64(time.Millisecond))); e.After(end) {
			end = e
		}
	}
	return recs, end.Sub(start)
}

// doRequest runs one request and times its token arrivals.
func doRequest(ctx context.Context, t Target, r GenRequest, index int, runStart time.Time, timeout time.Duration) Record {
	rec := Record{Index: index, PromptTokens: r.Prompt.InputLen, MaxTokens: r.MaxTokens}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	sent := time.Now()
	rec.StartS = sent.Sub(runStart).Seconds()
	var last time.Time
	u, err := t.Generate(ctx, r, func(n int) {
		now := time.Now()
		if rec.Chunks == 0 {
			rec.TTFTms = msSince(sent, now)
		} else {
			rec.ITLms = append(rec.ITLms, msSince(last, now))
		}
		last = now
		rec.Chunks++
	})
	rec.E2Ems = msSince(sent, time.Now())
	rec.OutputTokens = rec.Chunks
	if u.CompletionTokens > 0 {
		rec.OutputTokens = u.CompletionTokens
	}
	if u.PromptTokens > 0 {
		rec.PromptTokens = u.PromptTokens
	}
	if err == nil && rec.Chunks == 0 {
		err = &StreamError{Kind: KindTruncated, Message: "the request finished without any token"}
	}
	if err != nil {
		rec.ErrorKind = ErrorKind(err)
		rec.Error = err.Error()
		if rec.ErrorKind == KindTimeout {
			rec.Error = fmt.Sprintf("no complete answer within the %v timeout (%d tokens received): %v", timeout, rec.Chunks, err)
		}
	}
	return rec
}

// msSince is b-a in milliseconds, to the microsecond (the clock's useful resolution
// here; it keeps the JSON of every request small).
func msSince(a, b time.Time) float64 { return float64(b.Sub(a).Microseconds()) / 1e3 }

// ErrorKinds lists a summary's error kinds, most frequent first.
func (s *Summary) ErrorKinds() []string {
	var ks []string
	for k := range s.Errors {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if s.Errors[ks[i]] != s.Errors[ks[j]] {
			return s.Errors[ks[i]] > s.Errors[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

// LoadResult is a load measurement: one run per concurrency (or request rate) swept.
type LoadResult struct {
	Command string         `json:"command,omitempty"`
	Target  string         `json:"target"` // the server URL, or "in-process engine"
	Model   *ModelInfo     `json:"model,omitempty"`
	Engine  *EngineOptions `json:"engine,omitempty"`
	Host    Host           `json:"host"`
	Runs    []*LoadRun     `json:"runs"`
}

// Label names a run by how it loaded the target: "c=4", "rate=2/s" or "rate=2/s c≤8".
func (r *LoadRun) Label() string {
	if r.Config.RequestRate > 0 {
		s := fmt.Sprintf("rate=%g/s", r.Config.RequestRate)
		if r.Config.Concurrency > 0 {
			s += fmt.Sprintf(" c≤%d", r.Config.Concurrency)
		}
		return s
	}
	return fmt.Sprintf("c=%d", r.Config.Concurrency)
}

// AllFailed reports whether the result has requests and none completed.
func (l *LoadResult) AllFailed() bool {
	n := 0
	for _, r := range l.Runs {
		if r.Summary.Completed > 0 {
			return false
		}
		n += r.Summary.Requests
	}
	return n > 0
}
