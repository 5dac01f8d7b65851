package bench

import (
	"fmt"
	"math"
	"strings"
)

// Hand-written SVG charts: no dependencies, well-formed XML (every text escaped).

// Series is one named set of values, with optional error bars (Lo/Hi, same length).
type Series struct {
	Name   string
	Values []float64
	Lo, Hi []float64
}

var palette = []string{"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948"}

const (
	chartW, chartH                = 720, 400
	padL, padR, padTop, padBottom = 70, 20, 64, 70
)

// ChartOpts are a chart's optional parts.
type ChartOpts struct {
	// Subtitle goes under the title: what was measured on what (model, machine, load).
	Subtitle string
	// Log draws the y axis in powers of ten, so that values orders of magnitude apart
	// (a 60 ms TTFT beside a 0.1 ms inter-token latency) all show; bars start at the
	// axis' lowest decade and values <= 0 are left out, labelled "≤0".
	Log bool
}

func chartOpts(o []ChartOpts) ChartOpts {
	if len(o) > 0 {
		return o[0]
	}
	return ChartOpts{}
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		default:
			if r < 0x20 && r != '\t' && r != '\n' {
				continue // not allowed in XML 1.0
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// niceRange returns axis bounds covering [lo, hi] (0 included) and a tick step.
func niceRange(lo, hi float64) (float64, float64, float64) {
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi-lo <= 0 || math.IsNaN(hi-lo) || math.IsInf(hi-lo, 0) {
		return 0, 1, 0.25
	}
	raw := (hi - lo) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step, step
}

func fmtTick(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a >= 1:
		return fmt.Sprintf("%.4g", v)
	}
	return fmt.Sprintf("%.3g", v)
}

type svgDoc struct{ b strings.Builder }

func newSVG(title, subtitle, yLabel string) *svgDoc {
	d := &svgDoc{}
	fmt.Fprintf(&d.b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&d.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&d.b, `<rect x="0" y="0" width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&d.b, `<text x="%d" y="24" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", chartW/2, xmlEscape(title))
	if subtitle != "" {
		size := 11
		if n := len([]rune(subtitle)); n > 110 {
			size = max(8, 11*110/n)
		}
		fmt.Fprintf(&d.b, `<text x="%d" y="42" text-anchor="middle" font-size="%d" fill="#444">%s</text>`+"\n", chartW/2, size, xmlEscape(subtitle))
	}
	fmt.Fprintf(&d.b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", chartH/2, chartH/2, xmlEscape(yLabel))
	return d
}

// logAxis draws decade ticks (with 2 and 5 between when there are few decades) for a
// log y axis from lo to hi, both powers of ten.
func (d *svgDoc) logAxis(lo, hi float64, y func(float64) float64) {
	decades := int(math.Round(math.Log10(hi / lo)))
	for e := math.Log10(lo); e <= math.Log10(hi)+1e-9; e++ {
		base := math.Pow(10, math.Round(e))
		for _, m := range []float64{1, 2, 5} {
			v := base * m
			if v > hi*1.0001 || (m != 1 && decades > 3) {
				continue
			}
			stroke := "#ddd"
			if m != 1 {
				stroke = "#f0f0f0"
			}
			fmt.Fprintf(&d.b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>`+"\n", padL, chartW-padR, y(v), y(v), stroke)
			fmt.Fprintf(&d.b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(v)+4, xmlEscape(fmtTick(v)))
		}
	}
	fmt.Fprintf(&d.b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", padL, chartW-padR, y(lo), y(lo))
	fmt.Fprintf(&d.b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`+"\n", padL, padL, padTop, chartH-padBottom)
	fmt.Fprintf(&d.b, `<text x="%d" y="%d" text-anchor="start" font-size="10" fill="#666">log scale</text>`+"\n", padL+4, padTop-6)
}

// logRange is the decades [lo, hi] that hold the positive values of vs.
func logRange(vs []float64) (float64, float64) {
	mn, mx := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if finite(v) && v > 0 {
			mn, mx = math.Min(mn, v), math.Max(mx, v)
		}
	}
	if math.IsInf(mn, 1) {
		return 0.1, 1
	}
	// The lowest decade sits at least a factor 3 below the smallest value, so its bar
	// stands out from the axis.
	lo, hi := math.Pow(10, math.Floor(math.Log10(mn/3))), math.Pow(10, math.Ceil(math.Log10(mx)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

// valueLabel writes v above (or, for a negative bar, below) a bar or point at x.
func (d *svgDoc) valueLabel(x, yTop float64, v float64, below bool) {
	ty := yTop - 4
	if below {
		ty = yTop + 12
	}
	fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#222">%s</text>`+"\n", x, ty, xmlEscape(fmtTick(v)))
}

func (d *svgDoc) yAxis(lo, hi, step float64, y func(float64) float64) {
	for i := 0; lo+float64(i)*step <= hi+step/2; i++ {
		v := lo + float64(i)*step
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		fmt.Fprintf(&d.b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", padL, chartW-padR, y(v), y(v))
		fmt.Fprintf(&d.b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(v)+4, xmlEscape(fmtTick(v)))
	}
	fmt.Fprintf(&d.b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#333"/>`+"\n", padL, chartW-padR, y(0), y(0))
	fmt.Fprintf(&d.b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#333"/>`+"\n", padL, padL, padTop, chartH-padBottom)
}

func (d *svgDoc) legend(series []Series) {
	x := padL
	for i, s := range series {
		fmt.Fprintf(&d.b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/>`+"\n", x, chartH-22, palette[i%len(palette)])
		fmt.Fprintf(&d.b, `<text x="%d" y="%d">%s</text>`+"\n", x+16, chartH-12, xmlEscape(s.Name))
		x += 24 + 7*len([]rune(s.Name))
	}
}

func (d *svgDoc) String() string { return d.b.String() + "</svg>\n" }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// BarChart draws grouped bars: one group per label, one bar per series, each labelled
// with its value.
func BarChart(title, yLabel string, groups []string, series []Series, opts ...ChartOpts) string {
	o := chartOpts(opts)
	if o.Log {
		return logBarChart(title, yLabel, groups, series, o)
	}
	lo, hi := 0.0, 0.0
	for _, s := range series {
		for i, v := range s.Values {
			if finite(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			if i < len(s.Lo) && finite(s.Lo[i]) {
				lo = math.Min(lo, s.Lo[i])
			}
			if i < len(s.Hi) && finite(s.Hi[i]) {
				hi = math.Max(hi, s.Hi[i])
			}
		}
	}
	lo, hi, step := niceRange(lo, hi)
	plotH := float64(chartH - padTop - padBottom)
	y := func(v float64) float64 { return float64(padTop) + (hi-v)/(hi-lo)*plotH }
	d := newSVG(title, o.Subtitle, yLabel)
	d.yAxis(lo, hi, step, y)
	gw := float64(chartW-padL-padR) / float64(max(1, len(groups)))
	bw := gw * 0.8 / float64(max(1, len(series)))
	// Labels wider than their group (about 6.5 px a character) are slanted.
	slant := false
	for _, label := range groups {
		slant = slant || 6.5*float64(len([]rune(label))) > gw
	}
	for g, label := range groups {
		gx := float64(padL) + float64(g)*gw
		if slant {
			fmt.Fprintf(&d.b, `<text x="%.1f" y="%d" text-anchor="end" font-size="10" transform="rotate(-25 %.1f %d)">%s</text>`+"\n",
				gx+gw/2, chartH-padBottom+12, gx+gw/2, chartH-padBottom+12, xmlEscape(label))
		} else {
			fmt.Fprintf(&d.b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+gw/2, chartH-padBottom+16, xmlEscape(label))
		}
		for si, s := range series {
			if g >= len(s.Values) || !finite(s.Values[g]) {
				continue
			}
			v := s.Values[g]
			x := gx + gw*0.1 + float64(si)*bw
			top, bot := y(math.Max(v, 0)), y(math.Min(v, 0))
			fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
				x, top, bw*0.95, math.Max(bot-top, 0.5), palette[si%len(palette)], xmlEscape(s.Name), xmlEscape(fmtTick(v)))
			cx := x + bw*0.475
			labelAt := top
			if v < 0 {
				labelAt = bot
			}
			if g < len(s.Lo) && g < len(s.Hi) && finite(s.Lo[g]) && finite(s.Hi[g]) {
				fmt.Fprintf(&d.b, `<path d="M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f" stroke="#222" fill="none"/>`+"\n",
					cx, y(s.Lo[g]), y(s.Hi[g]), cx-4, y(s.Lo[g]), cx+4, cx-4, y(s.Hi[g]), cx+4)
				if v >= 0 {
					labelAt = math.Min(labelAt, y(s.Hi[g]))
				} else {
					labelAt = math.Max(labelAt, y(s.Lo[g]))
				}
			}
			d.valueLabel(cx, labelAt, v, v < 0)
		}
	}
	d.legend(series)
	return d.String()
}

// logBarChart is BarChart on a log axis.
func logBarChart(title, yLabel string, groups []string, series []Series, o ChartOpts) string {
	var all []float64
	for _, s := range series {
		all = append(append(append(all, s.Values...), s.Lo...), s.Hi...)
	}
	lo, hi := logRange(all)
	plotH := float64(chartH - padTop - padBottom)
	y := func(v float64) float64 {
		return float64(padTop) + (math.Log10(hi)-math.Log10(v))/(math.Log10(hi)-math.Log10(lo))*plotH
	}
	d := newSVG(title, o.Subtitle, yLabel)
	d.logAxis(lo, hi, y)
	gw := float64(chartW-padL-padR) / float64(max(1, len(groups)))
	bw := gw * 0.8 / float64(max(1, len(series)))
	for g, label := range groups {
		gx := float64(padL) + float64(g)*gw
		fmt.Fprintf(&d.b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+gw/2, chartH-padBottom+16, xmlEscape(label))
		for si, s := range series {
			if g >= len(s.Values) || !finite(s.Values[g]) {
				continue
			}
			v := s.Values[g]
			x := gx + gw*0.1 + float64(si)*bw
			cx := x + bw*0.475
			if v <= 0 {
				fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10" fill="#222">≤0</text>`+"\n", cx, y(lo)-4)
				continue
			}
			top, bot := y(v), y(lo)
			fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
				x, top, bw*0.95, math.Max(bot-top, 0.5), palette[si%len(palette)], xmlEscape(s.Name), xmlEscape(fmtTick(v)))
			d.valueLabel(cx, top, v, false)
		}
	}
	d.legend(series)
	return d.String()
}

// LineChart draws one line per series over numeric x values (drawn at even spacing,
// labelled with their values: concurrency 1, 4, 16 reads better evenly spaced).
func LineChart(title, xLabel, yLabel string, xs []float64, series []Series, opts ...ChartOpts) string {
	o := chartOpts(opts)
	hi := 0.0
	for _, s := range series {
		for _, v := range s.Values {
			if finite(v) {
				hi = math.Max(hi, v)
			}
		}
	}
	lo, hi, step := niceRange(0, hi)
	plotH := float64(chartH - padTop - padBottom)
	y := func(v float64) float64 { return float64(padTop) + (hi-v)/(hi-lo)*plotH }
	d := newSVG(title, o.Subtitle, yLabel)
	d.yAxis(lo, hi, step, y)
	plotW := float64(chartW - padL - padR)
	x := func(i int) float64 {
		if len(xs) == 1 {
			return float64(padL) + plotW/2
		}
		return float64(padL) + 30 + float64(i)*(plotW-60)/float64(len(xs)-1)
	}
	for i, v := range xs {
		fmt.Fprintf(&d.b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), chartH-padBottom+16, xmlEscape(fmtTick(v)))
	}
	fmt.Fprintf(&d.b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+int(plotW/2), chartH-padBottom+34, xmlEscape(xLabel))
	for si, s := range series {
		var pts []string
		for i, v := range s.Values {
			if i < len(xs) && finite(v) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
			}
		}
		c := palette[si%len(palette)]
		fmt.Fprintf(&d.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), c)
		for i, v := range s.Values {
			if i < len(xs) && finite(v) {
				fmt.Fprintf(&d.b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s: %s</title></circle>`+"\n", x(i), y(v), c, xmlEscape(s.Name), xmlEscape(fmtTick(v)))
				d.valueLabel(x(i), y(v)-2, v, false)
			}
		}
	}
	d.legend(series)
	return d.String()
}
