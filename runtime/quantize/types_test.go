package quantize

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// counts chooses every tensor's type for a model of config c (F32 input) and counts
// the types of the matrices.
func counts(t *testing.T, c loader.Config, target string) map[ggml.Type]int {
	names, shapes := loader.Canonical(c)
	var ts []tensorInfo
	for _, n := range names {
		ts = append(ts, tensorInfo{name: n, shape: shapes[n], typ: ggml.F32})
	}
	sortLikeLlamaCpp(ts)
	tg, err := ParseTarget(target)
	require.NoError(t, err)
	types, err := chooseTypes(ts, tg, hparams{c.Layers, c.Heads, c.KVHeads}, false, false)
	require.NoError(t, err)
	out := map[ggml.Type]int{}
	for i, typ := range types {
		if len(ts[i].shape) == 2 {
			out[typ]++
		}
	}
	return out
}

// TestMixCounts: the mixes on real shapes give the per-type tensor counts llama.cpp
// reports for them (Llama 2 7B: 226 matrices; its Q4_K_M has 193 Q4_K and 33 Q6_K).
func TestMixCounts(t *testing.T) {
	llama2 := loader.Config{Dim: 4096, HiddenDim: 11008, Layers: 32, Heads: 32, KVHeads: 32, HeadDim: 128, VocabSize: 32000}
	llama3 := loader.Config{Dim: 4096, HiddenDim: 14336, Layers: 32, Heads: 32, KVHeads: 8, HeadDim: 128, VocabSize: 128256}
	llama70 := loader.Config{Dim: 8192, HiddenDim: 28672, Layers: 80, Heads: 64, KVHeads: 8, HeadDim: 128, VocabSize: 128256}
	type m = map[ggml.Type]int
	for _, tc := range []struct {
		c      loader.Config
		target string
		want   m
	}{
		{llama2, "q4_k_m", m{ggml.Q4_K: 193, ggml.Q6_K: 33}},
		{llama2, "q4_k_s", m{ggml.Q4_K: 217, ggml.Q5_K: 8, ggml.Q6_K: 1}},
		{llama2, "q3_k_m", m{ggml.Q3_K: 129, ggml.Q4_K: 92, ggml.Q5_K: 4, ggml.Q6_K: 1}},
		{llama2, "q2_k", m{ggml.Q2_K: 129, ggml.Q3_K: 96, ggml.Q6_K: 1}},
		{llama2, "q5_k_m", m{ggml.Q5_K: 193, ggml.Q6_K: 33}},
		{llama2, "q5_k_s", m{ggml.Q5_K: 225, ggml.Q6_K: 1}},
		{llama2, "q6_k", m{ggml.Q6_K: 226}},
		{llama2, "q8_0", m{ggml.Q8_0: 226}},
		{llama2, "q4_0", m{ggml.Q4_0: 225, ggml.Q6_K: 1}},
		{llama2, "f16", m{ggml.F16: 226}},
		// GQA 4: Q2_K's attn_v is Q4_K.
		{llama3, "q2_k", m{ggml.Q2_K: 129, ggml.Q3_K: 64, ggml.Q4_K: 32, ggml.Q6_K: 1}},
		// 80 layers with GQA is llama.cpp's 70B: attn_v Q3_K/Q4_K become Q5_K.
		{llama70, "q3_k_m", m{ggml.Q3_K: 4*80 + 1, ggml.Q4_K: 80 + 75, ggml.Q5_K: 80 + 5, ggml.Q6_K: 1}},
	} {
		require.Equal(t, tc.want, counts(t, tc.c, tc.target), "%s %d layers", tc.target, tc.c.Layers)
	}
}

// TestFallback: rows that are not whole blocks take llama.cpp's fallback types.
func TestFallback(t *testing.T) {
	for _, tc := range []struct {
		typ  ggml.Type
		cols int
		want ggml.Type
	}{
		{ggml.Q4_K, 512, ggml.Q4_K},
		{ggml.Q4_K, 96, ggml.Q5_0},
		{ggml.Q5_K, 96, ggml.Q5_1},
		{ggml.Q6_K, 96, ggml.Q8_0},
		{ggml.Q2_K, 96, ggml.Q4_0},
		{ggml.Q3_K, 96, ggml.Q4_0},
		{ggml.Q6_K, 100, ggml.F16},
	} {
		got, err := fallback("w", tc.cols, tc.typ, false)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "%s rows of %d", tc.typ, tc.cols)
	}
	f16, err := fallback("blk.0.attn_q.weight", 100, ggml.Q4_0, true)
	require.NoError(t, err)
	require.Equal(t, ggml.F16, f16, "with f16 fallback")
	_, err = fallback("blk.0.attn_q.weight", 100, ggml.Q4_0, false)
	require.ErrorContains(t, err, `tensor "blk.0.attn_q.weight": rows of 100 values are not a whole number of Q4_0 blocks of 32`)

	// The output of a model whose rows do not fit the base type's blocks is Q8_0.
	ts := []tensorInfo{{name: "output.weight", shape: []int{10, 96}, typ: ggml.F32}, {name: "token_embd.weight", shape: []int{10, 96}, typ: ggml.F32}}
	types, err := chooseTypes(ts, mustTarget(t, "q4_k_m"), hparams{1, 1, 1}, false, false)
	require.NoError(t, err)
	require.Equal(t, []ggml.Type{ggml.Q8_0, ggml.Q5_0}, types)
}
