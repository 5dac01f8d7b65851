package model_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
	"github.com/vireo-ai/vireo/runtime/model"
)

// floatCheckpoint is a checkpoint in memory whose matrices are F32 copies of src's,
// with style as its q/k row order and delta(name) added to each matrix it returns one
// for (a merged adapter).
func floatCheckpoint(t *testing.T, src *loader.Checkpoint, style loader.RopeStyle, delta func(name string) []float64) *loader.Checkpoint {
	t.Helper()
	ck := &loader.Checkpoint{Path: src.Path + " (merged)", Format: "gguf", Config: src.Config, Tensors: map[string]*loader.Tensor{}}
	ck.Config.RopeStyle = style
	for name, tt := range src.Tensors {
		f, err := tt.Float32()
		require.NoError(t, err)
		v := append([]float32(nil), f...)
		if d := delta(name); d != nil {
			require.Len(t, d, len(v), name)
			for i := range v {
				v[i] = float32(float64(v[i]) + d[i]) // W + ΔW, rounded once
			}
		}
		nt, err := loader.NewTensor(name, loader.F32, tt.Shape, v)
		require.NoError(t, err)
		ck.Tensors[name] = nt
	}
	return ck
}

// syntheticCheckpoint is synthetic:tiny as a checkpoint.
func syntheticCheckpoint(t *testing.T) *loader.Checkpoint {
	c, gen, err := model.SyntheticWeights("tiny")
	require.NoError(t, err)
	names, shapes := loader.Canonical(c)
	ck := &loader.Checkpoint{Path: "synthetic:tiny", Format: "gguf", Config: c, Tensors: map[string]*loader.Tensor{}}
	for _, n := range names {
		v, err := gen(n)
		require.NoError(t, err)
		tt, err := loader.NewTensor(n, loader.F32, shapes[n], v)
		require.NoError(t, err)
		ck.Tensors[n] = tt
	}
	return ck
}

var ggufTarget = map[lora.Target]string{lora.TargetQ: "attn_q", lora.TargetK: "attn_k", lora.TargetV: "attn_v",
	lora.TargetO: "attn_output", lora.TargetGate: "ffn_gate", lora.TargetUp: "ffn_up", lora.TargetDown: "ffn_down"}

// mergedDelta maps a checkpoint tensor name to the adapter's ΔW for it (from what the
// writer wrote, in the checkpoint's row order), or nil.
func mergedDelta(made *loratest.Made, layers int, style loader.RopeStyle) func(string) []float64 {
	return func(name string) []float64 {
		for l := 0; l < layers; l++ {
			for tg, g := range ggufTarget {
				if name == fmt.Sprintf("blk.%d.%s.weight", l, g) {
					return made.Delta(l, tg, style)
				}
			}
		}
		return nil
	}
}

// sets are the adapter slots of each model under test.
var sets = map[*model.Model]*model.LoRASet{}

