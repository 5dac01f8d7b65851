package bench

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// TestQualityAudit runs the audit on stories260K: the nll.json protocol row for the
// float model within 0.5%, at least 8,192 scored tokens per text in strided windows,
// and a confidence interval on every delta. Under -race or -short it scores 768
// tokens per text (the race detector makes the forward pass ten times slower).
func TestQualityAudit(t *testing.T) {
	tokens := 8192
	if raceEnabled || testing.Short() {
		tokens = 768
	}
	modelPath := shared.Path(t, "models", "stories260K", "stories260K.bin")
	golden := shared.Path(t, "golden", "nll.json")
	root := filepath.Dir(filepath.Dir(golden))
	res, err := RunQuality(QualityConfig{ModelPath: modelPath, Texts: DefaultTexts(root), Tokens: tokens, Resamples: 1000, Seed: 1, GoldenPath: golden, Threads: 1})
	require.NoError(t, err)

	require.Equal(t, 512, res.Config.Context)
	require.Equal(t, 256, res.Config.Stride)
	var names []string
	for _, v := range res.Variants {
		names = append(names, v.Name)
		if !v.Available {
			require.Contains(t, v.Reason, "not available")
		}
	}
	require.Equal(t, []string{"f32", "int8", "int8+f32emb", "q8_0", "pruning"}, names)

	require.Len(t, res.Texts, 3)
	for _, tq := range res.Texts {
		require.Equal(t, tokens, tq.Tokens, tq.Name)
		require.GreaterOrEqual(t, tq.Windows, (tokens-511)/256+1, tq.Name)
		require.Len(t, tq.Results, 4)
		for i, m := range tq.Results {
			require.Equal(t, tokens, m.Positions, "%s %s: every token scored once", tq.Name, m.Variant)
			require.False(t, math.IsNaN(m.Perplexity))
			if i == 0 {
				require.Nil(t, m.DeltaNLL)
				continue
			}
			for _, iv := range []*Interval{m.DeltaNLL, m.DeltaAccuracy, m.Agreement, m.PerplexityChange} {
				require.NotNil(t, iv)
				require.LessOrEqual(t, iv.Lo, iv.Value+1e-12, "%s %s", tq.Name, m.Variant)
				require.GreaterOrEqual(t, iv.Hi, iv.Value-1e-12, "%s %s", tq.Name, m.Variant)
			}
			require.Less(t, m.Agreement.Hi, 1.0+1e-12)
			if !m.DeltaNLL.Significant() && !m.DeltaAccuracy.Significant() {
				require.Equal(t, "no measurable change", m.Verdict)
			} else {
				require.NotEqual(t, "no measurable change", m.Verdict)
			}
			t.Logf("%s %s: ppl %.4f (ref %.4f) Δnll %+.5f [%+.5f,%+.5f] agreement %.4f [%.4f,%.4f] — %s", tq.Name, m.Variant,
				m.Perplexity, tq.Results[0].Perplexity, m.DeltaNLL.Value, m.DeltaNLL.Lo, m.DeltaNLL.Hi, m.Agreement.Value, m.Agreement.Lo, m.Agreement.Hi, m.Verdict)
		}
	}

	// The protocol check reproduces nll.json's fp64 column for the float model.
	data, err := os.ReadFile(golden)
	require.NoError(t, err)
	var g map[string]map[string]goldenColumn
	require.NoError(t, json.Unmarshal(data, &g))
	fp := 0
	for _, r := range res.Protocol {
		require.True(t, r.Pass, "%s %s: perplexity %.5f vs golden %.5f", r.Text, r.Variant, r.Perplexity, r.GoldenPerplexity)
		if r.Variant == "f32" {
			fp++
			want := g[r.Text]["fp64"]
			require.InEpsilon(t, want.Perplexity, r.Perplexity, 0.005, r.Text)
			require.InDelta(t, want.Accuracy, r.Accuracy, 1.5/256, r.Text)
		}
	}
	require.Equal(t, 3, fp)
}
