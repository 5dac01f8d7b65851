package bench

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/compress"
)

func TestParseCompressSetting(t *testing.T) {
	for spec, want := range map[string]compress.Options{
		"lowrank-b0.5":        {Rank: compress.RankRule{Budget: 0.5}},
		"lowrank-f0.25-ffn":   {Rank: compress.RankRule{Fraction: 0.25}, LowRank: []string{"ffn_gate", "ffn_up", "ffn_down"}},
		"lowrank-e0.99-w":     {Rank: compress.RankRule{Energy: 0.99}, Whiten: true},
		"lowrank-e0.9-w-attn": {Rank: compress.RankRule{Energy: 0.9}, Whiten: true, LowRank: []string{"attn_q", "attn_k", "attn_v", "attn_output"}},
		"2:4-mag":             {Prune: compress.PruneMagnitude},
		"2:4-wanda-ffn":       {Prune: compress.PruneWanda, Sparse: []string{"ffn_gate", "ffn_up", "ffn_down"}},
	} {
		s, err := ParseCompressSetting(spec)
		require.NoError(t, err, spec)
		require.Equal(t, want, s.Options, spec)
	}
	for _, bad := range []string{"", "lowrank", "lowrank-x0.5", "lowrank-b", "lowrank-bx", "lowrank-b0.5-q", "2:4", "2:4-best", "2:4-mag-w", "prune-b0.5"} {
		_, err := ParseCompressSetting(bad)
		require.Error(t, err, bad)
	}
}

// TestRunCompress: the curve on stories260K, one low-rank and one calibrated 2:4 setting
// in both formats — every arm measured, the dense f32 model the reference (score 1),
// 2:4 reading fewer weight bytes, a speed-up with an interval for each setting, the
// recommendation and the report's Pruning section built from it; and the speed-only
// curve of a synthetic model.
func TestRunCompress(t *testing.T) {
	modelPath := shared.Path(t, "models", "stories260K", "stories260K.gguf")
	root := filepath.Dir(filepath.Dir(filepath.Dir(modelPath)))
	res, err := RunCompress(CompressConfig{ModelPath: modelPath, Settings: []string{"lowrank-e0.99-w", "2:4-wanda-ffn"}, Quality: true,
		Texts: DefaultTexts(root), Tokens: 512, Resamples: 200, Seed: 1, PromptLen: 16, DecodeLen: 4, Rounds: 3,
		Calib: compress.CalibOptions{Path: filepath.Join(root, "eval", "tinystories-train-prefix.txt"), Skip: 512, Tokens: 1024}}, nil)
	require.NoError(t, err)
	require.Len(t, res.Arms, 6)
	byName := map[string]*CompressArm{}
	for _, a := range res.Arms {
		byName[a.Name()] = a
		require.Len(t, a.Prefill, 3, a.Name())
		require.Len(t, a.Decode, 3, a.Name())
		require.NotNil(t, a.Quality, a.Name())
		require.Len(t, a.PerText, 3, a.Name())
		require.Positive(t, a.WeightBytes, a.Name())
		if a.Setting == "dense" {
			require.Nil(t, a.DecodeSpeedup)
			continue
		}
		require.NotNil(t, a.Compress, a.Name())
		require.NotNil(t, a.DecodeSpeedup, a.Name())
		require.NotNil(t, a.Quality.AccuracyRatioCI, a.Name())
		require.Less(t, a.Quality.AccuracyRatioCI.Lo, a.Quality.AccuracyRatioCI.Hi, a.Name())
		require.Equal(t, a.Keeps, a.Quality.AccuracyRatio >= 0.92, a.Name())
	}
	require.InDelta(t, 1, byName["dense/f32"].Quality.AccuracyRatio, 0)
	require.Less(t, byName["2:4-wanda-ffn/f32"].WeightBytes, byName["dense/f32"].WeightBytes)
	require.Less(t, byName["2:4-wanda-ffn/int8"].WeightBytes, byName["dense/int8"].WeightBytes)
	require.Less(t, byName["2:4-wanda-ffn/int8"].WeightBytes, byName["2:4-wanda-ffn/f32"].WeightBytes)
	require.Contains(t, res.Recommendation, "quality score = next-token accuracy")
	require.Contains(t, res.Recommendation, "2:4-wanda-ffn (f32 ")

	r := BuildReport("compress", "bench report --compress x", nil, nil, nil, nil)
	r.AddCompress(res)
	md := r.Markdown()
	for _, want := range []string{"### Pruning: low-rank factorization and 2:4 sparsity", "| lowrank-e0.99-w | int8 |", "stories-unseen (tinystories-valid-part.txt)",
		"**Recommendation (quality score", "compress-speed.svg", "Calibration (whitening, Wanda): 1024 tokens of tinystories-train-prefix.txt after its first 512"} {
		require.Contains(t, md, want)
	}
	require.True(t, strings.Contains(r.Summary[len(r.Summary)-1].Text, "Recommendation"))

	syn, err := RunCompress(CompressConfig{ModelPath: "synthetic:tiny", Settings: []string{"2:4-mag"}, Formats: []string{"int8"}, PromptLen: 8, DecodeLen: 2, Rounds: 2}, nil)
	require.NoError(t, err)
	require.Len(t, syn.Arms, 2)
	require.Nil(t, syn.Arms[1].Quality)
	require.Contains(t, syn.Recommendation, "Speed only")
	_, err = RunCompress(CompressConfig{ModelPath: modelPath, Settings: []string{"2:4-wanda"}}, nil)
	require.ErrorContains(t, err, "needs calibration text")
	_, err = RunCompress(CompressConfig{ModelPath: modelPath, Settings: []string{"2:4-mag"}, Formats: []string{"q4"}}, nil)
	require.ErrorContains(t, err, "format")
}
