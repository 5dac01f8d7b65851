package model_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// TestGGUFQuantFixtures loads every llama.cpp-quantized fixture model (Q8_0, Q4_0 …
// Q6_K, the K mixes and the pure K files): each tensor has the type llama-quantize
// wrote, and f32 weights (dequantized at load) reproduce llama.cpp's
// logits of the same weights dequantized to F32 within 1e-4. The int8 path (dequantize,
// then requantize per row) loads too and stays near those logits. The native path is
// TestGGUFNative's.
func TestGGUFQuantFixtures(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	files := ggufref.Files(t)
	for _, v := range append([]string{"F32"}, ggufref.Variants(t)...) {
		t.Run(v, func(t *testing.T) {
			name := "synth256-" + v + ".gguf"
			ck, err := loader.Open(filepath.Join(dir, name), loader.Options{})
			require.NoError(t, err)
			defer ck.Close()
			for tn, typ := range files[name].Types {
				require.Contains(t, ck.Tensors, tn)
				require.Equal(t, typ, ck.Tensors[tn].Type.String(), tn)
			}
			ref := "synth256-" + v + ".deq-f32.logits.json"
			if v == "F32" {
				ref = "synth256-F32.logits.json"
			}
			want := ggufref.ReadLogits(t, ref)

			m, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsF32})
			require.NoError(t, err)
			d, where, err := ggufref.MaxAbsDiff(m, want)
			require.NoError(t, err)
			t.Logf("f32 weights: max |logit - llama.cpp %s| = %.3g", ref, d)
			require.LessOrEqual(t, d, 1e-4, where)

			m8, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsInt8})
			require.NoError(t, err)
			d8, where8, err := ggufref.MaxAbsDiff(m8, want)
			require.NoError(t, err)
			t.Logf("int8 weights: max |logit - llama.cpp %s| = %.3g", ref, d8)
			require.LessOrEqual(t, d8, 0.02, where8) // measured 0.0045-0.0078
		})
	}
}

// int8Blocks is a CPU backend that stores block-quantized weights as the CUDA backend
// does (backend.Int8FromBlocks) and records each weight's Source.
type int8Blocks struct {
	backend.Backend
	sources map[string]string
}

func (b *int8Blocks) LoadWeight(h *backend.HostWeight) (*backend.Weight, error) {
	b.sources[h.Name] = h.Source
	h, _ = backend.Int8FromBlocks(h)
	return b.Backend.LoadWeight(h)
}

// TestBlockSourceInt8: the model tells the backend which GGUF block type each matrix
// came from, and a backend storing those as int8 (the CUDA backend's load-time
// conversion, run here on the CPU) computes exactly what int8 weights with an int8
// embedding compute, reporting 1 byte per weight.
func TestBlockSourceInt8(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	for _, v := range []string{"F32", "Q4_K_M"} {
		ck, err := loader.Open(filepath.Join(dir, "synth256-"+v+".gguf"), loader.Options{})
		require.NoError(t, err)
		defer ck.Close()
		be := &int8Blocks{Backend: cpu.New(cpu.Options{Threads: 2}), sources: map[string]string{}}
		conv, err := model.Load(ck, be, model.Options{Weights: model.WeightsF32})
		require.NoError(t, err)
		for name, src := range be.sources {
			want := ""
			if typ := ck.Tensors[name].Type; typ.Quantized() {
				want = typ.String()
			}
			require.Equal(t, want, src, name)
		}
		require.Len(t, be.sources, 2+7*ck.Config.Layers, "every matrix")
		if v == "F32" {
			continue
		}
		i8, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsInt8})
		require.NoError(t, err)
		require.Equal(t, i8.WeightBytes, conv.WeightBytes)
		for _, p := range ggufref.ReadLogits(t, "synth256-"+v+".deq-f32.logits.json").Prompts {
			a, err := ggufref.Forward(conv, p.IDs)
			require.NoError(t, err)
			b, err := ggufref.Forward(i8, p.IDs)
			require.NoError(t, err)
			require.Equal(t, b, a, "same weights, same arithmetic")
		}
	}
}
