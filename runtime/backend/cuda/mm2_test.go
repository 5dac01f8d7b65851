//go:build cuda

package cuda

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// TestMM2Table: the Go model's configuration table, tile sizes, shared memory and
// workspace sizes are the kernel library's (vireo_matmul2_config and
// vireo_matmul2_workspace_bytes make no device call, so CI runs this: make cuda-check).
func TestMM2Table(t *testing.T) {
	for i, c := range kmodel.Configs {
		lib, ok := cgo.MatMul2Config(i)
		if !ok {
			t.Fatalf("the library has no configuration %d; the model has %d", i, len(kmodel.Configs))
		}
		want := cgo.MM2Config{Kind: cgo.MM2Kind(c.Kind), WarpsM: c.WM, WarpsN: c.WN, MTiles: c.MT, NTiles: c.NT, BK: c.BK,
			Stages: c.Stages, BlockRows: c.BM(), BlockCols: c.BN(), Threads: c.Threads(), SmemBytes: c.SmemBytes()}
		if lib != want {
			t.Errorf("configuration %d: library %+v, model %+v", i, lib, want)
		}
		if c.SmemBytes() > 227*1024 {
			t.Errorf("configuration %d: %d bytes of shared memory, more than a Hopper block may have", i, c.SmemBytes())
		}
		for _, s := range []struct{ n, nOut, split int }{{1, 4096, 8}, {130, 1000, 3}, {2048, 14336, 1}, {7, 9, 2}} {
			for _, epi := range []kmodel.Epilogue{kmodel.EpiNone, kmodel.EpiSiLUGLU} {
				got, err := cgo.MatMul2WorkspaceBytes(i, s.n, s.nOut, cgo.Epilogue(epi), s.split)
				if err != nil {
					t.Fatal(err)
				}
				if w := kmodel.WorkspaceBytes(i, s.n, s.nOut, epi, s.split); got != w {
					t.Errorf("configuration %d %+v epi %d: library workspace %d, model %d", i, s, epi, got, w)
				}
			}
		}
	}
	if _, ok := cgo.MatMul2Config(len(kmodel.Configs)); ok {
		t.Errorf("the library has more configurations than the model's %d", len(kmodel.Configs))
	}
}

// mm2Backends are the kernels v2 settings the GPU check's op cases run under
// (TestMatMulPaths and vireo-check ops -kernels v2): the default policy with W8A8 for
// prompt rows, W8A8 on every call, and tunings that force the configurations the
// default policy never picks.
var mm2Backends = []struct {
	name string
	opt  Options
}{
	{"v2", Options{Kernels: KernelsV2}},
	{"v2-w8a8", Options{Kernels: KernelsV2, W8A8: W8A8All}},
	{"v2-c1", Options{Kernels: KernelsV2, MMTuning: "w8a16=1"}},
	{"v2-c2", Options{Kernels: KernelsV2, MMTuning: "w8a16=2"}},
	{"v2-c7", Options{Kernels: KernelsV2, W8A8: W8A8All, MMTuning: "w8a8=7"}},
}

// fakeV2 is a backend with o's dispatch and no device (MatMulKernel and mm2Plan make
// no device call).
func fakeV2(t *testing.T, o Options) *Backend {
	t.Helper()
	tu, err := kmodel.ParseTuning(o.MMTuning)
	if err != nil {
		t.Fatal(err)
	}
	return &Backend{opt: o, mm2: kmodel.Policy{SMs: 132, Tuning: tu}}
}

