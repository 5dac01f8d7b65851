package model_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// logitDiffs reads the fixture's logit_diffs.json: per file, llama.cpp's own distance
// between its quantized-activation logits and the exact dequantized-f32 forward.
func logitDiffs(t *testing.T) map[string]struct {
	QuantVsDeq float64 `json:"quant_vs_deqF32"`
} {
	raw, err := os.ReadFile(filepath.Join(ggufref.ModelsDir(t), "logit_diffs.json"))
	require.NoError(t, err)
	var d struct {
		Types map[string]struct {
			QuantVsDeq float64 `json:"quant_vs_deqF32"`
		} `json:"types"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	return d.Types
}

// TestGGUFNative runs every llama.cpp-quantized fixture model natively on the CPU (the
// file's blocks, activations quantized per token as llama.cpp's CPU backend quantizes
// them: Q8_K for the K-quants, Q8_0 and Q8_1 for the others) and compares with
// llama.cpp's own logits of the file (*.logits.json, computed the same way). Every
// matrix must have run in its own type.
//
// The activation rounding is llama.cpp's, so most positions agree to float noise
// (~1e-7). Where an activation lands exactly on a rounding tie (common here: a
// K-quant's dequantized embedding rows are multiples of one step), a last-bit
// difference in an op before it (llama.cpp's own exp, SiLU and softmax) can send it the
// other way, and the change reaches every later position through the KV cache, by
// about the size of the activation rounding itself. So the bars: at least a third of
// the positions within 1e-5 (a wrong kernel misses every position), and every position
// within 1.25x llama.cpp's own distance from the exact forward (the README's §3.3
// column).
func TestGGUFNative(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	diffs := logitDiffs(t)
	for _, v := range ggufref.Variants(t) {
		t.Run(v, func(t *testing.T) {
			ck, err := loader.Open(filepath.Join(dir, "synth256-"+v+".gguf"), loader.Options{})
			require.NoError(t, err)
			defer ck.Close()
			be := cpu.New(cpu.Options{Threads: 2})
			if v == "Q8_0" && !be.LoadsBlocks(backend.Q8_0) {
				t.Skip("Q8_0 blocks are not multiplied natively on this branch (issue 27 adds them)")
			}
			m, err := model.Load(ck, be, model.Options{})
			require.NoError(t, err)
			var blockBytes int64
			for name, tn := range ck.Tensors {
				if len(tn.Shape) == 2 {
					require.True(t, tn.Type.Quantized(), name)
					blockBytes += int64(len(tn.Data))
				}
			}
			// Every matrix is read as stored, the embedding (gathered) excepted.
			require.Equal(t, blockBytes-int64(len(ck.Tensors["token_embd.weight"].Data)), m.WeightBytes)

			ref := ggufref.ReadLogits(t, "synth256-"+v+".logits.json")
			d, where, err := ggufref.MaxAbsDiff(m, ref)
			require.NoError(t, err)
			dDeq, _, err := ggufref.MaxAbsDiff(m, ggufref.ReadLogits(t, "synth256-"+v+".deq-f32.logits.json"))
			require.NoError(t, err)
			exact, positions := 0, 0
			for _, p := range ref.Prompts {
				logits, err := ggufref.Forward(m, p.IDs)
				require.NoError(t, err)
				for i, row := range p.Logits {
					worst := 0.0
					for k, want := range row {
						worst = math.Max(worst, math.Abs(float64(logits[i*ref.NVocab+k]-want)))
					}
					if worst <= 1e-5 {
						exact++
					}
					positions++
				}
			}
			bar := diffs[v].QuantVsDeq
			t.Logf("native: max |logit - llama.cpp| = %.3g (column %.3g), %d of %d positions within 1e-5; vs the dequantized f32 forward %.3g", d, bar, exact, positions, dDeq)
			require.Greater(t, bar, 0.0)
			require.GreaterOrEqual(t, 3*exact, positions, "positions matching llama.cpp to 1e-5")
			require.LessOrEqual(t, d, 1.25*bar, where)
		})
	}
}
