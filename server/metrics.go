package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vireo-ai/vireo/runtime/engine"
)

// Bucket boundaries are vLLM's (vllm/v1/metrics/loggers.py), so dashboards and the
// llm-d model-server protocol read our histograms the way they read vLLM's.
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
		1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
		1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	requestLatencyBuckets = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
		30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
)

// Finish reasons as request_success_total labels them: the engine's names.
var finishReasons = []engine.FinishReason{engine.FinishStop, engine.FinishLength, engine.FinishAbort,
	engine.FinishDeadline, engine.FinishError}

// metrics are the server's Prometheus series, all labelled with the served model name.
type metrics struct {
	reg       *prometheus.Registry
	ttft      prometheus.Observer
	itl       prometheus.Observer
	e2e       prometheus.Observer
	promptTok prometheus.Counter
	genTok    prometheus.Counter
	success   map[engine.FinishReason]prometheus.Counter
	rejected  *prometheus.CounterVec
}

func newMetrics(model string, eng *engine.Engine) *metrics {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"model_name": model}
	hist := func(name, help string, buckets []float64) prometheus.Observer {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets, ConstLabels: labels})
		reg.MustRegister(h)
		return h
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels})
		reg.MustRegister(c)
		return c
	}
	m := &metrics{reg: reg,
		ttft:      hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds (from the request's arrival).", ttftBuckets),
		itl:       hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itlBuckets),
		e2e:       hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", requestLatencyBuckets),
		promptTok: counter("vllm:prompt_tokens_total", "Number of prefill tokens processed."),
		genTok:    counter("vllm:generation_tokens_total", "Number of generation tokens processed."),
		success:   map[engine.FinishReason]prometheus.Counter{},
	}
	sv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vllm:request_success_total",
		Help: "Count of finished completions (one per choice), by finish reason.", ConstLabels: labels}, []string{"finished_reason"})
	reg.MustRegister(sv)
	for _, r := range finishReasons {
		m.success[r] = sv.WithLabelValues(string(r))
	}
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vireo_rejected_requests_total",
		Help: "Requests answered with an error before reaching the engine, by reason.", ConstLabels: labels}, []string{"reason"})
	reg.MustRegister(m.rejected)
	reg.MustRegister(&engineCollector{eng: eng,
		waiting: prometheus.NewDesc("vllm:num_requests_waiting", "Number of requests waiting to be processed.", nil, labels),
		running: prometheus.NewDesc("vllm:num_requests_running", "Number of requests in model execution batches.", nil, labels),
		kvUsage: prometheus.NewDesc("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", nil, labels),
		blocks:  prometheus.NewDesc("vireo_kv_cache_blocks", "KV-cache blocks by state (free counts cached, evictable blocks).", []string{"state"}, labels),
	})
	if eng.Speculative().Enabled() {
		reg.MustRegister(&specCollector{eng: eng,
			drafts:   prometheus.NewDesc("vllm:spec_decode_num_drafts_total", "Number of spec decoding drafts (verification passes of a sequence with at least one draft token).", nil, labels),
			tokens:   prometheus.NewDesc("vllm:spec_decode_num_draft_tokens_total", "Number of draft tokens.", nil, labels),
			accepted: prometheus.NewDesc("vllm:spec_decode_num_accepted_tokens_total", "Number of accepted tokens.", nil, labels),
			perPos:   prometheus.NewDesc("vllm:spec_decode_num_accepted_tokens_per_pos_total", "Accepted tokens per draft position.", []string{"position"}, labels),
		})
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// specCollector reads speculative decoding's counters at scrape time (registered only
// when speculation is on, as vLLM does). The acceptance rate is accepted/draft tokens;
// per position j, accepted_per_pos[j]/drafts.
type specCollector struct {
	eng                              *engine.Engine
	drafts, tokens, accepted, perPos *prometheus.Desc
}

func (c *specCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.drafts
	ch <- c.tokens
	ch <- c.accepted
	ch <- c.perPos
}

func (c *specCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.eng.SpecStats()
	ch <- prometheus.MustNewConstMetric(c.drafts, prometheus.CounterValue, float64(st.Drafts))
	ch <- prometheus.MustNewConstMetric(c.tokens, prometheus.CounterValue, float64(st.DraftTokens))
	ch <- prometheus.MustNewConstMetric(c.accepted, prometheus.CounterValue, float64(st.AcceptedTokens))
	for j, n := range st.AcceptedPerPos {
		ch <- prometheus.MustNewConstMetric(c.perPos, prometheus.CounterValue, float64(n), strconv.Itoa(j))
	}
}

func (m *metrics) finished(why engine.FinishReason) {
	if c, ok := m.success[why]; ok {
		c.Inc()
	}
}

// engineCollector reads the engine's gauges at scrape time.
type engineCollector struct {
	eng                               *engine.Engine
	waiting, running, kvUsage, blocks *prometheus.Desc
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.waiting
	ch <- c.running
	ch <- c.kvUsage
	ch <- c.blocks
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.eng.Stats()
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(c.kvUsage, prometheus.GaugeValue, st.KVUsage)
	ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.GaugeValue, float64(st.FreeBlocks), "free")
	ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.GaugeValue, float64(st.NumBlocks-st.FreeBlocks), "used")
}
