package profiling

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/model"
)

// decodeRun is a CPU run on the synthetic tiny model: one prefill pass of prompt
// tokens, then steps decode passes of one token each, each pass timed from outside
// (the wall time the profile's total must not exceed).
type decodeRun struct {
	m      *model.Model
	prompt int
	steps  int
	wall   time.Duration // summed over the passes
}

func newTiny(t testing.TB) *model.Model {
	t.Helper()
	m, err := model.Synthetic("tiny", cpu.New(cpu.Options{Threads: 1}), model.Options{Weights: model.WeightsF32})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run issues the passes on a workspace traced by a lane of p.
func (r *decodeRun) run(t testing.TB, p *Profiler, class string) {
	t.Helper()
	ws, err := r.m.NewWorkspace(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := r.m.NewKVCache(8, model.DefaultBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	lane, err := NewLane(p, r.m.Backend(), ws.Stream(), LaneOptions{Model: "tiny", Layers: r.m.Config.Layers})
	if err != nil {
		t.Fatal(err)
	}
	defer lane.Close()
	lane.SetClass(class)
	ws.SetTracer(lane)
	blocks := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	tokens := make([]int32, r.prompt)
	for i := range tokens {
		tokens[i] = int32(3 + i)
	}
	pass := func(seq model.Seq) []float32 {
		t0 := time.Now()
		logits, err := r.m.Forward(ws, kv, []model.Seq{seq})
		r.wall += time.Since(t0)
		if err != nil {
			t.Fatal(err)
		}
		return logits
	}
	logits := pass(model.Seq{Tokens: tokens, Blocks: blocks, Logits: model.LogitsLast})
	for i := 0; i < r.steps; i++ {
		next := int32(argmax(logits))
		logits = pass(model.Seq{Tokens: []int32{next}, Pos: r.prompt + i, Blocks: blocks, Logits: model.LogitsLast})
	}
}

func argmax(x []float32) int {
	b := 0
	for i, v := range x {
		if v > x[b] {
			b = i
		}
	}
	return b
}

// TestDecodeProfileCPU is the acceptance check: a CPU profile of a decode run names
// every op with its call count (per pass: each layer op once per layer, the others
// once), and its total device time is at most the summed wall time of the passes it
// timed (the ops are disjoint intervals inside them). Written as a pprof profile and
// parsed back, it says the same.
func TestDecodeProfileCPU(t *testing.T) {
	p := New(Options{Backend: "cpu"})
	r := &decodeRun{m: newTiny(t), prompt: 12, steps: 9}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != ErrBusy {
		t.Fatalf("a second Start: %v, want ErrBusy", err)
	}
	r.run(t, p, "interactive")
	snap := p.Stop()
	layers := r.m.Config.Layers

	if len(snap.Series) != 2 {
		t.Fatalf("%d series, want prefill and decode: %+v", len(snap.Series), snap.Series)
	}
	want := map[string]struct {
		bucket string
		passes int64
	}{"prefill": {"16 tokens", 1}, "decode": {"1 seqs", int64(r.steps)}}
	for _, se := range snap.Series {
		w, ok := want[se.Labels.Phase]
		if !ok || se.Labels.Bucket != w.bucket || se.Labels.Class != "interactive" || se.Labels.Mode != ModeEager || se.Model != "tiny" {
			t.Errorf("series %+v", se.Labels)
			continue
		}
		if se.Steps != w.passes {
			t.Errorf("%s: %d steps, want %d", se.Labels.Phase, se.Steps, w.passes)
		}
		calls := map[model.Op]int64{}
		layersSeen := map[model.Op]map[int]bool{}
		for _, o := range se.Ops {
			op := opByName(t, o.Op)
			calls[op] += o.Calls
			if o.Calls != w.passes {
				t.Errorf("%s: %s at layer %d: %d calls, want %d", se.Labels.Phase, o.Op, o.Layer, o.Calls, w.passes)
			}
			if (o.Layer >= 0) != op.InLayer() {
				t.Errorf("%s at layer %d", o.Op, o.Layer)
			}
			if layersSeen[op] == nil {
				layersSeen[op] = map[int]bool{}
			}
			layersSeen[op][o.Layer] = true
		}
		for op := model.Op(0); op < model.NumOps; op++ {
			n := w.passes
			if op.InLayer() {
				n *= int64(layers)
				if len(layersSeen[op]) != layers {
					t.Errorf("%s: %s seen at %d layers, want %d", se.Labels.Phase, op, len(layersSeen[op]), layers)
				}
			}
			if calls[op] != n {
				t.Errorf("%s: %s: %d calls, want %d", se.Labels.Phase, op, calls[op], n)
			}
		}
	}
	sum := snap.Summary()
	if sum.Steps != int64(r.steps)+1 {
		t.Errorf("summary: %d steps, want %d", sum.Steps, r.steps+1)
	}
	if sum.OpNs <= 0 || sum.OpNs > sum.StepNs || sum.StepNs > int64(r.wall) {
		t.Errorf("op time %d ns, step time %d ns, wall time of the passes %d ns: want 0 < ops <= steps <= wall", sum.OpNs, sum.StepNs, r.wall)
	}
	t.Logf("ops %.1f%% of step time, steps %.1f%% of the passes' wall time", 100*sum.Share, 100*float64(sum.StepNs)/float64(r.wall))

	// Through the pprof encoding: what `go tool pprof` reads.
	var buf bytes.Buffer
	if err := snap.Write(&buf); err != nil {
		t.Fatal(err)
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := prof.CheckValid(); err != nil {
		t.Fatal(err)
	}
	if len(prof.SampleType) != 2 || prof.SampleType[0].Type != SampleDeviceNs || prof.SampleType[0].Unit != "nanoseconds" ||
		prof.SampleType[1].Type != SampleCalls || prof.DefaultSampleType != SampleDeviceNs {
		t.Fatalf("sample types %v, default %q", prof.SampleType, prof.DefaultSampleType)
	}
	leafCalls := map[string]int64{}
	var total int64
	for _, s := range prof.Sample {
		leaf := s.Location[0].Line[0].Function.Name
		root := s.Location[len(s.Location)-1].Line[0].Function.Name
		if root != "tiny" {
			t.Errorf("sample of %s: root %q, want the model", leaf, root)
		}
		op := opByName(t, leaf)
		if op.InLayer() != (len(s.Location) == 3) || (op.InLayer() && !strings.HasPrefix(s.Location[1].Line[0].Function.Name, "layer ")) {
			t.Errorf("sample of %s: stack of %d", leaf, len(s.Location))
		}
		for _, k := range []string{LabelPhase, LabelBucket, LabelClass, LabelMode} {
			if len(s.Label[k]) != 1 {
				t.Errorf("sample of %s: label %s = %v", leaf, k, s.Label[k])
			}
		}
		if s.Label[LabelPhase][0] == "decode" {
			leafCalls[leaf] += s.Value[1]
		}
		total += s.Value[0]
	}
	for op := model.Op(0); op < model.NumOps; op++ {
		n := int64(r.steps)
		if op.InLayer() {
			n *= int64(layers)
		}
		if leafCalls[op.String()] != n {
			t.Errorf("parsed profile: decode %s: %d calls, want %d", op, leafCalls[op.String()], n)
		}
	}
	if total != sum.OpNs {
		t.Errorf("parsed profile: %d ns in all, the snapshot %d", total, sum.OpNs)
	}
}

func opByName(t testing.TB, name string) model.Op {
	t.Helper()
	for op := model.Op(0); op < model.NumOps; op++ {
		if op.String() == name {
			return op
		}
	}
	t.Fatalf("unknown op %q", name)
	return 0
}

// TestPprofTop saves a profile and runs `go tool pprof -top` on it, as a user would:
// its table names the ops.
func TestPprofTop(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool pprof: no go command on PATH")
	}
	p := New(Options{Backend: "cpu"})
	r := &decodeRun{m: newTiny(t), prompt: 4, steps: 3}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	r.run(t, p, "")
	path := filepath.Join(t.TempDir(), "ops.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop().Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(goBin, "tool", "pprof", "-top", "-nodecount=1000", "-nodefraction=0", path)
	cmd.Env = append(os.Environ(), "PPROF_TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	text := string(out)
	if !strings.Contains(text, "Type: device-ns") {
		t.Errorf("go tool pprof -top: no \"Type: device-ns\" line:\n%s", text)
	}
	for op := model.Op(0); op < model.NumOps; op++ {
		found := false
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && f[len(f)-1] == op.String() {
				found = true
			}
		}
		if !found {
			t.Errorf("go tool pprof -top does not list %s:\n%s", op, text)
		}
	}
}

// TestStopDropsOtherWindows: passes outside a window are not counted; Stop without a
// window is empty; a new window starts from nothing.
func TestStopDropsOtherWindows(t *testing.T) {
	p := New(Options{})
	r := &decodeRun{m: newTiny(t), prompt: 2, steps: 2}
	r.run(t, p, "") // no window
	if s := p.Stop(); len(s.Series) != 0 {
		t.Fatalf("Stop without a window: %+v", s.Series)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	r.run(t, p, "a")
	first := p.Stop().Summary()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	r.run(t, p, "a")
	second := p.Stop().Summary()
	if first.Steps != 3 || second.Steps != 3 {
		t.Fatalf("steps %d and %d, want 3 each", first.Steps, second.Steps)
	}
}

func TestText(t *testing.T) {
	p := New(Options{Backend: "cpu"})
	r := &decodeRun{m: newTiny(t), prompt: 4, steps: 2}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	r.run(t, p, "")
	var b strings.Builder
	if err := p.Stop().WriteText(&b, 5); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, w := range []string{"Op profile (cpu backend", "3 steps", "share of step time", "decode", "prefill", "1 seqs", "4 tokens"} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
	if n := strings.Count(text, "µs") + strings.Count(text, " ms") + strings.Count(text, " ns"); n == 0 {
		t.Errorf("no times in:\n%s", text)
	}
}

// TestGoPhaseLabels: a goroutine labelled with a phase carries the label in Go's
// goroutine profile (what a CPU profile's samples carry too), and WithRequest's labels
// likewise.
func TestGoPhaseLabels(t *testing.T) {
	ready, release := make(chan struct{}), make(chan struct{})
	go func() {
		SetGoPhase(GoDecode)
		ready <- struct{}{}
		<-release
	}()
	go func() {
		pprof.SetGoroutineLabels(WithRequest(context.Background(), "chatcmpl-42"))
		ready <- struct{}{}
		<-release
	}()
	<-ready
	<-ready
	defer close(release)
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`labels: {"phase":"decode"}`, `labels: {"phase":"server", "request_id":"chatcmpl-42"}`} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("goroutine profile lacks %s:\n%s", w, b.String())
		}
	}
}
