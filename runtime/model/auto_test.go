package model_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// TestWeightsAuto: auto keeps a float checkpoint's matrices as floats (the same
// logits as f32, bit for bit) and makes a block-quantized file's quantized matrices
// int8 per row, its float ones staying f32; the progress hook sees every matrix once
// and ends at its total.
func TestWeightsAuto(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	for _, v := range []string{"F32", "Q4_0", "Q4_K_M", "Q8_0"} {
		t.Run(v, func(t *testing.T) {
			ck, err := loader.Open(filepath.Join(dir, "synth256-"+v+".gguf"), loader.Options{})
			require.NoError(t, err)
			defer ck.Close()
			names, shapes := loader.Canonical(ck.Config)
			quantized, float := 0, 0
			for _, n := range names {
				if len(shapes[n]) == 2 {
					if ck.Tensors[n].Type.Quantized() {
						quantized++
					} else {
						float++
					}
				}
			}
			var steps []model.LoadStep
			m, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsAuto,
				Progress: func(s model.LoadStep) { steps = append(steps, s) }})
			require.NoError(t, err)
			require.Len(t, steps, quantized+float)
			last := steps[len(steps)-1]
			require.Equal(t, last.Total, last.Done)
			actions := map[string]int{}
			for _, s := range steps {
				actions[s.Action]++
			}
			require.Equal(t, quantized, actions["quantized"])
			var want string
			switch {
			case quantized == 0:
				want = fmt.Sprintf("f32 ×%d", float)
			case float == 0:
				want = fmt.Sprintf("int8 ×%d", quantized)
			default:
				want = fmt.Sprintf("int8 ×%d, f32 ×%d", quantized, float)
			}
			require.Equal(t, want, m.WeightTypes())

			ref := "synth256-" + v + ".deq-f32.logits.json"
			if v == "F32" {
				ref = "synth256-F32.logits.json"
			}
			d, where, err := ggufref.MaxAbsDiff(m, ggufref.ReadLogits(t, ref))
			require.NoError(t, err)
			if quantized == 0 {
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