// TestMatMulKernelV2 pins the v2 dispatch: int8 weights with k % 16 == 0 take v2, with
// the tile the row count selects; float weights and other k stay on v1.
func TestMatMulKernelV2(t *testing.T) {
	b := fakeV2(t, Options{Kernels: KernelsV2})
	for _, tc := range []struct {
		n, in, out int
		w          backend.DType
		want       string
	}{
		{1, 4096, 4096, backend.I8, "mm2-w8a16-c0-16x128"},
		{16, 4096, 1024, backend.I8, "mm2-w8a16-c0-16x128"},
		{17, 4096, 1024, backend.I8, "mm2-w8a16-c3-32x128"},
		{64, 4096, 1024, backend.I8, "mm2-w8a16-c4-64x128"},
		{127, 4096, 1024, backend.I8, "mm2-w8a16-c5-128x128"},
		{128, 4096, 1024, backend.I8, "mm2-w8a16-c5-128x128"}, // generated rows: W8A16 at any count
		{130, 13, 7, backend.I8, "w8a16-simt"},                // k % 16 != 0: v1
		{3, 40, 7, backend.I8, "w8a16-simt"},                  // k % 16 != 0: v1
		{9, 4096, 1024, backend.F16, "f16-mma"},
	} {
		if got, _, _ := b.MatMulKernel(tc.n, tc.in, tc.out, tc.w, backend.Epilogue{}); got != tc.want {
			t.Errorf("n=%d in=%d out=%d w=%s: %s, want %s", tc.n, tc.in, tc.out, tc.w, got, tc.want)
		}
	}
	if name, rows, cols := b.MatMulKernel(1, 4096, 14336, backend.I8, backend.Epilogue{SiLUGLU: true}); name != "mm2-w8a16-c0-16x128" || rows != 16 || cols != 64 {
		t.Errorf("glu: %s with %d×%d tiles, want mm2-w8a16-c0-16x128 with 16×64", name, rows, cols)
	}
	// Kernels v1 keeps v1's matmuls.
	if got, _, _ := (&Backend{opt: Options{Kernels: KernelsV1}}).MatMulKernel(1, 4096, 4096, backend.I8, backend.Epilogue{}); got != "w8a16-simt" {
		t.Errorf("kernels v1: %s, want v1's w8a16-simt", got)
	}
}

// mm2Cases are the default backendtest matmul cases with int8 weights (what the GPU
// check's ops phase runs).
func mm2Cases() []backendtest.Case {
	var out []backendtest.Case
	for _, c := range backendtest.Cases(backendtest.Options{Ops: []string{backendtest.OpMatMul}, DTypes: []backend.DType{backend.F16}}) {
		if c.Int8 && !c.Sparse24 && c.Rank == 0 {
			out = append(out, c)
		}
	}
	return out
}

func caseEpi(c backendtest.Case) backend.Epilogue {
	return backend.Epilogue{Accumulate: c.Accumulate, SiLUGLU: c.GLU, Prompt: c.Prompt}
}

// TestMM2CasesReachEveryPath: under each v2 setting of mm2Backends, the default
// backendtest matmul cases reach every configuration that setting can pick — each
// with a row tail at a Llama-3-8B shape (k = 4096), with split-K, and with a column
// tail — so that the ops phase of GPU run C tests every v2 tile path and tail.
func TestMM2CasesReachEveryPath(t *testing.T) {
	for _, set := range mm2Backends {
		b := fakeV2(t, set.opt)
		type reach struct{ real, rowTail, colTail, split bool }
		got := map[int]*reach{}
		for _, c := range mm2Cases() {
			kind, ok := b.mm2Kind(c.N, c.In, caseEpi(c), nil, nil)
			if !ok {
				continue
			}
			pl := b.mm2Plan(kind, c.N, c.Out, c.In, caseEpi(c))
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
		}
		// What the setting can pick: the policy's configuration for every row count.
		want := map[int]bool{}
		for n := 1; n <= 2048; n++ {
			for _, prompt := range []bool{false, true} {
				if k, ok := b.mm2Kind(n, 4096, backend.Epilogue{Prompt: prompt}, nil, nil); ok {
					want[b.mm2.ConfigFor(k, n)] = true
				}
			}
		}
		for cfg := range want {
			r := got[cfg]
			switch {
			case r == nil:
				t.Errorf("%s: %s: no default case reaches it", set.name, kmodel.Name(cfg))
			case !r.real || !r.rowTail || !r.colTail || !r.split:
				t.Errorf("%s: %s: reached without a row tail at a Llama-3-8B shape, a column tail or split-K (%+v)", set.name, kmodel.Name(cfg), *r)
			}
		}
	}
	// Across the settings, every configuration of the table.
	all := map[int]bool{}
	for _, set := range mm2Backends {
		b := fakeV2(t, set.opt)
		for n := 1; n <= 2048; n++ {
			for _, prompt := range []bool{false, true} {
				if k, ok := b.mm2Kind(n, 4096, backend.Epilogue{Prompt: prompt}, nil, nil); ok {
					all[b.mm2.ConfigFor(k, n)] = true
				}
			}
		}
	}
	for cfg := range kmodel.Configs {
		if kmodel.Configs[cfg].Kind == kmodel.W4A16 {
			continue // W4A16 weights: w4Backends (TestMM2CasesW4Reach)
		}
		if !all[cfg] {
			t.Errorf("%s: no setting of mm2Backends runs it", kmodel.Name(cfg))
		}
	}
}

