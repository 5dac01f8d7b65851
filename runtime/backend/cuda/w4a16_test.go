//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// w4Backends are the W4A16 settings the GPU check runs the W4A16 op cases under: the
// default policy, and a tuning that forces the 256-column decode tile the policy never
// picks.
var w4Backends = []struct {
	name string
	opt  Options
}{
	{"v2-w4", Options{Kernels: KernelsV2, W4A16: true}},
	{"v2-w4-c11", Options{Kernels: KernelsV2, W4A16: true, MMTuning: "w4a16=11"}},
}

// w4Cases are the default backendtest matmul cases with GGUF Q4_0/Q4_K weights.
func w4Cases() []backendtest.Case {
	var out []backendtest.Case
	for _, c := range backendtest.Cases(backendtest.Options{Ops: []string{backendtest.OpMatMul}, DTypes: []backend.DType{backend.F16}}) {
		if c.W4 != 0 {
			out = append(out, c)
		}
	}
	return out
}

// TestMatMulKernelW4 pins the W4A16 dispatch: with Options.W4A16 and kernels v2 the
// backend takes Q4_0 and Q4_K blocks (nothing else, and no table to gather), and the
// tile follows the rows; off, or on kernels v1, it takes no blocks.
func TestMatMulKernelW4(t *testing.T) {
	b := fakeV2(t, Options{Kernels: KernelsV2, W4A16: true})
	for _, tc := range []struct {
		n    int
		w    backend.DType
		want string
	}{{1, backend.Q4_0, "mm2-w4a16-c10-16x128"}, {16, backend.Q4_K, "mm2-w4a16-c10-16x128"}, {17, backend.Q4_0, "mm2-w4a16-c12-32x128"},
		{33, backend.Q4_K, "mm2-w4a16-c13-64x128"}, {256, backend.Q4_0, "mm2-w4a16-c13-64x128"}} {
		if got, _, _ := b.MatMulKernel(tc.n, 4096, 1024, tc.w, backend.Epilogue{}); got != tc.want {
			t.Errorf("n=%d %s: %s, want %s", tc.n, tc.w, got, tc.want)
		}
	}
	for _, typ := range []backend.DType{backend.Q4_0, backend.Q4_K} {
		if !b.LoadsBlocks(typ) || b.GathersBlocks(typ) {
			t.Errorf("%s: loads %v, gathers %v", typ, b.LoadsBlocks(typ), b.GathersBlocks(typ))
		}
	}
	for _, typ := range []backend.DType{backend.Q5_K, backend.Q8_0, backend.Q6_K, backend.Q4_1, backend.I8, backend.F16} {
		if b.LoadsBlocks(typ) {
			t.Errorf("%s blocks taken", typ)
		}
	}
	for _, o := range []Options{{Kernels: KernelsV2}, {Kernels: KernelsV1, W4A16: true}} {
		if (&Backend{opt: o}).LoadsBlocks(backend.Q4_0) {
			t.Errorf("%+v: takes Q4_0 blocks", o)
		}
	}
}

// TestMM2CasesW4Reach: under each W4A16 setting, the default W4 op cases reach every
// configuration the setting can pick, each with a row tail at a Llama-3-8B shape, split-K
// and a column tail, in both modes (Q4_0 and Q4_K) — what GPU run C's ops phase then
// checks on the card. No GPU needed.
func TestMM2CasesW4Reach(t *testing.T) {
	cases := w4Cases()
	if len(cases) == 0 {
		t.Fatal("no W4 cases")
	}
	all := map[int]bool{}
	for _, set := range w4Backends {
		b := fakeV2(t, set.opt)
		for n := 1; n <= 256; n++ {
			all[b.mm2.ConfigFor(kmodel.W4A16, n)] = true
		}
	}
	for cfg, c := range kmodel.Configs {
		if c.Kind == kmodel.W4A16 && !all[cfg] {
			t.Errorf("%s: no setting of w4Backends runs it", kmodel.Name(cfg))
		}
	}
	for _, set := range w4Backends {
		b := fakeV2(t, set.opt)
		type reach struct{ real, rowTail, colTail, split, q40, q4k bool }
		got := map[int]*reach{}
		for _, c := range cases {
			pl := b.mm2Plan(kmodel.W4A16, c.N, c.Out, c.In, caseEpi(c))
			cfg := kmodel.Configs[pl.Config]
			cols := cfg.BN()
			if c.GLU {
				cols /= 2
			}
			r := got[pl.Config]
			if r == nil {
				r = &reach{}
				got[pl.Config] = r
			}
			real := c.In == backendtest.Llama3Dim
			r.real = r.real || real
			r.rowTail = r.rowTail || (real && c.N%cfg.BM() != 0)
			r.colTail = r.colTail || c.Out%cols != 0
			r.split = r.split || pl.Split > 1
			r.q40 = r.q40 || c.W4 == backend.Q4_0
			r.q4k = r.q4k || c.W4 == backend.Q4_K
		}
		want := map[int]bool{}
		for n := 1; n <= 256; n++ {
			want[b.mm2.ConfigFor(kmodel.W4A16, n)] = true
		}
		for cfg := range want {
			r := got[cfg]
			switch {
			case r == nil:
				t.Errorf("%s: %s: no default case reaches it", set.name, kmodel.Name(cfg))
			case !r.real || !r.rowTail || !r.colTail || !r.split || !r.q40 || !r.q4k:
				t.Errorf("%s: %s: reached without a row tail at a Llama-3-8B shape, a column tail, split-K or both modes (%+v)", set.name, kmodel.Name(cfg), *r)
			}
		}
	}
}

