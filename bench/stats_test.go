package bench

import (
	"encoding/xml"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPercentile(t *testing.T) {
	// NumPy's default (linear) percentiles.
	xs := []float64{4, 1, 3, 2}
	require.InDelta(t, 2.5, Percentile(xs, 50), 1e-12)
	require.InDelta(t, 3.7, Percentile(xs, 90), 1e-12)
	require.InDelta(t, 3.97, Percentile(xs, 99), 1e-12)
	require.Equal(t, []float64{4, 1, 3, 2}, xs, "input untouched")
	d := NewDist([]float64{5})
	require.Equal(t, Dist{N: 1, Mean: 5, Min: 5, P50: 5, P90: 5, P99: 5, Max: 5}, d)
	require.True(t, math.IsNaN(Percentile(nil, 50)))
	require.Equal(t, Dist{}, NewDist(nil))
}

func TestBootstrap(t *testing.T) {
	// A shift of 1 with noise of 0.1 is significant; a zero-mean sample is not.
	a := make([]float64, 200)
	b := make([]float64, 200)
	for i := range a {
		a[i] = math.Sin(float64(i)) * 0.1
		b[i] = 1 + math.Cos(float64(i))*0.1
	}
	mean := func(x []float64) float64 { return NewDist(x).Mean }
	iv := BootstrapDiff(a, b, 500, 1, mean)
	require.True(t, iv.Significant())
	require.InDelta(t, 1, iv.Value, 0.05)
	require.Less(t, iv.Lo, iv.Value)
	require.Greater(t, iv.Hi, iv.Value)
	paired := Bootstrap(len(a), 500, 1, func(idx []int) float64 {
		s := 0.0
		for _, i := range idx {
			s += a[i]
		}
		return s / float64(len(idx))
	})
	require.False(t, paired.Significant())
	require.Equal(t, paired, Bootstrap(len(a), 500, 1, func(idx []int) float64 {
		s := 0.0
		for _, i := range idx {
			s += a[i]
		}
		return s / float64(len(idx))
	}), "seeded")
}

func TestCharts(t *testing.T) {
	svg := BarChart(`a <"b"> & c`, "ms", []string{"x&y", "z"}, []Series{{Name: "p50", Values: []float64{-0.3, 0.5}, Lo: []float64{-0.6, 0.1}, Hi: []float64{0.1, 0.9}}, {Name: "n/a", Values: []float64{math.NaN(), 1}}})
	require.NotContains(t, svg, "e-17")
	require.Contains(t, svg, `a &lt;&quot;b&quot;&gt; &amp; c`)
	require.Contains(t, svg, ">0<")
	line := LineChart("t", "concurrency", "tokens/s", []float64{1, 4, 16}, []Series{{Name: "out", Values: []float64{1, 2, math.Inf(1)}}})
	require.Contains(t, line, "<polyline")
	for _, s := range []string{svg, line, BarChart("empty", "", nil, nil)} {
		d := xml.NewDecoder(strings.NewReader(s))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
		}
	}
}