// TestMM2CasesEmulate replays, in the Go model of the kernels' thread → element
// mapping (kmodel.Emulate), exactly the launches the default backendtest matmul cases
// make under each v2 setting — the plan MatMul picks, the row strides it passes, the
// epilogue — and requires every output element stored once and every product of every
// dot product formed once from the right operands. The real-shape cases are emulated
// cut down so that CI affords them (the emulator is symbolic, ~4M products a second):
// k to 256 (the same split, shorter slices) and the columns to two column tiles plus
// the case's column tail, every row tile kept.
func TestMM2CasesEmulate(t *testing.T) {
	seen := map[string]bool{}
	for _, set := range mm2Backends {
		b := fakeV2(t, set.opt)
		for _, c := range mm2Cases() {
			epi := caseEpi(c)
			kind, ok := b.mm2Kind(c.N, c.In, epi, nil, nil)
			if !ok {
				continue
			}
			pl := b.mm2Plan(kind, c.N, c.Out, c.In, epi)
			k, nOut := c.In, c.Out
			if k > 256 {
				k = 256
				pl.Split = min(pl.Split, k/16)
			}
			cols := kmodel.Configs[pl.Config].BN()
			if c.GLU {
				cols /= 2
			}
			if nOut > 3*cols {
				nOut = 2*cols + nOut%cols
			}
			key := fmt.Sprintf("%d/%d/%d/%d/%v/%+v", kind, c.N, nOut, k, mm2Epi(epi), pl)
			if seen[key] {
				continue
			}
			seen[key] = true
			call := kmodel.Call{Kind: kind, N: c.N, NOut: nOut, K: k, LdX: k, LdOut: nOut, Epi: mm2Epi(epi), Plan: pl, Seed: uint64(len(seen))}
			r := kmodel.Emulate(call)
			if err := r.Err(); err != nil {
				t.Errorf("%s %s (%s split %d): %v", set.name, c.Name, kmodel.Name(pl.Config), pl.Split, err)
			} else if r.Stores != c.N*nOut {
				t.Errorf("%s %s: %d stores, want %d", set.name, c.Name, r.Stores, c.N*nOut)
			}
		}
	}
	t.Logf("%d distinct launches emulated", len(seen))
}

// TestMatMulPathsV2 runs the matmul op checks under every kernels v2 setting of
// mm2Backends against the CPU backend (GPU run C; it skips without a GPU).
func TestMatMulPathsV2(t *testing.T) {
	for _, set := range mm2Backends {
		t.Run(set.name, func(t *testing.T) {
			b, err := New(set.opt)
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Ops: []string{backendtest.OpMatMul}})
			if rep.Failed() {
				t.Errorf("%s", rep.Summary())
			}
		})
	}
}

// TestMM2FaultsCaught is the broken-variant demonstration: with each deliberate fault
// of the v2 kernels (a dropped pipeline stage, rows written one down), the matmul op
// checks that reach v2 must fail (GPU run C; it skips without a GPU).
func TestMM2FaultsCaught(t *testing.T) {
	for _, f := range []cgo.MM2Fault{cgo.MM2FaultKStep, cgo.MM2FaultRow} {
		t.Run(fmt.Sprint(int(f)), func(t *testing.T) {
			b, err := New(Options{Kernels: KernelsV2, MM2Fault: f})
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			opt := backendtest.Options{Ops: []string{backendtest.OpMatMul}, DTypes: []backend.DType{backend.F16}}
			cases := casesByName(opt)
			failed, v2 := 0, 0
			opt.OnResult = func(r backendtest.Result) {
				c := cases[r.Name]
				if kind, ok := b.mm2Kind(c.N, c.In, caseEpi(c), nil, nil); ok && strings.HasPrefix(r.Kernel, mm2Prefix) && faultApplies(b, c, f, kind) {
					v2++
					if r.Status != backendtest.Pass {
						failed++
					}
				}
			}
			backendtest.Run(nil, cpu.New(cpu.Options{}), b, opt)
			if v2 == 0 || failed != v2 {
				t.Errorf("fault %d: %d of %d v2 cases it changes failed; every one must", f, failed, v2)
			}
		})
	}
}

