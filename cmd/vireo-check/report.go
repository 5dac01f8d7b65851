package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runReport merges a gpu-check.sh run into one JSON object: per phase its status (the
// script's <phase>.status: rc, seconds, or why it was skipped) and its result (the
// phase's <phase>.json, or, when the phase was cut off before writing it, the lines
// of <phase>.jsonl it left, marked partial), plus the top-level "summary" every GPU run
// reads the same way (issue 19): card, date, ops_pass, ops_fail, sanitizer_errors,
// decode_tok_s, decode_anchor_tok_s, roofline_tok_s, ttft_2048_ms, ttft_2048_anchor_ms,
// with the derived ratios. It prints the one-screen summary to stdout.
func runReport(args []string) (any, error) {
	fs := flags("report")
	work := fs.String("work", "", "the run's work directory (gpu-check.sh's phase files)")
	phases := fs.String("phases", "", "phases in run order (default: every *.status in -work)")
	budget := fs.Float64("budget", 0, "the run's budget in seconds")
	elapsed := fs.Float64("elapsed", 0, "seconds the run took")
	bundle := fs.String("bundle", "", "the bundle directory")
	screen := fs.String("screen", "", "also write the one-screen summary to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *work == "" {
		return nil, fmt.Errorf("report: -work is required")
	}
	names := splitComma(*phases)
	if len(names) == 0 {
		m, _ := filepath.Glob(filepath.Join(*work, "*.status"))
		for _, p := range m {
			names = append(names, strings.TrimSuffix(filepath.Base(p), ".status"))
		}
	}
	out := map[string]any{"bundle": *bundle, "budget_s": *budget, "elapsed_s": *elapsed}
	var order []string
	for _, n := range names {
		out[n] = loadPhase(*work, n)
		order = append(order, n)
	}
	out["phases"] = order
	sum := summarize(out, order, time.Now().UTC())
	out["summary"] = sum
	text := screenText(sum, out, order, *budget, *elapsed)
	fmt.Fprint(os.Stderr, text)
	if *screen != "" {
		if err := os.WriteFile(*screen, []byte(text), 0o644); err != nil {
			return out, err
		}
	}
	return out, nil
}

// phaseStatus is what gpu-check.sh writes per phase.
type phaseStatus struct {
	RC      *int    `json:"rc,omitempty"`
	Seconds float64 `json:"seconds"`
	Cap     float64 `json:"cap_s,omitempty"`
	Skipped string  `json:"skipped,omitempty"`
}

// loadPhase reads one phase's files into {"status", "result" or "lines", "error"}.
func loadPhase(dir, name string) map[string]any {
	p := map[string]any{}
	var st phaseStatus
	if b, err := os.ReadFile(filepath.Join(dir, name+".status")); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			p["status_error"] = err.Error()
		}
	}
	switch {
	case st.Skipped != "":
		p["status"], p["reason"] = "skipped", st.Skipped
	case st.RC == nil:
		p["status"], p["reason"] = "not run", "no status file"
	case *st.RC == 0:
		p["status"] = "pass"
	case *st.RC == 124 || *st.RC == 137:
		p["status"] = "timeout"
	default:
		p["status"] = "fail"
	}
	if st.RC != nil {
		p["rc"] = *st.RC
	}
	p["seconds"], p["cap_s"] = st.Seconds, st.Cap
	var full map[string]any
	if b, err := os.ReadFile(filepath.Join(dir, name+".json")); err == nil {
		if err := json.Unmarshal(b, &full); err != nil {
			p["json_error"] = err.Error()
			full = nil
		}
	}
	if full != nil {
		p["result"] = full
		if e, ok := full["error"].(string); ok && p["reason"] == nil {
			p["reason"] = e
		}
	} else if ls := readLines(filepath.Join(dir, name+".jsonl")); len(ls) > 0 {
		p["partial"], p["lines"] = true, ls
	}
	if p["reason"] == nil && p["status"] != "pass" {
		p["reason"] = lastLine(filepath.Join(dir, name+".log"))
	}
	return p
}

func readLines(path string) []any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var v any
		if json.Unmarshal(sc.Bytes(), &v) == nil {
			out = append(out, v) // a line cut off by the kill is dropped
		}
	}
	return out
}