// forward runs tokens through m as one sequence (LoRA slot+1 or 0) and returns every
// row's logits.
func forward(t *testing.T, m *model.Model, tokens []int32, slot int) []float32 {
	t.Helper()
	ws, err := m.NewWorkspace(len(tokens), len(tokens))
	require.NoError(t, err)
	ws.SetLoRA(sets[m])
	kv, err := m.NewKVCache(4, 16)
	require.NoError(t, err)
	out, err := m.Forward(ws, kv, []model.Seq{{Tokens: tokens, Blocks: []int32{0, 1, 2, 3}, Logits: model.LogitsAll, LoRA: slot}})
	require.NoError(t, err)
	return append([]float32(nil), out...)
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

func maxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// TestLoRAEqualsMerged is the adapter's acceptance: applying a random PEFT-layout
// adapter beside the base weights gives the logits of the base with
// W + scale·B·A merged into its f32 weights, within 1e-5 × max|logit|, for each target
// module alone, all of them, rsLoRA scaling, a GGUF adapter, and bases of either q/k row
// order — while the adapter moves the logits by far more than that.
func TestLoRAEqualsMerged(t *testing.T) {
	bases := map[string]*loader.Checkpoint{"synthetic-tiny": syntheticCheckpoint(t)}
	if p := shared.Path(t, "models", "stories260K", "stories260K.bin"); p != "" {
		ck, err := loader.Open(p, loader.Options{})
		require.NoError(t, err)
		defer ck.Close()
		bases["stories260K"] = ck
	}
	type variant struct {
		name   string
		opt    loratest.Options
		gguf   bool
		style  loader.RopeStyle
		single bool // one case per target
	}
	variants := []variant{
		{name: "peft", opt: loratest.Options{Rank: 8, Alpha: 16}, single: true},
		{name: "peft-all", opt: loratest.Options{Rank: 8, Alpha: 16}},
		{name: "peft-rslora", opt: loratest.Options{Rank: 8, Alpha: 16, RSLoRA: true}},
		{name: "peft-rslora-hf-order", opt: loratest.Options{Rank: 4, Alpha: 8, RSLoRA: true}, style: loader.RopeRotateHalf},
		{name: "peft-bf16-ranks", opt: loratest.Options{Rank: 8, Alpha: 8, DType: loader.BF16, Ranks: map[string]int{"down_proj": 3, "q_proj": 16}}},
		{name: "gguf", opt: loratest.Options{Rank: 6, Alpha: 12}, gguf: true},
		{name: "gguf-hf-order", opt: loratest.Options{Rank: 6, Alpha: 12}, gguf: true, style: loader.RopeRotateHalf},
	}
	tokens := []int32{1, 5, 9, 77, 3, 42, 200, 11, 7, 128, 64, 2, 31}
	for bname, src := range bases {
		for _, v := range variants {
			style := v.style
			if bname == "stories260K" && style != loader.RopePairs {
				continue // one base of each order is enough
			}
			targets := [][]lora.Target{nil}
			if v.single {
				targets = nil
				for tg := lora.Target(0); tg < lora.NumTargets; tg++ {
					targets = append(targets, []lora.Target{tg})
				}
			}
			for _, tgs := range targets {
				name := bname + "/" + v.name
				if tgs != nil {
					name += "/" + tgs[0].String()
				}
				t.Run(name, func(t *testing.T) {
					c := src.Config
					c.RopeStyle = style
					opt := v.opt
					opt.Targets, opt.Seed = tgs, 7
					path := t.TempDir()
					var made *loratest.Made
					var err error
					if v.gguf {
						path = filepath.Join(path, "a.gguf")
						made, err = loratest.WriteGGUF(path, &c, opt)
					} else {
						made, err = loratest.WritePEFT(path, &c, opt, nil)
					}
					require.NoError(t, err)
					a, err := lora.Load(path, &c, 16)
					require.NoError(t, err)

					be := cpu.New(cpu.Options{Threads: 2})
					defer be.Close()
					base, err := model.Load(floatCheckpoint(t, src, style, func(string) []float64 { return nil }), be, model.Options{Weights: model.WeightsF32})
					require.NoError(t, err)
					set, err := base.NewLoRASet(3, 16)
					require.NoError(t, err)
					sets[base] = set
					require.NoError(t, base.LoadLoRA(set, 2, a))
					merged, err := model.Load(floatCheckpoint(t, src, style, mergedDelta(made, c.Layers, style)), be, model.Options{Weights: model.WeightsF32})
					require.NoError(t, err)

					got := forward(t, base, tokens, 3)
					want := forward(t, merged, tokens, 0)
					plain := forward(t, base, tokens, 0)
					tol := 1e-5 * maxAbs(want)
					d := maxDiff(got, want)
					t.Logf("max|logit| %.3g, unmerged vs merged %.3g (tolerance %.3g), adapter moves logits by %.3g", maxAbs(want), d, tol, maxDiff(plain, want))
					require.LessOrEqual(t, d, tol)
					require.Greater(t, maxDiff(plain, want), 100*tol, "the adapter must change the logits for this test to mean anything")
				})
			}
		}
	}
}

// TestLoRABatch: sequences of different slots and of the base model in one pass get
// exactly their logits alone (the CPU's LoRA rows are batch-invariant), and an empty
// slot or a reloaded one behaves as the base or the new adapter.
func TestLoRABatch(t *testing.T) {
	src := syntheticCheckpoint(t)
	c := src.Config
	be := cpu.New(cpu.Options{Threads: 2})
	defer be.Close()
	m, err := model.Load(src, be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	set, err := m.NewLoRASet(3, 8)
	require.NoError(t, err)
	sets[m] = set
	var ads []*lora.Adapter
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		_, err := loratest.WritePEFT(dir, &c, loratest.Options{Rank: 4 + 4*i, Seed: uint64(i + 1)}, nil)
		require.NoError(t, err)
		a, err := lora.Load(dir, &c, 8)
		require.NoError(t, err)
		ads = append(ads, a)
		require.NoError(t, m.LoadLoRA(set, i, a))
	}
	prompts := [][]int32{{1, 2, 3, 4, 5}, {9, 8, 7}, {100, 101, 102, 103}, {5}}
	slots := []int{1, 2, 0, 3} // slot 2 (LoRA 3) is empty: the base model
	ws, err := m.NewWorkspace(32, 32)
	require.NoError(t, err)
	ws.SetLoRA(set)
	kv, err := m.NewKVCache(16, 16)
	require.NoError(t, err)
	var seqs []model.Seq
	for i, p := range prompts {
		seqs = append(seqs, model.Seq{Tokens: p, Blocks: []int32{int32(i)}, Logits: model.LogitsAll, LoRA: slots[i]})
	}
	all, err := m.Forward(ws, kv, seqs)
	require.NoError(t, err)
	all = append([]float32(nil), all...)
	V, row := c.VocabSize, 0
	for i, p := range prompts {
		solo := forward(t, m, p, slots[i])
		require.Equal(t, solo, all[row*V:(row+len(p))*V], "sequence %d", i)
		row += len(p)
	}
	require.Equal(t, forward(t, m, prompts[3], 0), forward(t, m, prompts[3], 3), "an empty slot is the base model")
	require.NotEqual(t, forward(t, m, prompts[0], 1), forward(t, m, prompts[0], 2))
	// Reloading slot 0 with the second adapter makes it the same as slot 1.
	require.NoError(t, m.LoadLoRA(set, 0, ads[1]))
	require.Equal(t, forward(t, m, prompts[0], 2), forward(t, m, prompts[0], 1))

	// Bad slots and models without a set are errors, not panics.
	_, err = m.Forward(ws, kv, []model.Seq{{Tokens: []int32{1}, Blocks: []int32{0}, Logits: model.LogitsLast, LoRA: 4}})
	require.ErrorContains(t, err, "LoRA slot 3 outside [0, 3)")
	ws.SetLoRA(nil)
	_, err = m.Forward(ws, kv, []model.Seq{{Tokens: []int32{1}, Blocks: []int32{0}, Logits: model.LogitsLast, LoRA: 1}})
	require.ErrorContains(t, err, "no adapter slots")
	big := &lora.Adapter{Path: "big", Rank: 9}
	require.ErrorContains(t, m.LoadLoRA(set, 0, big), "rank 9, above the slots' 8")
	require.ErrorContains(t, m.LoadLoRA(set, 3, ads[0]), "slot 3 outside")
}
