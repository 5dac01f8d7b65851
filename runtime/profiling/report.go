package profiling

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is a snapshot in short: every op's total over the series and its share of
// the steps' time, largest first, and each series' steps.
type Summary struct {
	Steps  int64 `json:"steps"`
	StepNs int64 `json:"step_ns"`
	OpNs   int64 `json:"op_ns"`
	// Share is OpNs / StepNs: the part of the steps' time the ops account for.
	Share  float64         `json:"share"`
	Ops    []OpTotal       `json:"ops"`
	Series []SeriesSummary `json:"series"`
}

// OpTotal is one op summed over layers and series.
type OpTotal struct {
	Op    string  `json:"op"`
	Ns    int64   `json:"ns"`
	Calls int64   `json:"calls"`
	Share float64 `json:"share"` // of the steps' time
}

// SeriesSummary is one series' totals.
type SeriesSummary struct {
	Model  string `json:"model"`
	Labels Labels `json:"labels"`
	Steps  int64  `json:"steps"`
	StepNs int64  `json:"step_ns"`
	OpNs   int64  `json:"op_ns"`
}

// Summary sums the snapshot per op.
func (s *Snapshot) Summary() Summary {
	var sum Summary
	byOp := map[string]*OpTotal{}
	for _, se := range s.Series {
		ss := SeriesSummary{Model: se.Model, Labels: se.Labels, Steps: se.Steps, StepNs: se.StepNs}
		for _, o := range se.Ops {
			t := byOp[o.Op]
			if t == nil {
				t = &OpTotal{Op: o.Op}
				byOp[o.Op] = t
			}
			t.Ns += o.Ns
			t.Calls += o.Calls
			ss.OpNs += o.Ns
		}
		sum.Steps += se.Steps
		sum.StepNs += se.StepNs
		sum.OpNs += ss.OpNs
		sum.Series = append(sum.Series, ss)
	}
	for _, t := range byOp {
		if sum.StepNs > 0 {
			t.Share = float64(t.Ns) / float64(sum.StepNs)
		}
		sum.Ops = append(sum.Ops, *t)
	}
	slices.SortFunc(sum.Ops, func(a, b OpTotal) int {
		if a.Ns != b.Ns {
			if a.Ns > b.Ns {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Op, b.Op)
	})
	if sum.StepNs > 0 {
		sum.Share = float64(sum.OpNs) / float64(sum.StepNs)
	}
	return sum
}

// WriteText writes the summary as text: the totals, the top n ops (n <= 0: all) with
// their share of step time, calls and time per call, then each series' steps.
func (s *Snapshot) WriteText(w io.Writer, n int) error {
	sum := s.Summary()
	var b strings.Builder
	fmt.Fprintf(&b, "Op profile (%s backend, window %s): %d steps, step time %s; the ops account for %s, %.1f%% of it.\n",
		orDash(s.Backend), s.Duration.Round(time.Millisecond), sum.Steps, fmtNs(sum.StepNs), fmtNs(sum.OpNs), 100*sum.Share)
	if sum.Steps == 0 {
		b.WriteString("No pass ran in the window.\n")
	}
	for _, e := range s.Errors {
		fmt.Fprintf(&b, "Timing error (those passes are left out): %s\n", e)
	}
	if len(sum.Ops) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "op\ttime\tshare of step time\tcalls\tper call\t")
		ops := sum.Ops
		if n > 0 && len(ops) > n {
			ops = ops[:n]
		}
		for _, o := range ops {
			fmt.Fprintf(tw, "%s\t%s\t%.1f%%\t%d\t%s\t\n", o.Op, fmtNs(o.Ns), 100*o.Share, o.Calls, fmtNs(o.Ns/max(o.Calls, 1)))
		}
		tw.Flush()
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "model\tmode\tphase\tbucket\tclass\tsteps\tper step\tops\t")
		for _, se := range sum.Series {
			share := 0.0
			if se.StepNs > 0 {
				share = 100 * float64(se.OpNs) / float64(se.StepNs)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%.1f%%\t\n", se.Model, se.Labels.Mode, se.Labels.Phase, se.Labels.Bucket,
				orDash(se.Labels.Class), se.Steps, fmtNs(se.StepNs/max(se.Steps, 1)), share)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtNs formats nanoseconds with a unit that keeps three or four digits.
func fmtNs(ns int64) string {
	d := float64(ns)
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.3f s", d/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", d/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", d/1e3)
	}
	return fmt.Sprintf("%d ns", ns)
}
