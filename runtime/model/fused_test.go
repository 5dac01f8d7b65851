package model

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
)

// splitCPU is the CPU backend with split outputs (backend.SplitMatMuler), so the model
// fuses q/k/v and gate/up on it: MatMulSplit is MatMul of the fused weight into one
// scratch output whose columns are then cut into outs (added to them with
// Accumulate), which is what a split-output kernel computes. calls counts its calls.
type splitCPU struct {
	*cpu.Backend
	calls int
}

func (b *splitCPU) MatMulSplit(s backend.Stream, outs []backend.Tensor, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	b.calls++
	if epi.SiLUGLU || len(outs) == 0 || len(outs) > 3 {
		return backend.ShapeError("matmul split", "%d outputs, epilogue %+v", len(outs), epi)
	}
	acc := epi.Accumulate
	epi.Accumulate = false
	tmp := make([]float32, x.Rows*w.Out)
	if err := b.MatMul(s, cpu.F32(tmp, x.Rows, w.Out), x, w, epi); err != nil {
		return err
	}
	col := 0
	for _, o := range outs {
		host := make([]float32, o.Len())
		if acc {
			if err := b.Download(backend.Bytes(host), backend.F32, o); err != nil {
				return err
			}
		}
		for i := 0; i < o.Rows; i++ {
			for j := 0; j < o.Cols; j++ {
				v := tmp[i*w.Out+col+j]
				if acc {
					v = host[i*o.Cols+j] + v
				}
				host[i*o.Cols+j] = v
			}
		}
		if err := b.Upload(o, backend.Bytes(host), backend.F32); err != nil {
			return err
		}
		col += o.Cols
	}
	if col != w.Out {
		return backend.ShapeError("matmul split", "%d columns for a weight of %d rows", col, w.Out)
	}
	return nil
}

// TestFusedProjections: on a backend with split outputs the model loads q/k/v and
// gate/up fused (their rows concatenated; WeightTypes and WeightBytes as unfused) and
// issues one split-output call per role and layer for q/k/v and one SiLU-GLU product
// for gate/up, and its logits are bit for bit the unfused model's — f32 and int8
// weights, a pass mixing a prompt chunk (logits for every row) with decode rows, and
// with cpu.Options.W8A8 the prompt rows quantized as their role says; and with an
// adapter on every projection in one of the sequences (the fused gate/up then goes
// through split outputs, its adapter products added to gate and up apart, and SiLUMul).
func TestFusedProjections(t *testing.T) {
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), loader.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	for _, tc := range []struct {
		name string
		w    WeightType
		w8a8 bool
		lora bool
	}{{"f32", WeightsF32, false, false}, {"int8", WeightsInt8, false, false}, {"int8-w8a8", WeightsInt8, true, false},
		{"f32-lora", WeightsF32, false, true}, {"int8-w8a8-lora", WeightsInt8, true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			plain, err := Load(ck, cpu.New(cpu.Options{W8A8: tc.w8a8}), Options{Weights: tc.w})
			require.NoError(t, err)
			sb := &splitCPU{Backend: cpu.New(cpu.Options{W8A8: tc.w8a8})}
			fused, err := Load(ck, sb, Options{Weights: tc.w})
			require.NoError(t, err)
			for l, ly := range fused.layers {
				require.NotNil(t, ly.wqkv, "layer %d: q/k/v not fused", l)
				require.NotNil(t, ly.wgu, "layer %d: gate/up not fused", l)
				require.True(t, ly.wq == nil && ly.wk == nil && ly.wv == nil && ly.gate == nil && ly.up == nil, "layer %d: parts kept beside the fused weights", l)
				c := &fused.Config
				require.Equal(t, (c.Heads+2*c.KVHeads)*c.HeadDim, ly.wqkv.Out)
				require.Equal(t, 2*c.HiddenDim, ly.wgu.Out)
			}
			require.Nil(t, plain.layers[0].wqkv)
			require.Equal(t, plain.WeightTypes(), fused.WeightTypes())
			require.Equal(t, plain.WeightBytes, fused.WeightBytes)

			var adapter *lora.Adapter
			if tc.lora {
				dir := t.TempDir()
				_, err := loratest.WritePEFT(dir, &ck.Config, loratest.Options{Rank: 4, Alpha: 8, Seed: 3}, nil)
				require.NoError(t, err)
				adapter, err = lora.Load(dir, &ck.Config, 8)
				require.NoError(t, err)
			}
			V, bs := plain.Config.VocabSize, 16
			seqs := func(step int) []Seq {
				a := Seq{Tokens: []int32{5, 9, 33, 7, 101, 3, 250, 17, 60, 2, 11}, Blocks: []int32{0, 1}, Logits: LogitsAll, Prompt: true}
				if step == 1 {
					a = Seq{Tokens: []int32{42}, Pos: 11, Blocks: []int32{0, 1}, Logits: LogitsLast}
				}
				slot := 0
				if tc.lora {
					slot = 1
				}
				return []Seq{
					{Tokens: []int32{300}, Pos: step, Blocks: []int32{2}, Logits: LogitsLast, LoRA: slot},
					a,
					{Tokens: []int32{1, 2, 3, 4, 5, 6, 7}, Pos: 7 * step, Blocks: []int32{3}, Logits: LogitsLast, Prompt: true},
				}
			}
			run := func(m *Model) [][]float32 {
				kv, err := m.NewKVCache(8, bs)
				require.NoError(t, err)
				ws, err := m.NewWorkspace(64, 16)
				require.NoError(t, err)
				if adapter != nil {
					set, err := m.NewLoRASet(2, 8)
					require.NoError(t, err)
					require.NoError(t, m.LoadLoRA(set, 0, adapter))
					ws.SetLoRA(set)
				}
				var out [][]float32
				for step := range 2 {
					lg, err := m.Forward(ws, kv, seqs(step))
					require.NoError(t, err)
					out = append(out, append([]float32(nil), lg...))
				}
				return out
			}
			want, got := run(plain), run(fused)
			for step := range want {
				require.Len(t, got[step], len(want[step]))
				for j := range want[step] {
					require.Equal(t, math.Float32bits(want[step][j]), math.Float32bits(got[step][j]), "step %d row %d logit %d", step, j/V, j%V)
				}
			}
			// Two passes × layers × two roles (each pass holds prompt and generated
			// rows): one q/k/v call each; gate/up went through SiLU-GLU, not split,
			// unless adapters need gate and up apart.
			calls := 2 * len(fused.layers) * 2
			if tc.lora {
				calls *= 2
			}
			require.Equal(t, calls, sb.calls)
		})
	}
}

