package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vireo-ai/vireo/runtime/engine"
)

// The vllm: series are vLLM's (vllm/v1/metrics/loggers.py): the same names, help
// texts, label names (model_name, and engine="0" for our one engine) and bucket
// boundaries, so that Grafana dashboards, autoscalers and the llm-d model-server
// protocol read them as they read vLLM's. The vireo_ series are ours.

// Bucket boundaries, vLLM's.
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
		1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
		1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	requestLatencyBuckets = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
		30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
	iterationTokenBuckets = []float64{1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}
	nBuckets              = []float64{1, 2, 5, 10, 20}
)

// buckets125 is vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... up to max.
func buckets125(max int) []float64 {
	var b []float64
	for e := 1; ; e *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*e > max {
				return b
			}
			b = append(b, float64(m*e))
		}
	}
}

// finishLabels are the finished_reason values of vllm:request_success_total, vLLM's
// (FINISH_REASON_STRINGS), each series present from the start.
var finishLabels = []string{"stop", "length", "abort", "error", "repetition"}

// finishLabel maps an engine finish reason to vLLM's name: a request cut off by its
// deadline is one vLLM would have aborted.
func finishLabel(why engine.FinishReason) string {
	switch why {
	case engine.FinishStop, engine.FinishLength, engine.FinishError:
		return string(why)
	}
	return "abort"
}

// CacheInfo is what vllm:cache_config_info reports beside the engine's own numbers.
type CacheInfo struct {
	GPUMemoryUtilization float64 // the --gpu-memory-utilization flag (default 0.9)
	CacheDType           string  // default "auto": the KV cache holds the compute type
}

// metrics are the server's Prometheus series.
type metrics struct {
	reg *prometheus.Registry

	ttft, itl, tpot, reqTPOT          prometheus.Observer
	e2e, queue, prefill, decode, infr prometheus.Observer
	iterTokens                        prometheus.Observer
	reqPrompt, reqGen, reqMaxGen      prometheus.Observer
	paramN, paramMaxTokens            prometheus.Observer

	promptTok prometheus.Counter
	genTok    prometheus.Counter
	success   map[string]prometheus.Counter
	rejected  *prometheus.CounterVec
}

func newMetrics(model string, eng *engine.Engine, ci CacheInfo) *metrics {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"model_name": model, "engine": "0"}
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
	eo := eng.Options()
	tokBuckets := buckets125(eo.MaxModelLen)
	m := &metrics{reg: reg,
		ttft: hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttftBuckets),
		itl:  hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", itlBuckets),
		tpot: hist("vllm:time_per_output_token_seconds",
			"Histogram of time per output token in seconds.DEPRECATED: Use vllm:inter_token_latency_seconds instead.", itlBuckets),
		reqTPOT:        hist("vllm:request_time_per_output_token_seconds", "Histogram of time_per_output_token_seconds per request.", itlBuckets),
		e2e:            hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", requestLatencyBuckets),
		queue:          hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", requestLatencyBuckets),
		infr:           hist("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", requestLatencyBuckets),
		prefill:        hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", requestLatencyBuckets),
		decode:         hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", requestLatencyBuckets),
		iterTokens:     hist("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", iterationTokenBuckets),
		reqPrompt:      hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokBuckets),
		reqGen:         hist("vllm:request_generation_tokens", "Number of generation tokens processed.", tokBuckets),
		reqMaxGen:      hist("vllm:request_max_num_generation_tokens", "Histogram of maximum number of requested generation tokens.", tokBuckets),
		paramN:         hist("vllm:request_params_n", "Histogram of the n request parameter.", nBuckets),
		paramMaxTokens: hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", tokBuckets),
		promptTok:      counter("vllm:prompt_tokens_total", "Number of prefill tokens processed."),
		genTok:         counter("vllm:generation_tokens_total", "Number of generation tokens processed."),
		success:        map[string]prometheus.Counter{},
	}
	sv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vllm:request_success_total",
		Help: "Count of successfully processed requests.", ConstLabels: labels}, []string{"finished_reason"})
	reg.MustRegister(sv)
	for _, r := range finishLabels {
		m.success[r] = sv.WithLabelValues(r)
	}
	eng.OnStep(func(st engine.StepStats) { m.iterTokens.Observe(float64(st.PromptTokens + st.GenerationTokens)) })

	if ci.GPUMemoryUtilization <= 0 {
		ci.GPUMemoryUtilization = 0.9
	}
	if ci.CacheDType == "" {
		ci.CacheDType = "auto"
	}
	st := eng.Stats()
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vllm:cache_config_info", Help: "Information of the LLMEngine CacheConfig",
		ConstLabels: prometheus.Labels{ // vLLM's CacheConfig fields, as Python's str() writes them
			"block_size":              strconv.Itoa(eo.BlockSize),
			"cache_dtype":             ci.CacheDType,
			"enable_prefix_caching":   pyBool(eo.EnablePrefixCache),
			"gpu_memory_utilization":  strconv.FormatFloat(ci.GPUMemoryUtilization, 'g', -1, 64),
			"num_cpu_blocks":          "0",
			"num_gpu_blocks":          strconv.Itoa(st.NumBlocks),
			"num_gpu_blocks_override": "None",
			"kv_cache_size_tokens":    strconv.Itoa(st.NumBlocks * eo.BlockSize),
			"sliding_window":          "None",
			"swap_space":              "0",
			"engine":                  "0",
		}})
	info.Set(1)
	reg.MustRegister(info)

	vl := prometheus.Labels{"model_name": model}
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vireo_rejected_requests_total",
		Help: "Requests answered with an error before reaching the engine, by reason.", ConstLabels: vl}, []string{"reason"})
	reg.MustRegister(m.rejected)
	reg.MustRegister(&engineCollector{eng: eng,
		waiting:  prometheus.NewDesc("vllm:num_requests_waiting", "Number of requests waiting to be processed.", nil, labels),
		running:  prometheus.NewDesc("vllm:num_requests_running", "Number of requests in model execution batches.", nil, labels),
		kvUsage:  prometheus.NewDesc("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", nil, labels),
		gpuUsage: prometheus.NewDesc("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.", nil, labels),
		preempt:  prometheus.NewDesc("vllm:num_preemptions_total", "Cumulative number of preemption from the engine.", nil, labels),
		pcQuery:  prometheus.NewDesc("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", nil, labels),
		pcHit:    prometheus.NewDesc("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", nil, labels),
		blocks:   prometheus.NewDesc("vireo_kv_cache_blocks", "KV-cache blocks by state (free counts cached, evictable blocks).", []string{"state"}, vl),
	})
	if eng.Options().LoRA.MaxLoRAs > 0 {
		reg.MustRegister(newLoRACollector(func() *engine.LoRAStats { return eng.Stats().LoRA }))
	}
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

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func (m *metrics) finished(why engine.FinishReason) {
	m.success[finishLabel(why)].Inc()
}

