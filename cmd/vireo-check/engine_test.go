package main

import "testing"

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
