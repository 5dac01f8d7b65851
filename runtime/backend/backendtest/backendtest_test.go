package backendtest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// f32Only is what the harness's behaviour tests run: every op in f32, without the
// real-shape kernel-path matmul cases (TestCPUAgainstCPU runs those).
var f32Only = backendtest.Options{DTypes: []backend.DType{backend.F32}, Exclude: backendtest.PathCases}

// The real CPU backend passes everything against itself, bit for bit (its results do
// not depend on the thread count), and reports f16/bf16 as skipped. Its 2:4 kernels,
// checked against its dense kernels on the masked weights, sum in another order: they
// pass within the f32 tolerance, but not bit for bit.
func TestCPUAgainstCPU(t *testing.T) {
	ref := cpu.New(cpu.Options{})
	b := cpu.New(cpu.Options{Threads: 1})
	rep := backendtest.Run(nil, ref, b, backendtest.Options{})
	if rep.Failed() {
		t.Fatalf("%s\n%s", rep.Summary(), rep.Text())
	}
	for _, r := range rep.Results {
		switch {
		case r.DType == "f32" && strings.Contains(r.Name, ",2:4"):
			if r.Status != backendtest.Pass || !(r.NMSE < 1e-12) {
				t.Errorf("want a pass to float rounding: %s", r.Line())
			}
		case r.DType == "f32" && (r.Status != backendtest.Pass || r.NMSE != 0):
			t.Errorf("want an exact pass: %s", r.Line())
		case r.DType != "f32" && (r.Status != backendtest.Skip || !strings.Contains(r.Detail, "not supported")):
			t.Errorf("want a skip: %s", r.Line())
		}
	}
	for _, op := range backendtest.Ops {
		if c := rep.ByOp[op]; c.Pass == 0 {
			t.Errorf("op %s: no case passed (%+v)", op, c)
		}
	}
	t.Log(rep.Summary())
}

func TestCases(t *testing.T) {
	all := backendtest.Cases(backendtest.Options{Large: true})
	small := backendtest.Cases(backendtest.Options{})
	seen := map[string]bool{}
	large := 0
	for _, c := range all {
		if seen[c.Name] {
			t.Errorf("duplicate case %s", c.Name)
		}
		seen[c.Name] = true
		if c.Large {
			large++
		}
		for _, dt := range []backend.DType{backend.F32, backend.F16, backend.BF16} {
			if tol := backendtest.Tolerance(c.Op, dt); tol < 0 || tol > 1e-3 {
				t.Errorf("%s: tolerance %g for %s", c.Name, tol, dt)
			}
		}
	}
	if len(small)+large != len(all) || large == 0 {
		t.Errorf("%d cases, %d large, %d by default", len(all), large, len(small))
	}
	for _, c := range small {
		if c.Large {
			t.Errorf("large case %s in the default set", c.Name)
		}
	}
	if got := backendtest.Cases(backendtest.Options{Ops: []string{backendtest.OpRoPE}, Match: "half", DTypes: []backend.DType{backend.F32}}); len(got) == 0 {
		t.Error("no rope/half cases")
	} else {
		for _, c := range got {
			if c.Op != backendtest.OpRoPE || !strings.Contains(c.Name, "half") || c.DType != backend.F32 {
				t.Errorf("filter let %s through", c.Name)
			}
		}
	}
	// The dtype variants of a case draw the same inputs.
	if small[0].Seed != small[1].Seed || small[0].DType == small[1].DType {
		t.Errorf("variants %s and %s: seeds %x, %x", small[0].Name, small[1].Name, small[0].Seed, small[1].Seed)
	}
	t.Logf("%d cases (%d large) over %d shapes", len(all), large, len(all)/3)
}

