package model_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// TestWeightsAuto: auto keeps a float checkpoint's matrices as floats (the same
// logits as f32, bit for bit) and runs a block-quantized file's quantized matrices in
// their own type where the CPU backend has the kernels (read in place: "mapped"; all of
// GGUF's block types here), int8 per row where not, its float ones staying f32; the
// progress hook sees every matrix once and ends at its total.
func TestWeightsAuto(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	for _, v := range []string{"F32", "Q4_0", "Q4_K_M", "Q8_0"} {
		t.Run(v, func(t *testing.T) {
			ck, err := loader.Open(filepath.Join(dir, "synth256-"+v+".gguf"), loader.Options{})
			require.NoError(t, err)
			defer ck.Close()
			names, shapes := loader.Canonical(ck.Config)
			be := cpu.New(cpu.Options{Threads: 2})
			quantized, float, native := 0, 0, map[string]int{}
			for _, n := range names {
				if len(shapes[n]) == 2 {
					typ := ck.Tensors[n].Type
					switch {
					case typ.Quantized() && be.LoadsBlocks(blockType(typ)):
						native[strings.ToLower(typ.String())]++
					case typ.Quantized():
						quantized++
					default:
						float++
					}
				}
			}
			var steps []model.LoadStep
			m, err := model.Load(ck, be, model.Options{Weights: model.WeightsAuto,
				Progress: func(s model.LoadStep) { steps = append(steps, s) }})
			require.NoError(t, err)
			nNative := 0
			for _, k := range native {
				nNative += k
			}
			require.Len(t, steps, quantized+float+nNative)
			last := steps[len(steps)-1]
			require.Equal(t, last.Total, last.Done)
			actions := map[string]int{}
			for _, s := range steps {
				actions[s.Action]++
			}
			require.Equal(t, quantized, actions["quantized"])
			require.Equal(t, nNative+float, actions["mapped"], "native block matrices and f32 ones are read in place")
			var parts []string
			for _, k := range []string{"q2_k", "q3_k", "q4_0", "q4_1", "q4_k", "q5_0", "q5_1", "q5_k", "q6_k", "q8_0"} {
				if native[k] > 0 {
					parts = append(parts, fmt.Sprintf("%s ×%d", k, native[k]))
				}
			}
			if quantized > 0 {
				parts = append(parts, fmt.Sprintf("int8 ×%d", quantized))
			}
			if float > 0 {
				parts = append(parts, fmt.Sprintf("f32 ×%d", float))
			}
			require.Equal(t, strings.Join(parts, ", "), m.WeightTypes())

			ref := "synth256-" + v + ".deq-f32.logits.json"
			if v == "F32" {
				ref = "synth256-F32.logits.json"
			}
			d, where, err := ggufref.MaxAbsDiff(m, ggufref.ReadLogits(t, ref))
			require.NoError(t, err)
			if quantized == 0 && nNative == 0 {
				m32, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsF32})
				require.NoError(t, err)
				d32, _, err := ggufref.MaxAbsDiff(m32, ggufref.ReadLogits(t, ref))
				require.NoError(t, err)
				require.Equal(t, d32, d, "auto on a float file is f32")
			}
			require.LessOrEqual(t, d, 0.02, where)
		})
	}
}

// blockType is the backend type of a loader block type.
func blockType(t loader.DType) backend.DType {
	return map[loader.DType]backend.DType{
		loader.Q8_0: backend.Q8_0, loader.Q4_0: backend.Q4_0, loader.Q4_1: backend.Q4_1,
		loader.Q5_0: backend.Q5_0, loader.Q5_1: backend.Q5_1, loader.Q2_K: backend.Q2_K,
		loader.Q3_K: backend.Q3_K, loader.Q4_K: backend.Q4_K, loader.Q5_K: backend.Q5_K,
		loader.Q6_K: backend.Q6_K,
	}[t]
}

// noGather is the CPU backend as a backend.BlockGatherer that gathers no block type (as
// the CUDA backend with W4A16 weights: they multiply, an int8 table gathers).
type noGather struct{ *cpu.Backend }

func (noGather) GathersBlocks(backend.DType) bool { return false }

// TestWeightsAutoNoGather: with such a backend, auto loads the Q4_0 file's embedding
// table (token_embd, Q4_0) the non-native way, int8, and every other matrix, the untied
// Q6_K classifier included, as blocks; the logits stay within the f32 reference's reach.
func TestWeightsAutoNoGather(t *testing.T) {
	ck, err := loader.Open(filepath.Join(ggufref.ModelsDir(t), "synth256-Q4_0.gguf"), loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	require.Equal(t, loader.Q4_0, ck.Tensors["token_embd.weight"].Type)
	m, err := model.Load(ck, noGather{cpu.New(cpu.Options{Threads: 2})}, model.Options{Weights: model.WeightsAuto})
	require.NoError(t, err)
	// 15 Q4_0 matrices, the embedding among them, and the Q6_K classifier.
	require.Equal(t, "q4_0 ×14, q6_k ×1, int8 ×1", m.WeightTypes())
	d, where, err := ggufref.MaxAbsDiff(m, ggufref.ReadLogits(t, "synth256-Q4_0.deq-f32.logits.json"))
	require.NoError(t, err)
	require.LessOrEqual(t, d, 0.02, where)
}