// casesByName are the cases opt selects, by name.
func casesByName(opt backendtest.Options) map[string]backendtest.Case {
	m := map[string]backendtest.Case{}
	for _, c := range backendtest.Cases(opt) {
		m[c.Name] = c
	}
	return m
}

// faultApplies says whether a deliberate fault changes case c's output under b's plan
// for kind: rows written one down need a second row (a call's last row stays where it
// is), and a dropped last stage needs a k slice of more than one stage (the kernel keeps
// a slice's only stage).
func faultApplies(b *Backend, c backendtest.Case, f cgo.MM2Fault, kind kmodel.Kind) bool {
	if f == cgo.MM2FaultRow {
		return c.N >= 2
	}
	pl := b.mm2Plan(kind, c.N, c.Out, c.In, caseEpi(c))
	return min(kmodel.SliceOf(kind, c.In, pl.Split), c.In) > kmodel.Configs[pl.Config].BK
}

// TestMatMulSplit checks MatMulSplit (the fused q/k/v product into separate outputs:
// one v2 launch with split outputs, or one v1 product per output) against MatMul of the
// same fused weight into one output: bit for bit under v2 (the plan depends on the
// weight's shape, not on where the columns go), within one f16 rounding under v1.
// Outputs are views between guard elements, poisoned with NaN (or holding the residual
// to add to); the guards must come back unchanged. It skips without a GPU.
func TestMatMulSplit(t *testing.T) {
	for _, set := range []struct {
		name string
		opt  Options
	}{{"v1", Options{Kernels: KernelsV1}}, {"v2", Options{Kernels: KernelsV2}}, {"v2-w8a8", Options{Kernels: KernelsV2, W8A8: W8A8All}}} {
		t.Run(set.name, func(t *testing.T) {
			b, err := New(set.opt)
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			must(t, err)
			t.Cleanup(func() { b.Close() })
			s, err := b.NewStream()
			must(t, err)
			r := rand.New(rand.NewSource(22))
			for _, tc := range []struct {
				n, k int
				cols []int
				acc  bool
			}{
				{1, 4096, []int{4096, 1024, 1024}, false}, // Llama-3-8B q/k/v, decode
				{20, 4096, []int{4096, 1024, 1024}, true},
				{9, 64, []int{69, 33, 40}, false}, // boundaries inside fragments and tiles
				{130, 96, []int{17, 40}, true},
				{3, 48, []int{1, 7, 3}, false},
			} {
				name := fmt.Sprintf("n=%d,k=%d,cols=%v,acc=%v", tc.n, tc.k, tc.cols, tc.acc)
				nOut := 0
				for _, c := range tc.cols {
					nOut += c
				}
				wq := make([]int8, nOut*tc.k)
				for i := range wq {
					wq[i] = int8(r.Intn(255) - 127)
				}
				sc := randF32(r, nOut, 0.02)
				w, err := b.LoadWeight(&backend.HostWeight{Name: "qkv", Out: nOut, In: tc.k, I8: wq, Scales: sc})
				must(t, err)
				x := upF32(t, b, randF32(r, tc.n*tc.k, 1), tc.n, tc.k)
				init := randF32(r, tc.n*nOut, 1)
				tol := func(v, e float32) bool { return v == e }
				if set.name == "v1" {
					tol = func(v, e float32) bool { return math.Abs(float64(v-e)) <= 2e-3*(1+math.Abs(float64(e))) }
				}
				checkSplit(t, b, s, name, x, w, tc.n, tc.cols, init, backend.Epilogue{Accumulate: tc.acc}, tol)
				must(t, b.FreeWeight(w))
			}
		})
	}
}

