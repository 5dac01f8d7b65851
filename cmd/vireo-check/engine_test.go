package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
)

// TestEngineModesOnCPU runs the engine measurements' code path on the CPU backend with
// a tiny synthetic model (the GPU run uses the same code with -device cuda).
func TestEngineModesOnCPU(t *testing.T) {
	res, err := runEngine([]string{"-device", "cpu", "-shape", "tiny", "-modes", "decode,ttft,throughput,mixed",
		"-graphs", "on,off", "-decode-tokens", "8", "-ttft", "16,64", "-concurrency", "1,2", "-streams", "2",
		"-kv-cache-bytes", "33554432"})
	if err != nil {
		t.Fatal(err)
	}
	m := res.(map[string]any)
	for _, k := range []string{"decode graphs=on", "decode graphs=off", "ttft graphs=on", "throughput graphs=off", "mixed graphs=on"} {
		if m[k] == nil {
			t.Errorf("no %q in %v", k, m)
		}
	}
	// On the CPU both runs are eager and bit-identical: every token agrees.
	a, ok := m["decode graphs on/off agreement"].(map[string]any)
	if !ok || a["tokens"] != 8 || a["equal"] != 8 || a["leading_equal"] != 8 {
		t.Errorf("graphs on/off agreement %v, want all 8 tokens equal", m["decode graphs on/off agreement"])
	}
}

// TestProfileOnCPU runs the profile phase's code on the CPU backend with a tiny
// synthetic model: every op of the passes is counted (a prefill and 4 decode passes:
// layer ops 5 × layers times), the pprof file parses, and the engine runs record.
func TestProfileOnCPU(t *testing.T) {
	out := filepath.Join(t.TempDir(), "profile.json")
	res, err := runProfile([]string{"-device", "cpu", "-shape", "tiny", "-prompt", "24", "-steps", "4", "-rounds", "1", "-engine-seqs", "1,2", "-out", out})
	if err != nil {
		t.Fatal(err)
	}
	m := res.(map[string]any)
	passes := m["passes"].(map[string]any)
	sum := passes["summary"].(profiling.Summary)
	layers := int64(m["layers"].(int))
	if sum.Steps != 5 {
		t.Errorf("%d passes, want 5", sum.Steps)
	}
	for _, o := range sum.Ops {
		want := int64(5)
		if o.Op == "attention" || o.Op == "q_proj" || o.Op == "silu_mul" {
			want *= layers
		}
		if o.Op == "embed" || o.Op == "attention" || o.Op == "q_proj" || o.Op == "silu_mul" || o.Op == "classifier" {
			if o.Calls != want {
				t.Errorf("%s: %d calls, want %d", o.Op, o.Calls, want)
			}
		}
	}
	if len(sum.Ops) != int(model.NumOps) {
		t.Errorf("%d ops in the summary, want %d", len(sum.Ops), model.NumOps)
	}
	data, err := os.ReadFile(strings.TrimSuffix(out, ".json") + ".pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := profile.ParseData(data); err != nil {
		t.Fatal(err)
	}
	if o := passes["overhead"].(map[string]any); o["on_over_off"].(float64) <= 0 {
		t.Errorf("overhead %v", o)
	}
	eng := m["engine"].(map[string]any)
	for _, c := range []string{"c=1", "c=2"} {
		r, ok := eng[c].(map[string]any)
		if !ok {
			t.Fatalf("no engine run %s: %v", c, eng)
		}
		if s := r["summary"].(profiling.Summary); s.Steps == 0 || s.OpNs > s.StepNs {
			t.Errorf("engine %s: %d passes, ops %d ns of %d", c, s.Steps, s.OpNs, s.StepNs)
		}
	}
}