// TestMM2CasesW4Emulate replays in kmodel's emulator the launches the default W4 op
// cases make under each W4A16 setting (the real shapes cut down as TestMM2CasesEmulate
// cuts them: k to 512, every row tile, two column tiles plus the tail).
func TestMM2CasesW4Emulate(t *testing.T) {
	seen := map[string]bool{}
	for _, set := range w4Backends {
		b := fakeV2(t, set.opt)
		for _, c := range w4Cases() {
			epi := caseEpi(c)
			pl := b.mm2Plan(kmodel.W4A16, c.N, c.Out, c.In, epi)
			k, nOut := c.In, c.Out
			if k > 512 {
				k = 512
				pl.Split = min(pl.Split, k/32)
			}
			cols := kmodel.Configs[pl.Config].BN()
			if c.GLU {
				cols /= 2
			}
			if nOut > 3*cols {
				nOut = 2*cols + nOut%cols
			}
			affine := c.W4 == backend.Q4_K
			key := fmt.Sprintf("%d/%d/%d/%v/%+v/%v", c.N, nOut, k, mm2Epi(epi), pl, affine)
			if seen[key] {
				continue
			}
			seen[key] = true
			r := kmodel.Emulate(kmodel.Call{Kind: kmodel.W4A16, N: c.N, NOut: nOut, K: k, LdX: k, LdOut: nOut, Epi: mm2Epi(epi), Plan: pl,
				Seed: uint64(len(seen)), Affine: affine})
			if err := r.Err(); err != nil {
				t.Errorf("%s %s (%s split %d): %v", set.name, c.Name, kmodel.Name(pl.Config), pl.Split, err)
			} else if r.Stores != c.N*nOut {
				t.Errorf("%s %s: %d stores, want %d", set.name, c.Name, r.Stores, c.N*nOut)
			}
		}
	}
	t.Logf("%d distinct launches emulated", len(seen))
}

// TestMatMulPathsW4 runs the W4 matmul op checks under each W4A16 setting against the
// CPU backend, and requires that they ran the W4A16 kernels (GPU run C; it skips
// without a GPU).
func TestMatMulPathsW4(t *testing.T) {
	for _, set := range w4Backends {
		t.Run(set.name, func(t *testing.T) {
			b, err := New(set.opt)
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			w4 := 0
			rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Ops: []string{backendtest.OpMatMul}, Match: "w=q4_",
				OnResult: func(r backendtest.Result) {
					if strings.HasPrefix(r.Kernel, mm2Prefix+"w4a16") {
						w4++
					}
				}})
			if rep.Failed() || w4 == 0 {
				t.Errorf("%s (%d cases on the W4A16 kernels)", rep.Summary(), w4)
			}
		})
	}
}

// TestMM2FaultsCaughtW4: with each deliberate fault, every W4 case that reaches the
// W4A16 kernels and that the fault changes (faultApplies) must fail (GPU run C; it
// skips without a GPU).
func TestMM2FaultsCaughtW4(t *testing.T) {
	for _, f := range []cgo.MM2Fault{cgo.MM2FaultKStep, cgo.MM2FaultRow} {
		t.Run(fmt.Sprint(int(f)), func(t *testing.T) {
			b, err := New(Options{Kernels: KernelsV2, W4A16: true, MM2Fault: f})
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			opt := backendtest.Options{Ops: []string{backendtest.OpMatMul}, Match: "w=q4_", DTypes: []backend.DType{backend.F16}}
			cases := casesByName(opt)
			failed, w4 := 0, 0
			opt.OnResult = func(r backendtest.Result) {
				if strings.HasPrefix(r.Kernel, mm2Prefix+"w4a16") && faultApplies(b, cases[r.Name], f, kmodel.W4A16) {
					w4++
					if r.Status != backendtest.Pass {
						failed++
					}
				}
			}
			backendtest.Run(nil, cpu.New(cpu.Options{}), b, opt)
			if w4 == 0 || failed != w4 {
				t.Errorf("fault %d: %d of %d W4A16 cases it changes failed; every one must", f, failed, w4)
			}
		})
	}
}

