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
	for _, want := range []string{"### Pruning: low-rank factorization and 2:4 sparsity", "| lowrank-e0.99-w | int8 |", "stories-unseen (tinystories-valid-part.txt)", "paired bootstrap 95% CIs over windows):", ", agreement ",
		"**Recommendation (quality score", "compress-speed.svg", "Calibration (whitening, Wanda): 1024 tokens of tinystories-train-prefix.txt after its first 512"} {
		require.Contains(t, md, want)
	}
	require.True(t, strings.Contains(r.Summary[len(r.Summary)-1].Text, "Recommendation"))
	// Per category, every number with its CI.
	require.Regexp(t, `\| ppl [0-9.]+ \([+-][0-9.]+% \[[+-][0-9.]+, [+-][0-9.]+\]\), agreement [0-9.]+% \[[0-9.]+, [0-9.]+\], score [0-9.]+% \[[0-9.]+, [0-9.]+\] \|`, md)

	syn, err := RunCompress(CompressConfig{ModelPath: "synthetic:tiny", Settings: []string{"2:4-mag"}, Formats: []string{"int8"}, PromptLen: 8, DecodeLen: 2, Rounds: 2}, nil)
	require.NoError(t, err)
	require.Len(t, syn.Arms, 2)
	require.Nil(t, syn.Arms[1].Quality)
	require.Contains(t, syn.Recommendation, "Speed only")
	rs := BuildReport("compress", "bench report --compress y", nil, nil, nil, nil)
	rs.AddCompress(syn)
	require.Contains(t, rs.Markdown(), "each runs with int8 weights (each factor")
	require.NotContains(t, rs.Markdown(), "with f32 weights")
	_, err = RunCompress(CompressConfig{ModelPath: modelPath, Settings: []string{"2:4-wanda"}}, nil)
	require.ErrorContains(t, err, "needs calibration text")
	_, err = RunCompress(CompressConfig{ModelPath: modelPath, Settings: []string{"2:4-mag"}, Formats: []string{"q4"}}, nil)
	require.ErrorContains(t, err, "format")
}

// TestCompressRecommendation: the recommendation from hand-made measurements — a
// setting keeps the bar only when every format does, a score whose CI straddles the
// bar is marked, a setting that compressed nothing is set apart, and the speed-up is
// the median of per-round ratios (round 2's slow machine cancels out).
func TestCompressRecommendation(t *testing.T) {
	q := func(v, lo, hi float64) *Metrics {
		return &Metrics{AccuracyRatio: v, AccuracyRatioCI: &Interval{Value: v, Lo: lo, Hi: hi}}
	}
	rep := func(stored int64) *compress.Report { return &compress.Report{StoredParam: stored, DenseParams: 100} }
	res := &CompressResult{Config: CompressConfig{Quality: true, Threshold: 0.92, Resamples: 200, Seed: 1}}
	dense := []float64{100, 100, 50, 100}
	fast := []float64{150, 150, 75, 150} // 1.5x in every round
	res.Arms = []*CompressArm{
		{Setting: "dense", Format: "f32", Decode: dense, Prefill: dense, Quality: q(1, 1, 1), Keeps: true},
		{Setting: "dense", Format: "int8", Decode: dense, Prefill: dense, Quality: q(0.999, 0.997, 1.001), Keeps: true},
		{Setting: "a", Format: "f32", Decode: fast, Prefill: dense, Quality: q(0.95, 0.94, 0.96), Keeps: true, Compress: rep(90)},
		{Setting: "a", Format: "int8", Decode: fast, Prefill: dense, Quality: q(0.925, 0.915, 0.935), Keeps: true, Compress: rep(90)},
		{Setting: "b", Format: "f32", Decode: dense, Prefill: dense, Quality: q(0.93, 0.92, 0.94), Keeps: true, Compress: rep(50)},
		{Setting: "b", Format: "int8", Decode: dense, Prefill: dense, Quality: q(0.91, 0.90, 0.92), Keeps: false, Compress: rep(50)},
		{Setting: "c", Format: "f32", Decode: dense, Prefill: dense, Quality: q(1, 1, 1), Keeps: true, Compress: rep(100)},
		{Setting: "c", Format: "int8", Decode: dense, Prefill: dense, Quality: q(1, 1, 1), Keeps: true, Compress: rep(100)},
	}
	res.speedups()
	require.InDelta(t, 1.5, res.Arms[2].DecodeSpeedup.Value, 1e-12)
	require.InDelta(t, 1.5, res.Arms[2].DecodeSpeedup.Lo, 1e-12) // paired: the slow round is no noise
	require.InDelta(t, 1.5, res.Arms[2].DecodeSpeedup.Hi, 1e-12)
	s := res.recommend()
	require.Contains(t, s, "1 setting keeps it — a (score f32 95.0% [94.0–96.0], int8 92.5% [91.5–93.5]; the CI straddles the bar; 90.0% of the block weights; decode 1.50x f32, 1.50x int8")
	require.Contains(t, s, "The best decode speed-up among them is 1.50x.")
	require.Contains(t, s, "Below the bar: b (f32 93.0% [92.0–94.0], int8 91.0% [90.0–92.0]; the CI straddles the bar).")
	require.Contains(t, s, "Compressing nothing on this model (every matrix stayed dense: the rule asked for a rank above the break-even): c.")
	require.Contains(t, s, "int8 alone scores 99.9%")
}
