package model_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// TestGGUFQuantFixtures loads every llama.cpp-quantized fixture model (Q8_0, Q4_0 …
// Q6_K, the K mixes and the pure K files): each tensor has the type llama-quantize
// wrote, and f32 weights (dequantized at load) reproduce llama.cpp's logits of the same
// weights dequantized to F32 within 1e-4. The int8 path (dequantize, then requantize
// per row) loads too and stays near those logits.
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