// lastLine is the last non-empty line of a log (at most 300 bytes): why a phase failed.
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 8192 {
		f.Seek(-8192, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	l := strings.TrimSpace(ls[len(ls)-1])
	if len(l) > 300 {
		l = l[:300]
	}
	return l
}

// get walks a decoded JSON value by keys (string: object member).
func get(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func num(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

// Summary is the run's headline: issue 19's keys (nil when the run did not measure
// it), the anchors' ratios, and each phase's status.
type Summary struct {
	Card                  any               `json:"card"`
	Date                  string            `json:"date"`
	OpsPass               any               `json:"ops_pass"`
	OpsFail               any               `json:"ops_fail"`
	SanitizerErrors       any               `json:"sanitizer_errors"`
	DecodeTokS            any               `json:"decode_tok_s"`
	DecodeAnchorTokS      any               `json:"decode_anchor_tok_s"`
	RooflineTokS          any               `json:"roofline_tok_s"`
	TTFT2048Ms            any               `json:"ttft_2048_ms"`
	TTFT2048AnchorMs      any               `json:"ttft_2048_anchor_ms"`
	DecodeVsAnchor        any               `json:"decode_vs_anchor"`
	DecodeVsRoofline      any               `json:"decode_vs_roofline"`
	TTFTVsAnchor          any               `json:"ttft_2048_vs_anchor"`
	DecodeAnchorBWFrac    any               `json:"decode_anchor_bw_fraction"`
	CopyGBs               any               `json:"copy_gbs"`
	BytesPerToken         any               `json:"bytes_per_token"`
	Phases                map[string]string `json:"phases"`
	PartialPhases         []string          `json:"partial_phases,omitempty"`
	CudaTestsPass         any               `json:"cuda_tests_pass"`
	CudaTestsFail         any               `json:"cuda_tests_fail"`
	E2EStoriesPass        any               `json:"e2e_stories_pass"`
	E2EStoriesSamePrefix  any               `json:"e2e_stories_same_prefix"`
	KernelsCheckedFailing any               `json:"kernels_check_fail"`
	// GPU run B (issue 20): the engine phase's decode graphs, and the serving phase.
	GraphsCaptured      any `json:"graphs_captured"` // the graphs=on run replayed captured graphs
	GraphsAgree32       any `json:"graphs_agree_32"` // greedy tokens with graphs on and off equal for the first 32
	ServeRequestsOK     any `json:"serve_requests_ok"`
	ServeRequestsFailed any `json:"serve_requests_failed"`
	TTFTP50MsC16        any `json:"ttft_p50_ms_c16"`
	ThroughputTokSC64   any `json:"throughput_tok_s_c64"` // output tokens/s at concurrency 64
}

func ratio(a, b any) any {
	x, ok1 := num(a)
	y, ok2 := num(b)
	if !ok1 || !ok2 || y == 0 {
		return nil
	}
	return x / y
}

func summarize(out map[string]any, order []string, now time.Time) Summary {
	s := Summary{Date: now.Format("2006-01-02"), Phases: map[string]string{}}
	for _, n := range order {
		p := out[n].(map[string]any)
		s.Phases[n], _ = p["status"].(string)
		if p["partial"] == true {
			s.PartialPhases = append(s.PartialPhases, n)
		}
	}
	res := func(phase string, keys ...string) any {
		return get(out[phase], append([]string{"result", "result"}, keys...)...)
	}
	s.Card = res("device", "device", "Name")
	if s.Card == nil {
		s.Card = get(out["torch"], "result", "device")
	}
	s.OpsPass, s.OpsFail = res("ops", "total", "pass"), res("ops", "total", "fail")
	if s.OpsPass == nil { // cut off: count the lines it left
		if ls, ok := get(out["ops"], "lines").([]any); ok {
			pass, fail := 0.0, 0.0
			for _, l := range ls {
				switch get(l, "value", "status") {
				case "PASS":
					pass++
				case "FAIL":
					fail++
				}
			}
			s.OpsPass, s.OpsFail = pass, fail
		}
	}
	s.SanitizerErrors = get(out["sanitizer"], "result", "errors")
	s.CudaTestsPass, s.CudaTestsFail = get(out["cuda-tests"], "result", "pass"), get(out["cuda-tests"], "result", "fail")
	s.KernelsCheckedFailing = res("kernels", "check_fail")
	e2e := res("e2e-int8", "llama3-8b int8")
	s.DecodeTokS, s.TTFT2048Ms = get(e2e, "decode_tokens_per_s"), get(e2e, "ttft_ms")
	s.BytesPerToken = get(e2e, "bytes_per_token")
	s.E2EStoriesPass = res("e2e-int8", "stories260K", "pass")
	s.E2EStoriesSamePrefix = res("e2e-int8", "stories260K", "same_prefix")
	s.DecodeAnchorTokS = get(out["torch"], "result", "decode", "tokens_per_s")
	s.TTFT2048AnchorMs = get(out["torch"], "result", "prefill", "2048", "ms")
	s.DecodeAnchorBWFrac = get(out["torch"], "result", "decode_anchor_bw_fraction")
	s.CopyGBs = res("bandwidth", "d2d_gbs")
	if s.CopyGBs == nil {
		s.CopyGBs = get(out["torch"], "result", "copy", "gbs")
	}
	if gbs, ok := num(s.CopyGBs); ok {
		if b, ok := num(s.BytesPerToken); ok && b > 0 {
			s.RooflineTokS = gbs * 1e9 / b
		}
	}
	if g, ok := res("engine", "decode graphs=on", "graphs").(string); ok {
		s.GraphsCaptured = g == "replay"
	}
	if lead, ok := num(res("engine", "decode graphs on/off agreement", "leading_equal")); ok {
		s.GraphsAgree32 = lead >= 32
	}
	s.ServeRequestsOK = get(out["serve"], "result", "requests_ok")
	s.ServeRequestsFailed = get(out["serve"], "result", "requests_failed")
	s.TTFTP50MsC16 = get(out["serve"], "result", "runs", "c16", "ttft_ms", "p50")
	s.ThroughputTokSC64 = get(out["serve"], "result", "runs", "c64", "output_throughput")
	s.DecodeVsAnchor = ratio(s.DecodeTokS, s.DecodeAnchorTokS)
	s.DecodeVsRoofline = ratio(s.DecodeTokS, s.RooflineTokS)
	s.TTFTVsAnchor = ratio(s.TTFT2048Ms, s.TTFT2048AnchorMs)
	return s
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case float64:
		if x == float64(int64(x)) && x < 1e9 {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprintf("%.4g", x)
	}
	return fmt.Sprint(v)
}

// screenText is the one-screen summary: pass/fail per phase (with why), then each
// headline figure beside its anchor.
func screenText(s Summary, out map[string]any, order []string, budget, elapsed float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "==== gpu-check summary: card %s, %s, %.0f of %.0f s ====\n", show(s.Card), s.Date, elapsed, budget)
	for _, n := range order {
		p := out[n].(map[string]any)
		st, _ := p["status"].(string)
		why, _ := p["reason"].(string)
		if len(why) > 90 {
			why = why[:90] + "…"
		}
		part := ""
		if p["partial"] == true {
			part = " (partial)"
		}
		fmt.Fprintf(&b, "  %-11s %-8s %5.0fs%s  %s\n", n, st, p["seconds"], part, why)
	}
	fmt.Fprintf(&b, "  ops: %s pass, %s fail; cuda-tests: %s pass, %s fail; sanitizer errors: %s; kernels failing their CPU check: %s\n",
		show(s.OpsPass), show(s.OpsFail), show(s.CudaTestsPass), show(s.CudaTestsFail), show(s.SanitizerErrors), show(s.KernelsCheckedFailing))
	fmt.Fprintf(&b, "  stories260K vs CPU: pass %s, same prefix %s\n", show(s.E2EStoriesPass), show(s.E2EStoriesSamePrefix))
	fmt.Fprintf(&b, "  %-28s %12s %12s %8s\n", "figure", "vireo", "anchor", "ratio")
	fmt.Fprintf(&b, "  %-28s %12s %12s %8s\n", "decode tok/s (b1, int8)", show(s.DecodeTokS), show(s.DecodeAnchorTokS), show(s.DecodeVsAnchor))
	fmt.Fprintf(&b, "  %-28s %12s %12s %8s\n", "decode vs roofline tok/s", show(s.DecodeTokS), show(s.RooflineTokS), show(s.DecodeVsRoofline))
	fmt.Fprintf(&b, "  %-28s %12s %12s %8s\n", "TTFT 2048 ms", show(s.TTFT2048Ms), show(s.TTFT2048AnchorMs), show(s.TTFTVsAnchor))
	fmt.Fprintf(&b, "  copy GB/s %s; bytes/token %s; anchor's decode bandwidth fraction %s\n", show(s.CopyGBs), show(s.BytesPerToken), show(s.DecodeAnchorBWFrac))
	if s.GraphsCaptured != nil || s.ServeRequestsOK != nil {
		fmt.Fprintf(&b, "  graphs captured %s, agree 32 %s; serve: %s ok, %s failed, TTFT p50 c16 %s ms, c64 %s output tok/s\n",
			show(s.GraphsCaptured), show(s.GraphsAgree32), show(s.ServeRequestsOK), show(s.ServeRequestsFailed), show(s.TTFTP50MsC16), show(s.ThroughputTokSC64))
	}
	return b.String()
}
