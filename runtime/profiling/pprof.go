package profiling

import (
	"fmt"
	"io"
	"strconv"

	"github.com/google/pprof/profile"
)

// Sample types of a profile: the op's device time and how many times it ran.
const (
	SampleDeviceNs = "device-ns"
	SampleCalls    = "calls"
)

// Label keys of a profile's samples.
const (
	LabelPhase  = "phase"
	LabelBucket = "bucket"
	LabelClass  = "class"
	LabelMode   = "mode"
)

// Profile is the snapshot as a pprof profile: one sample per op, layer and series,
// with values [device-ns, calls] and the stack op ← layer ← model (op ← model for the
// ops outside the layer stack and for graph replays), labelled phase, bucket, mode and
// (when set) class. `go tool pprof -top` lists the ops by device time; `-http` draws
// the flame graph; `-tagfocus phase=decode` keeps the decode passes.
func (s *Snapshot) Profile() *profile.Profile {
	p := &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: SampleDeviceNs, Unit: "nanoseconds"}, {Type: SampleCalls, Unit: "count"}},
		DefaultSampleType: SampleDeviceNs,
		PeriodType:        &profile.ValueType{Type: SampleDeviceNs, Unit: "nanoseconds"},
		Period:            1,
		DurationNanos:     int64(s.Duration),
	}
	if !s.Start.IsZero() {
		p.TimeNanos = s.Start.UnixNano()
	}
	funcs := map[string]*profile.Function{}
	fn := func(name string) *profile.Function {
		f := funcs[name]
		if f == nil {
			f = &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name}
			funcs[name] = f
			p.Function = append(p.Function, f)
		}
		return f
	}
	type locKey struct {
		model, op string
		layer     int // -2: the model's root
	}
	locs := map[locKey]*profile.Location{}
	loc := func(k locKey, name string) *profile.Location {
		l := locs[k]
		if l == nil {
			l = &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn(name)}}}
			locs[k] = l
			p.Location = append(p.Location, l)
		}
		return l
	}
	total := s.Summary()
	p.Comments = append(p.Comments, fmt.Sprintf("vireo op profile, backend %s: %d steps, step time %s, ops %s (%.1f%% of step time)",
		orDash(s.Backend), total.Steps, fmtNs(total.StepNs), fmtNs(total.OpNs), 100*total.Share))
	for _, se := range s.Series {
		root := loc(locKey{model: se.Model, layer: -2}, se.Model)
		labels := map[string][]string{LabelPhase: {se.Labels.Phase}, LabelBucket: {se.Labels.Bucket}, LabelMode: {se.Labels.Mode}}
		if se.Labels.Class != "" {
			labels[LabelClass] = []string{se.Labels.Class}
		}
		var opNs int64
		for _, o := range se.Ops {
			opNs += o.Ns
			leaf := loc(locKey{se.Model, o.Op, o.Layer}, o.Op)
			stack := []*profile.Location{leaf, root}
			if o.Layer >= 0 {
				stack = []*profile.Location{leaf, loc(locKey{model: se.Model, layer: o.Layer}, "layer "+strconv.Itoa(o.Layer)), root}
			}
			p.Sample = append(p.Sample, &profile.Sample{Location: stack, Value: []int64{o.Ns, o.Calls}, Label: labels})
		}
		p.Comments = append(p.Comments, fmt.Sprintf("%s %s %s %s class %s: %d steps, step time %s, ops %s",
			se.Model, se.Labels.Mode, se.Labels.Phase, se.Labels.Bucket, orDash(se.Labels.Class), se.Steps, fmtNs(se.StepNs), fmtNs(opNs)))
	}
	for _, e := range s.Errors {
		p.Comments = append(p.Comments, "timing error: "+e)
	}
	return p
}

// Write writes the snapshot as a gzipped pprof profile.
func (s *Snapshot) Write(w io.Writer) error { return s.Profile().Write(w) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
