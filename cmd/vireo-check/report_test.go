package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportMerges: a run whose ops phase was cut off (only its JSON lines) and whose
// other phases wrote their JSON gives the summary issue 19 names, from the right
// fields, with the ratios to the anchors; a skipped phase says why.
func TestReportMerges(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("device.status", `{"rc": 0, "seconds": 3}`)
	write("device.json", `{"command": "device", "result": {"device": {"Name": "NVIDIA H200"}}}`)
	write("bandwidth.status", `{"rc": 0, "seconds": 2}`)
	write("bandwidth.json", `{"command": "bandwidth", "result": {"d2d_gbs": 4000}}`)
	write("ops.status", `{"rc": 124, "seconds": 60, "cap_s": 60}`)
	write("ops.jsonl", `{"kind": "case", "value": {"status": "PASS"}}
{"kind": "case", "value": {"status": "FAIL"}}
{"kind": "case", "value": {"status": "PASS"}}
{"kind": "ca`) // the kill cut the last line
	write("sanitizer.status", `{"rc": 1, "seconds": 40}`)
	write("sanitizer.json", `{"errors": 3, "memcheck-ops": {"errors": 3}}`)
	write("torch.status", `{"rc": 0, "seconds": 30}`)
	write("torch.json", `{"device": "NVIDIA H200", "decode": {"tokens_per_s": 200}, "prefill": {"2048": {"ms": 100}}, "decode_anchor_bw_fraction": 0.8}`)
	write("e2e-int8.status", `{"rc": 0, "seconds": 50}`)
	write("e2e-int8.json", `{"command": "e2e", "result": {"llama3-8b int8": {"decode_tokens_per_s": 300, "ttft_ms": 150, "bytes_per_token": 8e9}, "stories260K": {"pass": true, "same_prefix": 48}}}`)
	write("engine.status", `{"skipped": "ops failed"}`)
	write("serve.status", `{"rc": 1, "seconds": 90}`)
	write("serve.json", `{"requests_ok": 262, "requests_failed": 2, "runs": {"c16": {"ttft_ms": {"p50": 41.5}}, "c64": {"output_throughput": 5120.5}}}`)
	res, err := runReport([]string{"-work", dir, "-phases", "device,bandwidth,ops,sanitizer,torch,e2e-int8,engine,serve", "-budget", "300", "-elapsed", "250"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	s := out["summary"].(map[string]any)
	want := map[string]any{"card": "NVIDIA H200", "date": time.Now().UTC().Format("2006-01-02"), "ops_pass": 2.0, "ops_fail": 1.0,
		"sanitizer_errors": 3.0, "decode_tok_s": 300.0, "decode_anchor_tok_s": 200.0, "roofline_tok_s": 500.0,
		"ttft_2048_ms": 150.0, "ttft_2048_anchor_ms": 100.0, "decode_vs_anchor": 1.5, "ttft_2048_vs_anchor": 1.5,
		"decode_vs_roofline": 0.6, "e2e_stories_same_prefix": 48.0,
		"serve_requests_ok": 262.0, "serve_requests_failed": 2.0, "ttft_p50_ms_c16": 41.5, "throughput_tok_s_c64": 5120.5,
		"graphs_captured": nil, "graphs_agree_32": nil} // the engine phase was skipped
	for _, k := range []string{"graphs_captured", "graphs_agree_32", "serve_requests_ok", "ttft_p50_ms_c16", "throughput_tok_s_c64"} {
		if _, ok := s[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("summary[%q] = %v, want %v", k, s[k], v)
		}
	}
	ph := s["phases"].(map[string]any)
	for k, v := range map[string]string{"device": "pass", "ops": "timeout", "sanitizer": "fail", "engine": "skipped", "serve": "fail"} {
		if ph[k] != v {
			t.Errorf("phase %s: %v, want %s", k, ph[k], v)
		}
	}
	if r := out["engine"].(map[string]any)["reason"]; r != "ops failed" {
		t.Errorf("engine's reason %v", r)
	}
	if p := out["ops"].(map[string]any); p["partial"] != true || len(p["lines"].([]any)) != 3 {
		t.Errorf("ops phase: %v", p)
	}
	// GPU run B's engine keys from an engine phase's result.
	eng := map[string]any{"engine": map[string]any{"status": "pass", "result": map[string]any{"result": map[string]any{
		"decode graphs=on":               map[string]any{"graphs": "replay"},
		"decode graphs on/off agreement": map[string]any{"tokens": 64.0, "equal": 40.0, "leading_equal": 31.0},
	}}}}
	if g := summarize(eng, []string{"engine"}, time.Now()); g.GraphsCaptured != true || g.GraphsAgree32 != false {
		t.Errorf("engine keys: captured %v, agree 32 %v; want true, false (leading 31)", g.GraphsCaptured, g.GraphsAgree32)
	}
	txt := screenText(summarize(map[string]any{}, nil, time.Now()), map[string]any{}, nil, 300, 1)
	if !strings.Contains(txt, "decode tok/s") {
		t.Errorf("screen:\n%s", txt)
	}
}