// checkSplit runs MatMulSplit of w on x ([n][In]) into len(cols) outputs, each a view
// between guard elements, poisoned with NaN (or holding init's columns, [n][Σcols], to
// add to when epi accumulates), and compares them with MatMul of w into one output
// starting from init: every value within tol (and not NaN), every guard unchanged. The
// failures are reported under name.
func checkSplit(t *testing.T, b *Backend, s backend.Stream, name string, x backend.Tensor, w *backend.Weight, n int, cols []int, init []float32, epi backend.Epilogue, tol func(v, e float32) bool) {
	t.Helper()
	const guard, fence = 64, -1717.25
	nOut := 0
	for _, c := range cols {
		nOut += c
	}
	// The reference: one output [n][nOut].
	ref := upF32(t, b, init, n, nOut)
	must(t, b.MatMul(s, ref, x, w, epi))
	want := downF32(t, b, ref)
	// The split outputs, each between guards.
	var outs, whole []backend.Tensor
	col := 0
	for _, c := range cols {
		host := make([]float32, 2*guard+n*c)
		for i := range host {
			host[i] = float32(math.NaN())
			if i < guard || i >= guard+n*c {
				host[i] = fence
			} else if epi.Accumulate {
				j := i - guard
				host[i] = init[(j/c)*nOut+col+j%c]
			}
		}
		wt := upF32(t, b, host, 1, len(host))
		whole = append(whole, wt)
		outs = append(outs, wt.View(guard, n, c))
		col += c
	}
	must(t, b.MatMulSplit(s, outs, x, w, epi))
	bad := 0
	col = 0
	for i, c := range cols {
		got := downF32(t, b, whole[i])
		for j, v := range got {
			if j < guard || j >= guard+n*c {
				if v != fence {
					bad++
				}
				continue
			}
			if e := want[((j-guard)/c)*nOut+col+(j-guard)%c]; !tol(v, e) || v != v {
				if bad < 5 {
					t.Errorf("%s: output %d element %d: %g, want %g", name, i, j-guard, v, e)
				}
				bad++
			}
		}
		col += c
	}
	if bad > 0 {
		t.Errorf("%s: %d wrong values or changed guards", name, bad)
	}
}

// TestW8A8ByRole pins the activation precision of int8 products to the rows' role
// (backend.Epilogue.Prompt), never their count: under the default Options.W8A8, every
// generated call runs a W8A16 kernel and every prompt call a W8A8 one at any row
// count, on kernels v1 and v2 (with and without the residual add and SiLU-GLU), and
// mm2Kind, which MatMul and MatMulSplit dispatch on, agrees; W8A8 off and all ignore
// the role. It needs no GPU.
func TestW8A8ByRole(t *testing.T) {
	rows := []int{1, 5, 8, 9, 16, 17, 64, 65, 127, 128, 129, 200, 512, 2048}
	for _, set := range []struct {
		name string
		opt  Options
	}{
		{"v1", Options{Kernels: KernelsV1}}, {"v2", Options{Kernels: KernelsV2}},
		{"v1-off", Options{Kernels: KernelsV1, W8A8: W8A8Off}}, {"v2-off", Options{Kernels: KernelsV2, W8A8: W8A8Off}},
		{"v1-all", Options{Kernels: KernelsV1, W8A8: W8A8All}}, {"v2-all", Options{Kernels: KernelsV2, W8A8: W8A8All}},
	} {
		o := set.opt
		var err error
		if o.W8A8, err = ParseW8A8(string(o.W8A8)); err != nil {
			t.Fatal(err)
		}
		b := fakeV2(t, o)
		for _, n := range rows {
			for _, epi := range []backend.Epilogue{{}, {Accumulate: true}, {SiLUGLU: true}} {
				for _, prompt := range []bool{false, true} {
					epi.Prompt = prompt
					want := prompt
					switch o.W8A8 {
					case W8A8Off:
						want = false
					case W8A8All:
						want = true
					}
					name, _, _ := b.MatMulKernel(n, 4096, 1024, backend.I8, epi)
					if got := strings.Contains(name, "w8a8"); got != want || (!got && !strings.Contains(name, "w8a16")) {
						t.Errorf("%s: %d rows, %+v: kernel %s, want W8A8 %v", set.name, n, epi, name, want)
					}
					if k, ok := b.mm2Kind(n, 4096, epi, nil, nil); ok != (o.Kernels == KernelsV2) || (ok && (k == kmodel.W8A8) != want) {
						t.Errorf("%s: %d rows, %+v: mm2Kind %v %v, want W8A8 %v", set.name, n, epi, k, ok, want)
					}
				}
			}
		}
	}
	if _, err := ParseW8A8("rows"); err == nil {
		t.Error("ParseW8A8 took an unknown mode")
	}
	if m, err := ParseW8A8(""); err != nil || m != W8A8Prompt {
		t.Errorf(`ParseW8A8(""): %q %v, want prompt`, m, err)
	}
}