// TestFusedProjectionsMixedForms: GGUF weights in their own block types (the CPU keeps
// them natively) fuse only where the parts share a type — Q4_K_M stores attn_v (and
// some ffn_down) as Q6_K, so q/k/v load apart while gate and up (both Q4_K) fuse into
// one block weight — and the logits are the unfused model's bit for bit.
func TestFusedProjectionsMixedForms(t *testing.T) {
	ck, err := loader.Open(shared.Path(t, "golden", "gguf-quants", "models", "synth256-Q4_K_M.gguf"), loader.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	plain, err := Load(ck, cpu.New(cpu.Options{}), Options{Weights: WeightsAuto})
	require.NoError(t, err)
	sb := &splitCPU{Backend: cpu.New(cpu.Options{})}
	fused, err := Load(ck, sb, Options{Weights: WeightsAuto})
	require.NoError(t, err)
	require.Equal(t, plain.WeightTypes(), fused.WeightTypes())
	nq, ngu := 0, 0
	for _, ly := range fused.layers {
		if ly.wqkv != nil {
			nq++
		} else {
			require.True(t, ly.wq != nil && ly.wk != nil && ly.wv != nil, "unfused q/k/v must be loaded")
			require.NotEqual(t, ly.wq.W.DType, ly.wv.W.DType, "q/k/v of one type left apart")
		}
		if ly.wgu != nil {
			ngu++
			require.Equal(t, backend.Q4_K, ly.wgu.W.DType)
		}
	}
	t.Logf("%d of %d layers with fused q/k/v, %d with fused gate/up", nq, len(fused.layers), ngu)
	require.Greater(t, ngu, 0, "no gate/up fused")
	require.Less(t, nq, len(fused.layers), "every q/k/v fused: the mixed case is not exercised")
	ids := []int32{1, 7, 42, 99, 3, 250, 17, 8}
	run := func(m *Model) []float32 {
		kv, err := m.NewKVCache(4, 16)
		require.NoError(t, err)
		ws, err := m.NewWorkspace(16, 16)
		require.NoError(t, err)
		lg, err := m.Forward(ws, kv, []Seq{{Tokens: ids, Blocks: []int32{0}, Logits: LogitsAll, Prompt: true}})
		require.NoError(t, err)
		return append([]float32(nil), lg...)
	}
	want, got := run(plain), run(fused)
	for j := range want {
		require.Equal(t, math.Float32bits(want[j]), math.Float32bits(got[j]), "logit %d", j)
	}
}
