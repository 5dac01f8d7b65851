package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// Kernel benchmarks on Llama-3-8B shapes (dim 4096, FFN 14336, 32 heads / 8 KV heads
// of 128, vocab 128256). Each reports its median time per call, the bytes it must move
// at least (GB/s) and its useful FLOPs (TFLOP/s). Weights rotate over enough copies to
// exceed the L2 cache, so decode numbers are DRAM numbers.

type bench struct {
	Name   string  `json:"name"`
	Shape  string  `json:"shape"`
	Ms     float64 `json:"ms"`
	GBs    float64 `json:"gbs,omitempty"`
	TFLOPs float64 `json:"tflops,omitempty"`
	Err    string  `json:"error,omitempty"`
	// Check compares the last call's output with a CPU computation on sampled rows:
	// "pass", "fail" (Detail says how far off), or "" when not checked.
	Check  string  `json:"check,omitempty"`
	NMSE   float64 `json:"check_nmse,omitempty"`
	Detail string  `json:"check_detail,omitempty"`
	// Kernels names the set ("v1", "v2") and Config a v2 configuration; Broken marks a
	// deliberately broken variant, whose check must fail (it counts as failed when it
	// passes: the checks would not catch that bug).
	Kernels string `json:"kernels,omitempty"`
	// UsPerRow: the sampler's time per row (the v2 target: < 50 µs at vocab 128k).
	UsPerRow float64 `json:"us_per_row,omitempty"`
	Config   string  `json:"config,omitempty"`
	Broken   bool    `json:"broken,omitempty"`
}

// devRand allocates n elements of dt filled on the device with uniform(-1, 1) draws of
// seed (int8: -127..127): vireo_fill_uniform's Philox stream, milliseconds for the
// largest weights instead of seconds of host drawing.
func devRand(s cgo.Stream, seed uint64, dt cgo.DType, n int) (unsafe.Pointer, error) {
	size := map[cgo.DType]int{cgo.F32: 4, cgo.F16: 2, cgo.BF16: 2, cgo.I8: 1, cgo.I32: 4}[dt]
	p, err := cgo.Malloc(n * size)
	if err != nil {
		return nil, err
	}
	if err := cgo.FillUniform(s, dt, p, n, seed, 1); err != nil {
		cgo.Free(p)
		return nil, err
	}
	if err := s.Sync(); err != nil {
		cgo.Free(p)
		return nil, err
	}
	return p, nil
}

// toDev copies host bytes to a new device buffer in s's order, from pinned staging,
// and waits for s: the buffer is ready for any stream when it returns.
func toDev(s cgo.Stream, src unsafe.Pointer, bytes int) (unsafe.Pointer, error) {
	p, err := cgo.Malloc(bytes)
	if err != nil {
		return nil, err
	}
	h, err := cgo.MallocHost(bytes)
	if err != nil {
		cgo.Free(p)
		return nil, err
	}
	defer cgo.FreeHost(h)
	copy(unsafe.Slice((*byte)(h), bytes), unsafe.Slice((*byte)(src), bytes))
	if err := cgo.MemcpyH2D(p, h, bytes, s); err != nil {
		cgo.Free(p)
		return nil, err
	}
	if err := s.Sync(); err != nil {
		cgo.Free(p)
		return nil, err
	}
	return p, nil
}

func devInts(s cgo.Stream, v []int32) (unsafe.Pointer, error) {
	return toDev(s, unsafe.Pointer(&v[0]), 4*len(v))
}

type allocs []unsafe.Pointer

func (a *allocs) add(p unsafe.Pointer, err error) unsafe.Pointer {
	if err == nil {
		*a = append(*a, p)
	}
	return p
}

func (a allocs) free() {
	for _, p := range a {
		cgo.Free(p)
	}
}

