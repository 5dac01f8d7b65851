package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/engine"
)

// scrape parses /metrics with the Prometheus text parser.
func (ts *testServer) scrape(t testing.TB) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := ts.get(t, "/metrics")
	require.Equal(t, 200, code)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err, "the exposition must parse")
	return fams
}

func labelMap(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

func labelNames(m *dto.Metric) []string {
	var n []string
	for _, p := range m.GetLabel() {
		n = append(n, p.GetName())
	}
	sort.Strings(n)
	return n
}

// vllmFamily is one vLLM series as vLLM exports it: its type, its label names besides
// model_name and engine, and for histograms its buckets.
type vllmFamily struct {
	typ     dto.MetricType
	extra   []string  // label names besides model_name and engine
	buckets []float64 // nil: not checked (token-count buckets depend on max_model_len)
}

var (
	ttftB = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560}
	itlB  = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}
	reqB  = []float64{0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680}
	// stories260K's context is 512 tokens: vLLM's build_1_2_5_buckets(512).
	tok512 = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500}
)

var vllmFamilies = map[string]vllmFamily{
	"vllm:num_requests_running":                  {typ: dto.MetricType_GAUGE},
	"vllm:num_requests_waiting":                  {typ: dto.MetricType_GAUGE},
	"vllm:kv_cache_usage_perc":                   {typ: dto.MetricType_GAUGE},
	"vllm:gpu_cache_usage_perc":                  {typ: dto.MetricType_GAUGE},
	"vllm:time_to_first_token_seconds":           {typ: dto.MetricType_HISTOGRAM, buckets: ttftB},
	"vllm:inter_token_latency_seconds":           {typ: dto.MetricType_HISTOGRAM, buckets: itlB},
	"vllm:time_per_output_token_seconds":         {typ: dto.MetricType_HISTOGRAM, buckets: itlB},
	"vllm:request_time_per_output_token_seconds": {typ: dto.MetricType_HISTOGRAM, buckets: itlB},
	"vllm:e2e_request_latency_seconds":           {typ: dto.MetricType_HISTOGRAM, buckets: reqB},
	"vllm:request_queue_time_seconds":            {typ: dto.MetricType_HISTOGRAM, buckets: reqB},
	"vllm:request_inference_time_seconds":        {typ: dto.MetricType_HISTOGRAM, buckets: reqB},
	"vllm:request_prefill_time_seconds":          {typ: dto.MetricType_HISTOGRAM, buckets: reqB},
	"vllm:request_decode_time_seconds":           {typ: dto.MetricType_HISTOGRAM, buckets: reqB},
	"vllm:iteration_tokens_total":                {typ: dto.MetricType_HISTOGRAM, buckets: []float64{1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384}},
	"vllm:request_prompt_tokens":                 {typ: dto.MetricType_HISTOGRAM, buckets: tok512},
	"vllm:request_generation_tokens":             {typ: dto.MetricType_HISTOGRAM, buckets: tok512},
	"vllm:request_max_num_generation_tokens":     {typ: dto.MetricType_HISTOGRAM, buckets: tok512},
	"vllm:request_params_max_tokens":             {typ: dto.MetricType_HISTOGRAM, buckets: tok512},
	"vllm:request_params_n":                      {typ: dto.MetricType_HISTOGRAM, buckets: []float64{1, 2, 5, 10, 20}},
	"vllm:num_preemptions_total":                 {typ: dto.MetricType_COUNTER},
	"vllm:prefix_cache_queries_total":            {typ: dto.MetricType_COUNTER},
	"vllm:prefix_cache_hits_total":               {typ: dto.MetricType_COUNTER},
	"vllm:prompt_tokens_total":                   {typ: dto.MetricType_COUNTER},
	"vllm:generation_tokens_total":               {typ: dto.MetricType_COUNTER},
	"vllm:request_success_total":                 {typ: dto.MetricType_COUNTER, extra: []string{"finished_reason"}},
}

// value is a gauge's or counter's value, a histogram's count.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// only returns a family's one series.
func only(t testing.TB, fams map[string]*dto.MetricFamily, name string) *dto.Metric {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "%s is missing", name)
	require.Len(t, f.Metric, 1, name)
	return f.Metric[0]
}

