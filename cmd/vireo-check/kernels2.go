package main

import (
	"fmt"
	"math/rand/v2"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// Kernels v2 (issue "CUDA kernels v2, part 2") beside v1: paged attention (decode at
// batch 1 and 32, a 2,048-token prefill) and sampling at vocab 128,256 (batch 1, 8, 64;
// top-p, top-k, min-p, none). With -sweep (GPU run C), v2 also runs every configuration
// of kmodel's sweep on the main shapes, and its deliberately broken variants, whose
// checks must fail. Every output is checked on the CPU like the other benchmarks.

func attnConfig(c kmodel.Attn2Config) *cgo.Attention2Config {
	p := int32(0)
	if c.Prefill {
		p = 1
	}
	return &cgo.Attention2Config{SplitLen: int32(c.SplitLen), MaxSplits: int32(c.MaxSplits), Warps: int32(c.Warps),
		Prefill: p, BM: int32(c.BM), BN: int32(c.BN), Fault: int32(c.Fault)}
}

func sampleConfig(c kmodel.Sample2Config) *cgo.Sample2Config {
	return &cgo.Sample2Config{Threads: int32(c.Threads), Chunk: int32(c.Chunk), Fault: int32(c.Fault)}
}

func kernelsV2(s cgo.Stream, rng *rand.Rand, rnd func(dt cgo.DType, n int) (unsafe.Pointer, error), set string, sweep bool,
	want func(string) bool, add func(bench, func(*bench) error)) {
	v1, v2 := set != "v2", set != "v1"
	sms := 132
	if info, err := cgo.GetDeviceInfo(0); err == nil && info.Multiprocessors > 0 {
		sms = info.Multiprocessors
	}

	// Attention: 32 heads, 8 KV heads, head dim 128, blocks of 16.
	type at struct {
		name          string
		seqs, nq, ctx int // ctx: context after the new tokens
		main          bool
	}
	for _, c := range []at{
		{"attention decode b1 ctx8192", 1, 1, 8192, true},
		{"attention decode b32 ctx2048", 32, 1, 2048, false},
		{"attention prefill 2048", 1, 2048, 2048, true},
	} {
		if !want(c.name) {
			continue
		}
		var runs []struct {
			set string
			cfg *kmodel.Attn2Config
		}
		if v1 {
			runs = append(runs, struct {
				set string
				cfg *kmodel.Attn2Config
			}{"v1", nil})
		}
		if v2 {
			cfgs := []kmodel.Attn2Config{kmodel.DefaultAttn2()}
			if sweep && c.main {
				cfgs = append(cfgs, kmodel.Attn2Sweep()...)
			}
			if sweep {
				f := kmodel.DefaultAttn2()
				f.Fault = kmodel.Attn2FaultDrop
				cfgs = append(cfgs, f)
			}
			for i := range cfgs {
				runs = append(runs, struct {
					set string
					cfg *kmodel.Attn2Config
				}{"v2", &cfgs[i]})
			}
		}
		for _, run := range runs {
			b := bench{Name: c.name + " " + run.set, Shape: fmt.Sprintf("seqs=%d nq=%d ctx=%d heads=32/8 hd=128", c.seqs, c.nq, c.ctx), Kernels: run.set}
			if run.cfg != nil {
				b.Config, b.Broken = run.cfg.String(), run.cfg.Fault != 0
			}
			add(b, func(b *bench) error { return benchAttention(s, rng, rnd, b, c.seqs, c.nq, c.ctx, run.cfg) })
		}
	}

	// Sampling at vocab 128,256.
	const V = 128256
	type sc struct {
		name   string
		rows   int
		dt     cgo.DType
		params cgo.SamplingParams
		main   bool
	}
	topP := cgo.SamplingParams{Temperature: 0.8, TopP: 0.95, RepetitionPenalty: 1}
	topK := cgo.SamplingParams{Temperature: 0.8, TopP: 0.95, TopK: 40, RepetitionPenalty: 1}
	minP := cgo.SamplingParams{Temperature: 1, TopP: 1, MinP: 0.05, RepetitionPenalty: 1}
	plain := cgo.SamplingParams{Temperature: 1, TopP: 1, RepetitionPenalty: 1}
	for _, c := range []sc{
		{"sample b1 top_p=0.95", 1, cgo.F32, topP, true},
		{"sample b8 top_p=0.95", 8, cgo.F32, topP, false},
		{"sample b64 top_p=0.95", 64, cgo.F32, topP, true},
		{"sample b8 top_k=40 top_p=0.95", 8, cgo.F32, topK, false},
		{"sample b8 min_p=0.05", 8, cgo.F32, minP, false},
		{"sample b8 plain", 8, cgo.F32, plain, false},
		{"sample b8 f16 top_p=0.95", 8, cgo.F16, topP, false},
	} {
		if !want(c.name) {
			continue
		}
		if v1 {
			b := bench{Name: c.name + " v1", Shape: fmt.Sprintf("rows=%d vocab=%d", c.rows, V), Kernels: "v1"}
			add(b, func(b *bench) error { return benchSample(s, rnd, b, c.rows, V, c.dt, c.params, nil) })
		}
		if !v2 {
			continue
		}
		cfgs := []kmodel.Sample2Config{kmodel.Sample2Choose(c.rows, V, sms)}
		if sweep && c.main {
			cfgs = append(cfgs, kmodel.Sample2Sweep(c.rows, V, sms)...)
		}
		if sweep && c.main {
			f := cfgs[0]
			f.Fault = kmodel.Sample2FaultDigit
			cfgs = append(cfgs, f)
		}
		for i := range cfgs {
			cfg := cfgs[i]
			b := bench{Name: c.name + " v2", Shape: fmt.Sprintf("rows=%d vocab=%d", c.rows, V), Kernels: "v2",
				Config: cfg.String(), Broken: cfg.Fault != 0}
			add(b, func(b *bench) error { return benchSample(s, rnd, b, c.rows, V, c.dt, c.params, &cfg) })
		}
	}
}

// benchAttention times one attention shape with v1 (cfg nil) or v2 and checks the first,
// middle and last rows on the CPU.
func benchAttention(s cgo.Stream, rng *rand.Rand, rnd func(dt cgo.DType, n int) (unsafe.Pointer, error), b *bench, nseqs, nq, ctx int, cfg *kmodel.Attn2Config) error {
	var al allocs
	defer al.free()
	const H, KH, HD, BS = 32, 8, 128, 16
	nbSeq := (ctx + BS - 1) / BS
	blocks := nseqs * nbSeq
	kc := al.add(rnd(cgo.F16, blocks*KH*BS*HD))
	vc := al.add(rnd(cgo.F16, blocks*KH*BS*HD))
	rows := nseqs * nq
	q := al.add(rnd(cgo.F16, rows*H*HD))
	o := al.add(rnd(cgo.F16, rows*H*HD))
	perm := rng.Perm(blocks)
	var seqs, rowSeq, tables []int32
	for si := 0; si < nseqs; si++ {
		seqs = append(seqs, int32(si*nq), int32(nq), int32(ctx-nq), int32(len(tables)))
		for j := 0; j < nq; j++ {
			rowSeq = append(rowSeq, int32(si))
		}
		for j := 0; j < nbSeq; j++ {
			tables = append(tables, int32(perm[si*nbSeq+j]))
		}
	}
	ds := al.add(devInts(s, seqs))
	dr := al.add(devInts(s, rowSeq))
	dt := al.add(devInts(s, tables))
	if kc == nil || vc == nil || q == nil || o == nil || ds == nil || dr == nil || dt == nil {
		return fmt.Errorf("alloc operands")
	}
	a := &cgo.AttentionArgs{DType: cgo.F16, Out: o, Q: q, LdOut: H * HD, LdQ: H * HD, KCache: kc, VCache: vc,
		Seqs: ds, RowSeq: dr, BlockTables: dt, NRows: rows, NSeqs: nseqs, Heads: H, KVHeads: KH, HeadDim: HD,
		BlockSize: BS, MaxCtx: ctx, Scale: 0.088388}
	var call func() error
	if cfg == nil {
		wsb, err := cgo.AttentionWorkspaceBytes(rows, H, HD, ctx)
		if err != nil {
			return err
		}
		if wsb > 0 {
			a.Workspace = al.add(cgo.Malloc(wsb))
		}
		a.WorkspaceBytes = wsb
		call = func() error { return cgo.Attention(s, a) }
	} else {
		cc := attnConfig(*cfg)
		wsb, err := cgo.Attention2WorkspaceBytes(rows, H, KH, HD, ctx, cc)
		if err != nil {
			return err
		}
		a.Workspace, a.WorkspaceBytes = al.add(cgo.Malloc(wsb)), wsb
		if a.Workspace == nil {
			return fmt.Errorf("alloc workspace")
		}
		if err := cgo.Memset(a.Workspace, 0, wsb, s); err != nil {
			return err
		}
		call = func() error { return cgo.Attention2(s, a, cc) }
	}
	ms, err := timeMs(s, 10, 5, func(int) error { return call() })
	if err != nil {
		return err
	}
	kvBytes := 2 * float64(nseqs*ctx*KH*HD*2)
	pairs := float64(nseqs) * (float64(nq)*float64(ctx) - float64(nq)*float64(nq-1)/2)
	b.Ms, b.GBs, b.TFLOPs = ms, kvBytes/ms/1e6, 4*pairs*H*HD/ms/1e9
	if err := s.Sync(); err != nil {
		return err
	}
	return checkAttention(b, attnShape{H: H, KH: KH, HD: HD, BS: BS, rows: rows, seqs: seqs, rowSeq: rowSeq, tables: tables,
		blocks: blocks}, q, kc, vc, o)
}

// benchSample times the sampler, v1 (cfg nil) or v2, on uniform(-1, 1) logits (a flat
// distribution: top-p keeps most of the vocabulary, which v1 gives to the host) and
// checks every row against runtime/sampling.
func benchSample(s cgo.Stream, rnd func(dt cgo.DType, n int) (unsafe.Pointer, error), b *bench, rows, V int, dt cgo.DType, p cgo.SamplingParams, cfg *kmodel.Sample2Config) error {
	var al allocs
	defer al.free()
	lg := al.add(rnd(dt, rows*V))
	params := make([]cgo.SamplingParams, rows)
	for i := range params {
		params[i] = p
		params[i].Seed = uint64(i + 1)
		params[i].TokenIndex = uint64(3 * i)
	}
	pp := al.add(toDev(s, unsafe.Pointer(&params[0]), rows*cgo.SamplingParamsSize))
	ids := al.add(cgo.Malloc(4 * rows))
	if pp == nil || lg == nil || ids == nil {
		return fmt.Errorf("alloc operands")
	}
	var wsb int
	var err error
	if cfg == nil {
		wsb, err = cgo.SampleWorkspaceBytes(rows, V)
	} else {
		wsb, err = cgo.Sample2WorkspaceBytes(rows, V, cfg.Chunk)
	}
	if err != nil {
		return err
	}
	ws := al.add(cgo.Malloc(wsb))
	if ws == nil {
		return fmt.Errorf("alloc workspace")
	}
	if err := cgo.Memset(ws, 0, wsb, s); err != nil {
		return err
	}
	call := func() error { return cgo.Sample(s, dt, lg, V, rows, V, pp, nil, ids, ws, wsb) }
	if cfg != nil {
		cc := sampleConfig(*cfg)
		call = func() error { return cgo.Sample2(s, dt, lg, V, rows, V, pp, nil, ids, ws, wsb, cc) }
	}
	ms, err := timeMs(s, 5, 3, func(int) error { return call() })
	b.Ms = ms
	b.UsPerRow = 1000 * ms / float64(rows)
	if err != nil {
		return err
	}
	if err := s.Sync(); err != nil {
		return err
	}
	return checkSample(b, rows, V, dt, lg, ids, params, cfg != nil)
}
