//go:build cuda

package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/backend/cuda"
)

type stderrLog struct{}

func (stderrLog) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// smallExclude leaves out every case with a Llama-3-sized dimension or a long context
// (what compute-sanitizer, which slows kernels 10-100x, cannot afford in its minute).
const smallExclude = "4096|14336|128256|hd=128|1500|1100|8300|n=129|n=130"

// runOps checks every op on the CUDA backend against the CPU backend. The tolerances
// are backendtest's, fixed in code before any run.
func runOps(args []string) (any, error) {
	fs := flags("ops")
	large := fs.Bool("large", false, "also the large real-shape cases")
	match := fs.String("match", "", "only cases whose name contains this")
	ops := fs.String("ops", "", "comma-separated ops (default all)")
	verbose := fs.Bool("v", false, "one line per case on stderr")
	exclude := fs.String("exclude", "", `leave out cases whose name contains any of these "|"-separated parts`)
	small := fs.Bool("small", false, "only small shapes, f16 only (the sanitizer phase: no Llama-3-sized case)")
	sparse24 := fs.Bool("sparse24", false, "run the 2:4 kernels (off by default in the backend until verified): the 2:4 matmul cases then check them")
	set := fs.String("kernels", "both", "attention, sampling and int8 matmul kernels: v2 (every op on the backend's default), v1, or both (v2, then the attention and matmul cases again on v1, their names prefixed v1:)")
	tuning := fs.String("mm-tuning", "", "v2 matmuls: the dispatch overrides (kmodel.ParseTuning), e.g. w8a16=1,split16=4")
	w8a8 := fs.String("w8a8", "prompt", "which int8 matmuls quantize the activations per token (W8A8): prompt (the cases marked prompt, as the model marks prefill rows), off, or all")
	fault := fs.Int("mm2-fault", 0, "launch every v2 matmul with a deliberate bug (1: a dropped pipeline stage, 2: rows written one down); the matmul checks must then fail (-kernels v2)")
	w4On := fs.Bool("w4a16", false, "run the W4A16 kernels (off by default in the backend until verified): the w=q4_0/q4_k matmul cases then check them, else the int8 form those weights get")
	loraOn := fs.Bool("lora", false, "run the LoRA kernel (off by default in the backend until verified): the lora cases then check it, else they skip")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *fault < 0 || *fault > 2 || (*fault != 0 && *set != "v2") {
		return nil, fmt.Errorf("-mm2-fault %d: 0, 1 or 2, and only with -kernels v2", *fault)
	}
	if *set != "both" {
		if _, err := cuda.ParseKernels(*set); err != nil || *set == "" {
			return nil, fmt.Errorf("-kernels %q: want v1, v2 or both", *set)
		}
	}
	w8, err := cuda.ParseW8A8(*w8a8)
	if err != nil {
		return nil, fmt.Errorf("-w8a8: %w", err)
	}
	first := cuda.KernelsV2
	if *set == "v1" {
		first = cuda.KernelsV1
	}
	dev, err := cuda.New(cuda.Options{Sparse24: *sparse24, Kernels: first, LoRA: *loraOn, MMTuning: *tuning, W8A8: w8, MM2Fault: cgo.MM2Fault(*fault), W4A16: *w4On})
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	opt := backendtest.Options{Large: *large, Match: *match, Exclude: *exclude, DTypes: []backend.DType{backend.F32, backend.F16, backend.BF16},
		OnResult: func(r backendtest.Result) { record("case", r) }}
	if *small {
		opt.Large, opt.DTypes = false, []backend.DType{backend.F16}
		opt.Exclude = strings.Trim(opt.Exclude+"|"+smallExclude, "|")
	}
	if *ops != "" {
		opt.Ops = strings.Split(*ops, ",")
	}
	var log backendtest.Logger
	if *verbose {
		log = stderrLog{}
	}
	rep := backendtest.Run(log, cpu.New(cpu.Options{}), dev, opt)
	var again []string
	for _, op := range []string{backendtest.OpAttention, backendtest.OpMatMul} {
		if opt.Ops == nil || slices.Contains(opt.Ops, op) {
			again = append(again, op)
		}
	}
	if *set == "both" && len(again) > 0 {
		// Kernels v1 beside v2 until GPU run C retires v1: the attention and matmul cases
		// again (the other ops have one kernel set).
		v1, err := cuda.New(cuda.Options{Sparse24: *sparse24, Kernels: cuda.KernelsV1, W8A8: w8})
		if err != nil {
			return rep, err
		}
		defer v1.Close()
		o1 := opt
		o1.Ops = again
		o1.OnResult = func(r backendtest.Result) { r.Name = "v1:" + r.Name; record("case", r) }
		r1 := backendtest.Run(log, cpu.New(cpu.Options{}), v1, o1)
		for _, r := range r1.Results {
			r.Name = "v1:" + r.Name
			rep.Results = append(rep.Results, r)
		}
		rep.Total.Pass += r1.Total.Pass
		rep.Total.Fail += r1.Total.Fail
		rep.Total.Skip += r1.Total.Skip
		if rep.ByOp == nil {
			rep.ByOp = map[string]backendtest.Counts{}
		}
		for _, op := range again {
			rep.ByOp["v1:"+op] = r1.ByOp[op]
		}
	}
	if rep.Failed() {
		return rep, fmt.Errorf("op checks failed: %s", rep.Summary())
	}
	return rep, nil
}