// TestMetricsScrape: /metrics parses with the Prometheus text parser; every vLLM
// series is there with vLLM's type, label names and values (model_name, engine="0",
// finished_reason), help text and buckets; and the values add up for a known
// workload: two identical prompts (the second finds the first's blocks in the prefix
// cache), a chat of n=2 streamed, and a request cut short by its client.
func TestMetricsScrape(t *testing.T) {
	ts := newTestServer(t, serverOpts{engine: engine.Options{EnablePrefixCache: true}, quiet: true,
		cfg: Config{Cache: CacheInfo{GPUMemoryUtilization: 0.85}}})

	fams := ts.scrape(t) // before any request: every series is there already
	for name, want := range vllmFamilies {
		f, ok := fams[name]
		require.True(t, ok, "%s is missing from a fresh server", name)
		require.Equal(t, want.typ, f.GetType(), name)
		require.NotEmpty(t, f.GetHelp(), name)
	}

	prompt := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
	var promptTokens, genTokens int
	for range 2 {
		code, body, _ := ts.post(t, "/v1/completions", fmt.Sprintf(`{"prompt":%q,"max_tokens":6,"temperature":0,"ignore_eos":true}`, prompt))
		require.Equal(t, 200, code, "%s", body)
		var r completionResponse
		require.NoError(t, json.Unmarshal(body, &r))
		promptTokens += r.Usage.PromptTokens
		genTokens += r.Usage.CompletionTokens
		require.Greater(t, r.Usage.PromptTokens, 16, "a full block to share")
	}
	resp := ts.streamReq(t, context.Background(), "/v1/chat/completions",
		`{"messages":[{"role":"user","content":"Hi"}],"n":2,"max_tokens":5,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true}`)
	sse := readSSE(t, resp.Body)
	resp.Body.Close()
	require.NotNil(t, sse.usage)
	promptTokens += sse.usage.PromptTokens
	genTokens += sse.usage.CompletionTokens
	require.Equal(t, 10, sse.usage.CompletionTokens)
	ts.waitIdle(t, 10*time.Second)

	fams = ts.scrape(t)
	for name, want := range vllmFamilies {
		f := fams[name]
		require.Equal(t, want.typ, f.GetType(), name)
		for _, m := range f.Metric {
			l := labelMap(m)
			require.Equal(t, "stories260K", l["model_name"], name)
			require.Equal(t, "0", l["engine"], name)
			wantNames := append([]string{"engine", "model_name"}, want.extra...)
			sort.Strings(wantNames)
			require.Equal(t, wantNames, labelNames(m), name)
			if want.buckets != nil {
				var got []float64
				for _, b := range m.Histogram.GetBucket() {
					got = append(got, b.GetUpperBound())
				}
				require.Equal(t, append(want.buckets, math.Inf(1)), got, name)
			}
		}
	}
	reasons := map[string]float64{}
	for _, m := range fams["vllm:request_success_total"].Metric {
		reasons[labelMap(m)["finished_reason"]] = value(m)
	}
	require.Equal(t, map[string]float64{"stop": 0, "length": 4, "abort": 0, "error": 0, "repetition": 0}, reasons)

	v := func(name string) float64 { return value(only(t, fams, name)) }
	require.Equal(t, float64(promptTokens), v("vllm:prompt_tokens_total"))
	require.Equal(t, float64(genTokens), v("vllm:generation_tokens_total"))
	require.Equal(t, 3.0, v("vllm:e2e_request_latency_seconds"), "one per request")
	require.Equal(t, 3.0, v("vllm:time_to_first_token_seconds"))
	require.Equal(t, 3.0, v("vllm:request_params_n"))
	require.Equal(t, 4.0, only(t, fams, "vllm:request_params_n").Histogram.GetSampleSum(), "n=1, 1, 2")
	require.Equal(t, 3.0, v("vllm:request_max_num_generation_tokens"))
	for _, name := range []string{"vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds",
		"vllm:request_inference_time_seconds", "vllm:request_time_per_output_token_seconds", "vllm:request_prompt_tokens", "vllm:request_generation_tokens"} {
		require.Equal(t, 4.0, v(name), "%s: one per completion", name)
	}
	require.Equal(t, float64(genTokens), only(t, fams, "vllm:request_generation_tokens").Histogram.GetSampleSum())
	require.Equal(t, float64(genTokens-4), v("vllm:inter_token_latency_seconds"), "every gap between a completion's tokens")
	require.Equal(t, v("vllm:inter_token_latency_seconds"), v("vllm:time_per_output_token_seconds"))
	require.Equal(t, float64(promptTokens), v("vllm:prompt_tokens_total"))

	st := ts.eng.Stats()
	require.Equal(t, float64(st.Scheduler.PrefixQueryTokens), v("vllm:prefix_cache_queries_total"))
	require.Equal(t, float64(st.Scheduler.PrefixHitTokens), v("vllm:prefix_cache_hits_total"))
	require.GreaterOrEqual(t, v("vllm:prefix_cache_hits_total"), 16.0, "the second prompt found the first's full block")
	require.GreaterOrEqual(t, v("vllm:prefix_cache_queries_total"), float64(promptTokens))
	iter := only(t, fams, "vllm:iteration_tokens_total").Histogram
	require.Equal(t, float64(st.Scheduler.PrefillTokens)+float64(genTokens), iter.GetSampleSum(), "computed prompt tokens plus sampled ones")
	require.Less(t, float64(st.Scheduler.PrefillTokens), float64(promptTokens), "prefix-cache hits are not computed")
	require.Zero(t, v("vllm:num_requests_running"))
	require.Zero(t, v("vllm:num_requests_waiting"))
	require.Zero(t, v("vllm:kv_cache_usage_perc"))
	require.Equal(t, v("vllm:kv_cache_usage_perc"), v("vllm:gpu_cache_usage_perc"))
	require.Equal(t, float64(st.Scheduler.Preemptions), v("vllm:num_preemptions_total"))
	require.Contains(t, fams["vllm:gpu_cache_usage_perc"].GetHelp(), "DEPRECATED: Use vllm:kv_cache_usage_perc")

	info := only(t, fams, "vllm:cache_config_info")
	require.Equal(t, dto.MetricType_GAUGE, fams["vllm:cache_config_info"].GetType())
	require.Equal(t, 1.0, value(info))
	require.Equal(t, map[string]string{"block_size": "16", "cache_dtype": "auto", "enable_prefix_caching": "True",
		"gpu_memory_utilization": "0.85", "num_cpu_blocks": "0", "num_gpu_blocks": "512", "num_gpu_blocks_override": "None",
		"kv_cache_size_tokens": "8192", "sliding_window": "None", "swap_space": "0", "engine": "0"}, labelMap(info))
}

// TestMetricsPreemptions: a request of n=4 whose completions outgrow an 8-block KV
// cache preempts some of them, and vllm:num_preemptions_total says how often; a request
// ended by its deadline counts as "abort", as vLLM names it.
func TestMetricsPreemptions(t *testing.T) {
	ts := newTestServer(t, serverOpts{engine: engine.Options{NumBlocks: 8}, quiet: true})
	code, body, _ := ts.post(t, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":100,"n":4,"temperature":0,"ignore_eos":true}`)
	require.Equal(t, 200, code, "%s", body)
	ts.waitIdle(t, 10*time.Second)
	fams := ts.scrape(t)
	n := value(only(t, fams, "vllm:num_preemptions_total"))
	require.Positive(t, n)
	require.Equal(t, float64(ts.eng.Stats().Scheduler.Preemptions), n)
	require.Equal(t, map[string]string{"model_name": "stories260K", "engine": "0"}, labelMap(only(t, fams, "vllm:num_preemptions_total")))
	require.Equal(t, "abort", finishLabel(engine.FinishDeadline))
	require.True(t, strings.HasPrefix(fams["vllm:num_preemptions_total"].GetHelp(), "Cumulative number of preemption"))
}
