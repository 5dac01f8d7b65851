package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// TestTTFTConfigs runs a scaled-down mixed workload through the three prefill
// configurations and reports them, with every chart well-formed.
func TestTTFTConfigs(t *testing.T) {
	cfg := TTFTConfig{Model: ModelSpec{Path: "synthetic:tiny", Weights: "int8", Threads: 1}, LongLen: 200, ShortLen: 8, Shorts: 4,
		Interval: 5 * time.Millisecond, OutputLen: 4, Lanes: 2, Repeats: 3, Resamples: 200, Seed: 1}
	res, err := RunTTFTConfigs(context.Background(), cfg, func(string) *Progress { return nil })
	require.NoError(t, err)
	require.Len(t, res.Configs, 3)
	require.Equal(t, []string{"1-lane-unchunked", "1-lane-chunked", "2-lanes-chunked"},
		[]string{res.Configs[0].Name, res.Configs[1].Name, res.Configs[2].Name})
	for _, c := range res.Configs {
		require.Zero(t, c.Failed)
		require.Len(t, c.Runs, 3)
		require.Equal(t, 4*3, c.ShortTTFTms.N)
		require.Equal(t, 3, c.LongTTFTms.N)
		require.Equal(t, 5*3*3, c.ITLms.N, "3 gaps per request")
		var short []float64
		for _, run := range c.Runs {
			require.Equal(t, 200, run[0].PromptTokens)
			for _, r := range run[1:] {
				short = append(short, r.TTFTms)
			}
		}
		requireDist(t, c.Name+" short TTFT", short, c.ShortTTFTms)
	}
	require.Len(t, res.Comparisons, 10)
	for _, c := range res.Comparisons {
		require.Equal(t, "2-lanes-chunked", c.Config)
		require.LessOrEqual(t, c.Diff.Lo, c.Diff.Hi)
	}
	dir := t.TempDir()
	_, err = WriteReport(BuildReport("ttft", "go test", nil, nil, res, nil), dir, "report")
	require.NoError(t, err)
	r := readReport(t, dir)
	requireSVGs(t, dir, r)
	require.Equal(t, res.Configs[2].ShortTTFTms.P50, r.Summary[0].Value)
	svg, err := os.ReadFile(filepath.Join(dir, "report-ttft-configs.svg"))
	require.NoError(t, err)
	for _, want := range []string{"ITL p99", "short TTFT p99", "log scale", "synthetic:tiny, int8 ×", res.Host.Machine()} {
		require.Contains(t, string(svg), want)
	}
	require.Len(t, res.Host.LoadAvg, 2, "the load average at the start and the end")

	// In a report about another model, the prefill section says whose numbers it has.
	md := BuildReport("stories260K", "go test", &LoadResult{Model: &ModelInfo{ModelSpec: ModelSpec{Path: "models/stories260K.bin"}}}, nil, res, nil).Markdown()
	require.Contains(t, md, "**This section measures synthetic:tiny, not models/stories260K.bin as the rest of this report** (random weights, dim 256, 4 layers, context 2048")
	require.Contains(t, md, "Mixed workload on synthetic:tiny (one 200-token prompt")
}

// TestWeightConfigs measures f32 against int8 on stories260K.
func TestWeightConfigs(t *testing.T) {
	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	res, err := RunWeightConfigs(context.Background(), WeightConfig{Model: ModelSpec{Path: path, Threads: 1}, Formats: []string{"f32", "int8"},
		NumPrompts: 4, InputLen: 16, OutputLen: 8, Resamples: 200}, func(string) *Progress { return nil })
	require.NoError(t, err)
	require.Len(t, res.Formats, 2)
	require.Greater(t, res.Formats[0].WeightBytes, 2*res.Formats[1].WeightBytes, "int8 weights are under half of f32")
	for _, f := range res.Formats {
		require.Len(t, f.Runs, 3, "rounds")
		require.Equal(t, 4, f.Summary.Completed, "4 prompts over 3 rounds")
		require.Equal(t, 4, f.DecodeTokS.N)
	}
	require.Len(t, res.Comparisons, 1)
	_, err = RunWeightConfigs(context.Background(), WeightConfig{Model: ModelSpec{Path: path}, Formats: []string{"fp4"}}, nil)
	require.ErrorContains(t, err, "unknown weight format")
}
