package model_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
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
			m, err := model.Load(ck, be, model.Options{Weights: model.WeightsAuto})
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
			require.LessOrEqual(t, d, bar, where)
		})
	}
}

// TestNativeBatchInvariance: on native block weights a token's logits depend on its
// role, never on the batch. Each fixture prompt is fed alone (the whole prompt as one
// pass, then 16 greedy tokens one per pass), then all prompts together with prefill
// chunks of odd sizes mixed with other sequences' decode rows in the same passes, over
// one cache with interleaved blocks: every logit must match bit for bit. And the logits
// a generated token gets are the ones its position gets teacher-forced (the whole
// sequence as one prompt): a verification row reproduces decode exactly.
func TestNativeBatchInvariance(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	prompts := ggufref.ReadLogits(t, "synth256-Q4_K_M.logits.json").Prompts
	const steps, bs = 16, 16
	for _, v := range []string{"Q4_K_M", "Q3_K_M", "Q6_K", "Q4_1", "Q5_0", "Q2_K"} {
		t.Run(v, func(t *testing.T) {
			ck, err := loader.Open(filepath.Join(dir, "synth256-"+v+".gguf"), loader.Options{})
			require.NoError(t, err)
			defer ck.Close()
			m, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsAuto})
			require.NoError(t, err)
			V := m.Config.VocabSize
			nblocks := (len(prompts[0].IDs) + steps + bs) / bs
			type seq struct {
				prompt, out []int32
				pos, chunk  int
				blocks      []int32
				alone       [][]float32
			}
			var seqs []*seq
			for i, p := range prompts {
				s := &seq{prompt: p.IDs, chunk: []int{3, 5, 7}[i%3]}
				kv, err := m.NewKVCache(nblocks, bs)
				require.NoError(t, err)
				ws, err := m.NewWorkspace(len(p.IDs), 1)
				require.NoError(t, err)
				blocks := make([]int32, nblocks)
				for b := range blocks {
					blocks[b] = int32(b)
				}
				logits, err := m.Forward(ws, kv, []model.Seq{{Tokens: p.IDs, Blocks: blocks, Logits: model.LogitsLast}})
				require.NoError(t, err)
				var gen []int32
				for k := 0; k < steps; k++ {
					s.alone = append(s.alone, append([]float32(nil), logits...))
					next := int32(argmaxF(logits))
					gen = append(gen, next)
					logits, err = m.Forward(ws, kv, []model.Seq{{Tokens: []int32{next}, Pos: len(p.IDs) + k, Blocks: blocks, Logits: model.LogitsLast}})
					require.NoError(t, err)
				}
				// Teacher-forced: the whole sequence as one prompt.
				full := append(append([]int32(nil), p.IDs...), gen...)
				all, err := ggufref.Forward(m, full)
				require.NoError(t, err)
				for k, want := range s.alone {
					got := all[(len(p.IDs)-1+k)*V : (len(p.IDs)+k)*V]
					for j := range want {
						require.Equal(t, math.Float32bits(want[j]), math.Float32bits(got[j]), "prompt %d step %d logit %d: decode vs teacher-forced", i, k, j)
					}
				}
				seqs = append(seqs, s)
			}
			kv, err := m.NewKVCache(nblocks*len(seqs), bs)
			require.NoError(t, err)
			for b := 0; b < nblocks*len(seqs); b++ { // blocks interleaved across sequences
				seqs[b%len(seqs)].blocks = append(seqs[b%len(seqs)].blocks, int32(b))
			}
			ws, err := m.NewWorkspace(64, len(seqs))
			require.NoError(t, err)
			for {
				var batch []model.Seq
				var owners []*seq
				for _, s := range seqs {
					if len(s.out) >= steps {
						continue
					}
					if s.pos < len(s.prompt) {
						n := min(s.chunk, len(s.prompt)-s.pos)
						mode := model.LogitsNone
						if s.pos+n == len(s.prompt) {
							mode = model.LogitsLast
						}
						batch = append(batch, model.Seq{Tokens: s.prompt[s.pos : s.pos+n], Pos: s.pos, Blocks: s.blocks, Logits: mode})
					} else {
						batch = append(batch, model.Seq{Tokens: s.out[len(s.out)-1:], Pos: s.pos, Blocks: s.blocks, Logits: model.LogitsLast})
					}
					owners = append(owners, s)
				}
				if len(batch) == 0 {
					break
				}
				logits, err := m.Forward(ws, kv, batch)
				require.NoError(t, err)
				row := 0
				for i, s := range owners {
					s.pos += len(batch[i].Tokens)
					if batch[i].Logits == model.LogitsNone {
						continue
					}
					got := logits[row*V : (row+1)*V]
					row++
					want := s.alone[len(s.out)]
					for j := range got {
						require.Equal(t, math.Float32bits(want[j]), math.Float32bits(got[j]), "sequence %d step %d logit %d: alone vs batched", i, len(s.out), j)
					}
					s.out = append(s.out, int32(argmaxF(got)))
				}
			}
		})
	}
}

func argmaxF(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
