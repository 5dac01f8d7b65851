package bench

import (
	"encoding/xml"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// bars parses a chart's bars: series name → value → height in pixels.
func bars(t *testing.T, svg string) map[string]float64 {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(svg))
	out := map[string]float64{}
	var h float64
	inRect := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Local == "rect" {
				for _, a := range e.Attr {
					if a.Name.Local == "height" {
						h, _ = strconv.ParseFloat(a.Value, 64)
					}
				}
				inRect = true
			}
		case xml.CharData:
			if inRect && strings.Contains(string(e), ": ") {
				out[string(e)] = h
			}
		case xml.EndElement:
			if e.Name.Local == "rect" {
				inRect = false
			}
		}
	}
}

// TestLogChartShowsSmallBars: on a log axis a 0.09 ms ITL beside a 66 ms TTFT is a bar
// of tens of pixels (on a linear axis it would be a fraction of one); every bar carries
// its value; the subtitle (model, machine) is drawn.
func TestLogChartShowsSmallBars(t *testing.T) {
	ser := []Series{{Name: "p50", Values: []float64{66.3, 0.09, 0.1, 228.1}}, {Name: "p99", Values: []float64{73.5, 7.95, 1.83, 241.5}}}
	groups := []string{"TTFT", "ITL", "TPOT", "E2E"}
	lin := bars(t, BarChart("Latency", "ms", groups, ser))
	log := BarChart("Latency", "ms", groups, ser, ChartOpts{Subtitle: "stories260K.bin, f32 ×36 | 2 CPUs, load average 1.9", Log: true})
	lg := bars(t, log)
	require.Less(t, lin["p50: 0.09"], 1.0, "linear: the ITL bar is invisible")
	require.Greater(t, lg["p50: 0.09"], 20.0, "log: it shows")
	require.Greater(t, lg["p50: 66.3"], lg["p99: 7.95"])
	require.Contains(t, log, "log scale")
	require.Contains(t, log, ">stories260K.bin, f32 ×36 | 2 CPUs, load average 1.9</text>")
	for _, v := range []string{"66.3", "0.09", "0.1", "228.1", "73.5", "7.95", "1.83", "241.5"} {
		require.Regexp(t, regexp.MustCompile(`font-size="10" fill="#222">`+regexp.QuoteMeta(v)+`</text>`), log, "value label %s", v)
	}
	lin2 := BarChart("Latency", "ms", groups, ser)
	require.Regexp(t, `font-size="10" fill="#222">66.3</text>`, lin2, "linear charts are labelled too")
	line := LineChart("t", "concurrency", "tokens/s", []float64{1, 4}, []Series{{Name: "out", Values: []float64{6100.7, 8358}}}, ChartOpts{Subtitle: "m | machine"})
	require.Contains(t, line, `fill="#222">6101</text>`)
	require.Contains(t, line, `fill="#222">8358</text>`)
	// Non-positive values have no bar on a log axis but say so.
	z := BarChart("z", "ms", []string{"a"}, []Series{{Name: "s", Values: []float64{0}}}, ChartOpts{Log: true})
	require.Contains(t, z, "≤0")
}
