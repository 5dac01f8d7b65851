package model_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// TestResidentCopy: on the CPU, GGUF block matrices are copied out of the file's
// mapping into huge-page memory by default ("copied"), or read in place with
// KeepMapped ("mapped"); the logits of llama.cpp's fixture prompts are bit-identical
// either way, and stay so after the copy released the file's pages (the mapping
// refaults them for the weights still read in place). The size threshold is lowered so
// that the fixture's small matrices take the copy path. Where the kernel has no
// transparent huge pages, both loads are "mapped".
func TestResidentCopy(t *testing.T) {
	defer model.SetResidentMin(1)()
	for _, v := range []string{"Q8_0", "Q4_K_M"} {
		t.Run(v, func(t *testing.T) {
			ck, err := loader.Open(filepath.Join(ggufref.ModelsDir(t), "synth256-"+v+".gguf"), loader.Options{})
			require.NoError(t, err)
			defer ck.Close()
			load := func(keep bool) (*model.Model, map[string]int) {
				actions := map[string]int{}
				m, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsAuto, KeepMapped: keep,
					Progress: func(s model.LoadStep) { actions[s.Action]++ }})
				require.NoError(t, err)
				return m, actions
			}
			mapped, am := load(true)
			copied, ac := load(false)
			require.Zero(t, am["copied"])
			native := am["mapped"] - ac["mapped"]
			if model.HugePages() {
				require.Positive(t, ac["copied"], "block matrices copied")
				require.Equal(t, ac["copied"], native, "every copied matrix was mapped under KeepMapped")
			} else {
				require.Zero(t, ac["copied"])
			}
			ref := ggufref.ReadLogits(t, "synth256-"+v+".deq-f32.logits.json")
			for _, p := range ref.Prompts {
				want, err := ggufref.Forward(mapped, p.IDs)
				require.NoError(t, err)
				got, err := ggufref.Forward(copied, p.IDs)
				require.NoError(t, err)
				require.Equal(t, len(want), len(got))
				for i := range want {
					if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
						t.Fatalf("prompt %v: logit %d: mapped %g, copied %g", p.IDs, i, want[i], got[i])
					}
				}
			}
		})
	}
}