// completionTimes observes a finished completion's phases as vLLM splits them: queued
// (submitted to first scheduled), prefill (scheduled to first token), decode (first to
// last token) and inference (scheduled to last token), and its time per output token.
// A phase the completion never reached is not observed.
func (m *metrics) completionTimes(tm *engine.Timing, first, last time.Time, tokens int) {
	if tm == nil || tm.Scheduled.IsZero() {
		return
	}
	m.queue.Observe(tm.Scheduled.Sub(tm.Queued).Seconds())
	if first.IsZero() {
		return
	}
	m.prefill.Observe(first.Sub(tm.Scheduled).Seconds())
	m.decode.Observe(last.Sub(first).Seconds())
	m.infr.Observe(last.Sub(tm.Scheduled).Seconds())
	if tokens > 1 {
		m.reqTPOT.Observe(last.Sub(first).Seconds() / float64(tokens-1))
	}
}

// engineCollector reads the engine's gauges and counters at scrape time.
type engineCollector struct {
	eng                                 *engine.Engine
	waiting, running, kvUsage, gpuUsage *prometheus.Desc
	preempt, pcQuery, pcHit, blocks     *prometheus.Desc
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.waiting, c.running, c.kvUsage, c.gpuUsage, c.preempt, c.pcQuery, c.pcHit, c.blocks} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.eng.Stats()
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(c.kvUsage, prometheus.GaugeValue, st.KVUsage)
	ch <- prometheus.MustNewConstMetric(c.gpuUsage, prometheus.GaugeValue, st.KVUsage)
	ch <- prometheus.MustNewConstMetric(c.preempt, prometheus.CounterValue, float64(st.Scheduler.Preemptions))
	ch <- prometheus.MustNewConstMetric(c.pcQuery, prometheus.CounterValue, float64(st.Scheduler.PrefixQueryTokens))
	ch <- prometheus.MustNewConstMetric(c.pcHit, prometheus.CounterValue, float64(st.Scheduler.PrefixHitTokens))
	ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.GaugeValue, float64(st.FreeBlocks), "free")
	ch <- prometheus.MustNewConstMetric(c.blocks, prometheus.GaugeValue, float64(st.NumBlocks-st.FreeBlocks), "used")
}