func TestLlama3InvFreq(t *testing.T) {
	f := backendtest.Llama3InvFreq(128, 500000, true)
	plain := backendtest.Llama3InvFreq(128, 500000, false)
	// High frequencies (wavelength < 8192/4) are kept, low ones (> 8192) divided by 8.
	if f[0] != 1 || f[1] != plain[1] || math.Abs(float64(f[63]/plain[63])-0.125) > 1e-6 {
		t.Errorf("inv freq: %v ... %v (plain %v ... %v)", f[:2], f[63], plain[:2], plain[63])
	}
	for i := 1; i < len(f); i++ {
		if !(f[i] < f[i-1]) || f[i] > plain[i] {
			t.Fatalf("inv freq %d: %g after %g (plain %g)", i, f[i], f[i-1], plain[i])
		}
	}
}

// unsupported says "not supported" two ways: wrapping the sentinel, and in words.
type unsupported struct{ *cpu.Backend }

func (unsupported) MatMul(backend.Stream, backend.Tensor, backend.Tensor, *backend.Weight, backend.Epilogue) error {
	return fmt.Errorf("matmul: int8 prefill: %w", backendtest.ErrNotSupported)
}

func (unsupported) Attention(backend.Stream, backend.Tensor, backend.Tensor, *backend.KVCache, int, *backend.KVIndex, *backend.AttnHeads) error {
	return errors.New("paged attention: head dim not supported by this kernel")
}

// failing errs in RoPE and panics in GatherRows.
type failing struct{ *cpu.Backend }

func (failing) RoPE(backend.Stream, backend.Tensor, backend.Tensor, *backend.RoPE) error {
	return errors.New("rope: launch failed")
}

func (failing) GatherRows(backend.Stream, backend.Tensor, backend.Tensor, backend.Tensor) error {
	panic("index out of range")
}

func TestNotSupportedSkipsAndErrorsFail(t *testing.T) {
	ref := cpu.New(cpu.Options{})
	rep := backendtest.Run(nil, ref, unsupported{cpu.New(cpu.Options{})}, f32Only)
	if rep.Failed() {
		t.Fatalf("a skip counted as a failure: %s", rep.Summary())
	}
	for _, op := range []string{backendtest.OpMatMul, backendtest.OpAttention} {
		if c := rep.ByOp[op]; c.Pass != 0 || c.Skip == 0 {
			t.Errorf("%s: %+v, want all skipped", op, c)
		}
	}
	for _, r := range rep.Results {
		if r.Op == backendtest.OpMatMul && !strings.Contains(r.Detail, "int8 prefill") {
			t.Errorf("skip without the backend's reason: %s", r.Line())
		}
	}

	rep = backendtest.Run(nil, ref, failing{cpu.New(cpu.Options{})}, f32Only)
	for _, r := range rep.Results {
		want := backendtest.Pass
		switch r.Op {
		case backendtest.OpRoPE:
			want = backendtest.Fail
			if !strings.Contains(r.Detail, "launch failed") {
				t.Errorf("error lost: %s", r.Line())
			}
		case backendtest.OpGatherRows:
			want = backendtest.Fail
			if !strings.Contains(r.Detail, "panic: index out of range") {
				t.Errorf("panic lost: %.200s", r.Line())
			}
		}
		if r.Status != want {
			t.Errorf("want %s: %.200s", want, r.Line())
		}
	}
}

func TestReportJSON(t *testing.T) {
	rep := backendtest.Run(nil, cpu.New(cpu.Options{}), nanSiLUMul{cpu.New(cpu.Options{})},
		backendtest.Options{Ops: []string{backendtest.OpSiLUMul, backendtest.OpGatherRows}})
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back backendtest.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if !back.Failed() || back.Total != rep.Total || len(back.Results) != len(rep.Results) || back.Tols[backendtest.OpMatMul] != rep.Tols[backendtest.OpMatMul] {
		t.Errorf("round trip: %+v vs %+v", back.Total, rep.Total)
	}
	if r := back.Results[0]; r.Status != backendtest.Fail || !math.IsNaN(float64(r.NMSE)) {
		t.Errorf("first result %s", r.Line())
	}
	if !strings.Contains(rep.Text(), "FAIL silu_mul/") || !strings.Contains(rep.Text(), "SKIP gather_rows/") {
		t.Errorf("text:\n%s", rep.Text())
	}
}