func runKernels(args []string) (any, error) {
	fs := flags("kernels")
	only := fs.String("only", "", "run only benchmarks whose name contains this")
	set := fs.String("kernels", "both", "attention and sampling kernels: v1, v2 or both")
	sweep := fs.Bool("sweep", true, "also v2's configuration sweep (GPU run C) and its broken variants")
	tuning := fs.String("mm-tuning", "", "v2 matmuls: the dispatch overrides (kmodel.ParseTuning), e.g. w8a16=1,split16=4")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *set != "v1" && *set != "v2" && *set != "both" {
		return nil, fmt.Errorf("-kernels %q: want v1, v2 or both", *set)
	}
	tu, err := kmodel.ParseTuning(*tuning)
	if err != nil {
		return nil, err
	}
	if _, err := cgo.DeviceCount(); err != nil {
		return nil, err
	}
	s, err := cgo.StreamCreate(0)
	if err != nil {
		return nil, err
	}
	defer s.Destroy()
	rng := rand.New(rand.NewPCG(1, 2))
	var seed uint64
	rnd := func(dt cgo.DType, n int) (unsafe.Pointer, error) { seed++; return devRand(s, seed, dt, n) }
	var out []bench
	failed := 0
	add := func(b bench, f func(b *bench) error) {
		if err := f(&b); err != nil {
			b.Err = err.Error()
		}
		if (b.Check == "fail" && !b.Broken) || b.Err != "" || (b.Broken && b.Check != "fail") {
			failed++
		}
		record("kernel", b)
		out = append(out, b)
	}
	want := func(name string) bool { return *only == "" || strings.Contains(name, *only) }

	// Matrix products: out [n][nout] = x [n][k] · W[nout][k]ᵀ.
	type mm struct {
		name    string
		kind    string // w8a16, w8a8, f16
		n, o, k int
		v       cgo.Variant
	}
	for _, c := range []mm{
		{"w8a16 decode qkv-o", "w8a16", 1, 4096, 4096, cgo.MMAuto},
		{"w8a16 decode gate", "w8a16", 1, 14336, 4096, cgo.MMAuto},
		{"w8a16 decode down", "w8a16", 1, 4096, 14336, cgo.MMAuto},
		{"w8a16 batch8 gate", "w8a16", 8, 14336, 4096, cgo.MMAuto},
		{"w8a16 batch32 gate mma", "w8a16", 32, 14336, 4096, cgo.MMMMA},
		{"w8a16 prefill2048 gate mma", "w8a16", 2048, 14336, 4096, cgo.MMMMA},
		{"w8a8 prefill2048 gate", "w8a8", 2048, 14336, 4096, cgo.MMMMA},
		{"w8a8 prefill2048 qkv-o", "w8a8", 2048, 4096, 4096, cgo.MMMMA},
		{"f16 decode gate", "f16", 1, 14336, 4096, cgo.MMAuto},
		{"f16 prefill2048 gate", "f16", 2048, 14336, 4096, cgo.MMMMA},
	} {
		if !want(c.name) {
			continue
		}
		b := bench{Name: c.name, Shape: fmt.Sprintf("n=%d n_out=%d k=%d", c.n, c.o, c.k)}
		add(b, func(b *bench) error {
			var al allocs
			defer al.free()
			wsize := c.o * c.k
			wt := cgo.I8
			if c.kind == "f16" {
				wt, wsize = cgo.F16, 2*c.o*c.k
			}
			copies := max(1, min(8, (200<<20)/wsize)) // > L2 in all
			ws := make([]unsafe.Pointer, copies)
			for i := range ws {
				if ws[i] = al.add(rnd(wt, c.o*c.k)); ws[i] == nil {
					return fmt.Errorf("alloc weights")
				}
			}
			scale := al.add(rnd(cgo.F32, c.o))
			x := al.add(rnd(cgo.F16, c.n*c.k))
			xq := al.add(rnd(cgo.I8, c.n*c.k))
			xs := al.add(rnd(cgo.F32, c.n))
			o := al.add(rnd(cgo.F16, c.n*c.o))
			if scale == nil || x == nil || xq == nil || xs == nil || o == nil {
				return fmt.Errorf("alloc operands")
			}
			ms, err := timeMs(s, 20, 5, func(i int) error {
				a := &cgo.MatMulArgs{DType: cgo.F16, Out: o, LdOut: c.o, X: x, LdX: c.k, W: ws[i%copies], WScale: scale,
					N: c.n, NOut: c.o, K: c.k, Var: c.v}
				switch c.kind {
				case "w8a16":
					return cgo.MatMulW8A16(s, a)
				case "w8a8":
					a.X, a.XScale = xq, xs
					return cgo.MatMulW8A8(s, a)
				}
				return cgo.MatMulF16(s, a)
			})
			if err != nil {
				return err
			}
			bytes := float64(wsize) + 2*float64(c.n*c.k+c.n*c.o)
			b.Ms, b.GBs, b.TFLOPs = ms, bytes/ms/1e6, 2*float64(c.n)*float64(c.o)*float64(c.k)/ms/1e9
			// The output of one more call with ws[0], checked on the CPU on sampled rows.
			a := &cgo.MatMulArgs{DType: cgo.F16, Out: o, LdOut: c.o, X: x, LdX: c.k, W: ws[0], WScale: scale,
				N: c.n, NOut: c.o, K: c.k, Var: c.v}
			var err2 error
			switch c.kind {
			case "w8a16":
				err2 = cgo.MatMulW8A16(s, a)
			case "w8a8":
				a.X, a.XScale = xq, xs
				err2 = cgo.MatMulW8A8(s, a)
			default:
				err2 = cgo.MatMulF16(s, a)
			}
			if err2 == nil {
				err2 = s.Sync()
			}
			if err2 != nil {
				return err2
			}
			return checkMatMul(b, c.kind, c.n, c.o, c.k, o, x, xq, xs, ws[0], scale)
		})
	}

	// Attention over the paged cache and sampling, v1 and v2 side by side, v2's sweep and
	// its broken variants (kernels2.go).
	kernelsV2(s, rng, rnd, *set, *sweep, want, add)

	// Kernels v2's matrix products (kernels_mm2.go), v1 beside them on the same operands,
	// and their sweep.
	if *set != "v1" {
		pol := kmodel.Policy{Tuning: tu}
		if info, err := cgo.GetDeviceInfo(0); err == nil {
			pol.SMs = info.Multiprocessors
		}
		runMM2(&mm2Env{s: s, rnd: rnd, policy: pol, add: add, sweep: *sweep, v1: *set == "both"}, want)
	}

	// Row-wise ops and sampling.
	if want("rmsnorm") {
		b := bench{Name: "rmsnorm 2048x4096", Shape: "n=2048 dim=4096"}
		add(b, func(b *bench) error {
			var al allocs
			defer al.free()
			x := al.add(rnd(cgo.F16, 2048*4096))
			o := al.add(rnd(cgo.F16, 2048*4096))
			w := al.add(rnd(cgo.F16, 4096))
			ms, err := timeMs(s, 20, 5, func(int) error {
				return cgo.RMSNorm(s, &cgo.RMSNormArgs{DType: cgo.F16, Out: o, X: x, WDType: cgo.F16, W: w, N: 2048, Dim: 4096, Eps: 1e-5})
			})
			b.Ms, b.GBs = ms, 2*2*2048*4096/ms/1e6
			if err != nil {
				return err
			}
			if err := s.Sync(); err != nil {
				return err
			}
			return checkRMSNorm(b, 2048, 4096, 1e-5, x, w, o)
		})
	}
	// The RMSNorm with per-token int8 quantization fused in (backend.RMSNormQuanter),
	// beside the two launches it replaces; the fused output must equal theirs bit for bit
	// (the kernel quantizes the row as the activation type stores it) and the CPU's on
	// sampled rows.
	if want("rmsnorm_quant") {
		const n, dim = 2048, 4096
		for _, fused := range []bool{true, false} {
			b := bench{Name: "rmsnorm_quant 2048x4096", Shape: "n=2048 dim=4096"}
			if !fused {
				b.Name = "rmsnorm+quantize_rows 2048x4096"
			}
			add(b, func(b *bench) error {
				var al allocs
				defer al.free()
				x := al.add(rnd(cgo.F16, n*dim))
				w := al.add(rnd(cgo.F16, dim))
				y := al.add(rnd(cgo.F16, n*dim))
				q := al.add(rnd(cgo.I8, n*dim))
				qs := al.add(rnd(cgo.F32, n))
				q2 := al.add(rnd(cgo.I8, n*dim))
				qs2 := al.add(rnd(cgo.F32, n))
				if x == nil || w == nil || y == nil || q == nil || qs == nil || q2 == nil || qs2 == nil {
					return fmt.Errorf("allocation failed")
				}
				fusedCall := func(q, qs unsafe.Pointer) error {
					return cgo.RMSNormQuant(s, &cgo.RMSNormArgs{DType: cgo.F16, Q: q, QScale: qs, X: x, WDType: cgo.F16, W: w, N: n, Dim: dim, Eps: 1e-5})
				}
				twoCalls := func(q, qs unsafe.Pointer) error {
					if err := cgo.RMSNorm(s, &cgo.RMSNormArgs{DType: cgo.F16, Out: y, X: x, WDType: cgo.F16, W: w, N: n, Dim: dim, Eps: 1e-5}); err != nil {
						return err
					}
					return cgo.QuantizeRows(s, cgo.F16, q, qs, y, dim, n, dim)
				}
				call, bytes := fusedCall, float64(2*n*dim+n*dim+4*n)
				if !fused {
					call, bytes = twoCalls, float64(2*n*dim+2*n*dim+2*n*dim+n*dim+4*n)
				}
				ms, err := timeMs(s, 20, 5, func(int) error { return call(q, qs) })
				b.Ms, b.GBs = ms, bytes/ms/1e6
				if err != nil {
					return err
				}
				if err := fusedCall(q, qs); err != nil {
					return err
				}
				if err := twoCalls(q2, qs2); err != nil {
					return err
				}
				if err := s.Sync(); err != nil {
					return err
				}
				return checkRMSNormQuant(b, n, dim, 1e-5, x, w, q, qs, q2, qs2)
			})
		}
	}
	res := map[string]any{"benchmarks": out, "check_fail": failed}
	if failed > 0 {
		return res, fmt.Errorf("%d kernel benchmarks failed their CPU check or errored", failed)
	}
	return res, nil
}