// TestMatMulSplitW4: MatMulSplit of a fused Q4_0 / Q4_K weight (one W4A16 launch with
// split outputs) equals MatMul into one output bit for bit; outputs between guards,
// poisoned with NaN. It skips without a GPU.
func TestMatMulSplitW4(t *testing.T) {
	b, err := New(Options{Kernels: KernelsV2, W4A16: true})
	if errors.Is(err, cgo.ErrNoDevice) {
		t.Skipf("no CUDA device: %v", err)
	}
	must(t, err)
	t.Cleanup(func() { b.Close() })
	s, err := b.NewStream()
	must(t, err)
	r := rand.New(rand.NewSource(26))
	for _, tc := range []struct {
		typ  backend.DType
		n, k int
		cols []int
		acc  bool
	}{
		{backend.Q4_0, 1, 4096, []int{4096, 1024, 1024}, false},
		{backend.Q4_K, 20, 4096, []int{4096, 1024, 1024}, true},
		{backend.Q4_0, 9, 96, []int{69, 33, 40}, false},
		{backend.Q4_K, 130, 256, []int{17, 40}, true},
	} {
		name := fmt.Sprintf("%s,n=%d,k=%d,cols=%v,acc=%v", tc.typ, tc.n, tc.k, tc.cols, tc.acc)
		nOut := 0
		for _, c := range tc.cols {
			nOut += c
		}
		gt := map[backend.DType]ggml.Type{backend.Q4_0: ggml.Q4_0, backend.Q4_K: ggml.Q4_K}[tc.typ]
		blocks := make([]byte, nOut*tc.typ.RowBytes(tc.k))
		must(t, ggml.Quantize(gt, blocks, randF32(r, nOut*tc.k, 0.05)))
		w, err := b.LoadWeight(&backend.HostWeight{Name: "qkv", Out: nOut, In: tc.k, Blocks: blocks, BlockType: tc.typ})
		must(t, err)
		if w.Kind != backend.W4A16 {
			t.Fatalf("%s: loaded as %s", name, w.Kind)
		}
		x := upF32(t, b, randF32(r, tc.n*tc.k, 1), tc.n, tc.k)
		init := randF32(r, tc.n*nOut, 1)
		checkSplit(t, b, s, name, x, w, tc.n, tc.cols, init, backend.Epilogue{Accumulate: tc.acc}, func(v, e float32) bool { return v == e })
		must(t, b.FreeWeight(w))
	}
}

// TestFaultsApply: the fault demonstrations have cases to change — several W4A16 and
// v2 int8 matmul cases where each deliberate fault changes the output — and the rule
// leaves out the ones it cannot change (one row; a one-stage slice). No GPU needed.
func TestFaultsApply(t *testing.T) {
	w4 := fakeV2(t, Options{Kernels: KernelsV2, W4A16: true})
	v2 := fakeV2(t, Options{Kernels: KernelsV2})
	for _, f := range []cgo.MM2Fault{cgo.MM2FaultKStep, cgo.MM2FaultRow} {
		nw4, n8 := 0, 0
		for _, c := range w4Cases() {
			if faultApplies(w4, c, f, kmodel.W4A16) {
				nw4++
			}
		}
		for _, c := range mm2Cases() {
			if kind, ok := v2.mm2Kind(c.N, c.In, caseEpi(c), nil, nil); ok && faultApplies(v2, c, f, kind) {
				n8++
			}
		}
		if nw4 < 5 || n8 < 5 {
			t.Errorf("fault %d: changes %d W4A16 and %d int8 v2 cases", f, nw4, n8)
		}
	}
	one := backendtest.Case{N: 1, In: 32, Out: 7, W4: backend.Q4_0}
	if faultApplies(w4, one, cgo.MM2FaultRow, kmodel.W4A16) || faultApplies(w4, one, cgo.MM2FaultKStep, kmodel.W4A16) {
		t.Error("a 1-row, one-group case counted")
	}
	if !faultApplies(w4, backendtest.Case{N: 2, In: 4096, Out: 7, W4: backend.Q4_0}, cgo.MM2FaultKStep, kmodel.W4A16) {
		t.Error("k = 4096 on 7 outputs (no split) not counted")
	}
}
