package bench

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/quantize"
)

// quantizedStories writes stories260K as a GGUF file of type typ (the 172-wide
// ffn_down matrices, which no 32-value block fits, F16) and returns its path.
func quantizedStories(t *testing.T, typ string) string {
	t.Helper()
	tg, err := quantize.ParseTarget(typ)
	require.NoError(t, err)
	out := filepath.Join(t.TempDir(), "stories260K-"+typ+".gguf")
	_, err = quantize.Run(shared.Path(t, "models", "stories260K", "stories260K.gguf"), out, quantize.Options{Type: tg, F16Fallback: true, Threads: 1})
	require.NoError(t, err)
	return out
}

// TestQualityAuditFiles: other files of the same model audit as variants of their own
// (their block types native, and dequantized to f32 with --files-deq), every result
// under its own name, and the report's "quality retained against throughput gained"
// table joins them with the decode speeds of a weight comparison of the same names.
func TestQualityAuditFiles(t *testing.T) {
	golden := shared.Path(t, "golden", "nll.json")
	root := filepath.Dir(filepath.Dir(golden))
	q4 := quantizedStories(t, "q4_0")
	res, err := RunQuality(QualityConfig{ModelPath: shared.Path(t, "models", "stories260K", "stories260K.gguf"), Texts: DefaultTexts(root)[:1],
		Tokens: 768, Resamples: 200, Seed: 1, Threads: 1, Files: []QualityFile{{Name: "q4_0", Path: q4}}, Dequantized: true, W4A16: true})
	require.NoError(t, err)
	var names []string
	for _, m := range res.Overall {
		names = append(names, m.Variant)
	}
	require.Equal(t, []string{"f32", "int8", "int8+f32emb", "q8_0", "q4_0", "q4_0 deq-f32", "q4_0 w4a16"}, names)
	types := map[string]string{}
	for _, v := range res.Variants {
		types[v.Name] = v.WeightTypes
	}
	require.Equal(t, "q4_0 ×31, q8_0 ×1, f32 ×5", types["q4_0"], "32 matrices native (the classifier Q8_0), the F16 ffn_down f32")
	require.Equal(t, "f32 ×37", types["q4_0 deq-f32"])
	// W4A16 as the CUDA backend keeps it: the 30 Q4_0 layer matrices at their exact
	// values (f32 here), the Q4_0 embedding and the Q8_0 classifier int8, the F16
	// ffn_down f32.
	require.Equal(t, "int8 ×2, f32 ×35", types["q4_0 w4a16"])
	byName := map[string]Metrics{}
	for _, m := range res.Overall {
		byName[m.Variant] = m
	}
	deq, w4 := byName["q4_0 deq-f32"], byName["q4_0 w4a16"]
	t.Logf("perplexity: q4_0 deq-f32 %.4f, q4_0 w4a16 %.4f, int8 %.4f; top-1 agreement with f32 %.4f, %.4f",
		deq.Perplexity, w4.Perplexity, byName["int8"].Perplexity, deq.Agreement.Value, w4.Agreement.Value)
	require.InEpsilon(t, deq.Perplexity, w4.Perplexity, 0.02, "W4A16's weights cost what the file's own do, plus an int8 embedding and classifier")
	for _, m := range res.Overall[4:] {
		require.Greater(t, m.Agreement.Value, 0.5, m.Variant)
		require.Less(t, m.Agreement.Value, 1.0, m.Variant)
	}

	w, err := RunWeightConfigs(context.Background(), WeightConfig{Model: ModelSpec{Path: shared.Path(t, "models", "stories260K", "stories260K.gguf"), Threads: 1},
		Formats: []string{"f32", "q4_0=" + q4}, NumPrompts: 2, InputLen: 8, OutputLen: 4, Rounds: 2, Resamples: 100}, nil)
	require.NoError(t, err)
	require.Equal(t, "q4_0", w.Formats[1].Format)
	require.Equal(t, q4, w.Formats[1].Model.Path)
	require.Less(t, w.Formats[1].WeightBytes, w.Formats[0].WeightBytes/2)
	_, err = RunWeightConfigs(context.Background(), WeightConfig{Model: ModelSpec{Path: q4}, Formats: []string{"=x"}}, nil)
	require.ErrorContains(t, err, "want NAME=PATH")

	md := BuildReport("t", "bench report", nil, res, nil, w).Markdown()
	require.Contains(t, md, "## Quality retained against throughput gained")
	var row string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| q4_0 | q4_0 ×31") {
			row = l
		}
	}
	require.NotEmpty(t, row, md)
	require.Contains(t, row, "x (", "the decode speed against f32 from the weight comparison")
}
