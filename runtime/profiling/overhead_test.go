package profiling

import (
	"slices"
	"testing"
	"time"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
)

// decoder issues single-sequence decode passes on a workspace, the context wrapping
// around within its blocks.
type decoder struct {
	m      *model.Model
	ws     *model.Workspace
	kv     *backend.KVCache
	blocks []int32
	pos    int
	tok    []int32
	seq    []model.Seq
}

func newDecoder(t testing.TB, m *model.Model) *decoder {
	t.Helper()
	ws, err := m.NewWorkspace(16, 1)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := m.NewKVCache(4, model.DefaultBlockSize)
	if err != nil {
		t.Fatal(err)
	}
	return &decoder{m: m, ws: ws, kv: kv, blocks: []int32{0, 1, 2, 3}, tok: []int32{5}, seq: make([]model.Seq, 1)}
}

func (d *decoder) step(t testing.TB) {
	d.seq[0] = model.Seq{Tokens: d.tok, Pos: d.pos, Blocks: d.blocks, Logits: model.LogitsLast}
	if _, err := d.m.Forward(d.ws, d.kv, d.seq); err != nil {
		t.Fatal(err)
	}
	d.pos = (d.pos + 1) % (4 * model.DefaultBlockSize)
	d.tok[0] = int32(3 + d.pos%200)
}

// TestNoAllocations: profiling allocates nothing per pass. The lane's own calls for
// a whole pass (what a traced pass adds to an untraced one) allocate nothing, with
// and without an open window (after the window's first pass has made its series);
// a workspace without a tracer calls nothing at all (forward.go's nil checks). The
// CPU backend's own allocations per pass (staging, its worker pool: a few, the same
// with and without a tracer) are logged for comparison.
func TestNoAllocations(t *testing.T) {
	m := newTiny(t)
	p := New(Options{Backend: "cpu", NVTX: new(bool)})
	lane, err := NewLane(p, m.Backend(), nil, LaneOptions{Model: "tiny", Layers: m.Config.Layers})
	if err != nil {
		t.Fatal(err)
	}
	defer lane.Close()
	info := model.PassInfo{Kind: "forward", Phase: model.PhaseDecode, Tokens: 3, Seqs: 3, LogitRows: 3}
	pass := func() {
		lane.BeginPass(info)
		lane.BeginOp(model.OpEmbed, -1)
		lane.EndOp(model.OpEmbed, -1)
		for l := range m.Config.Layers {
			lane.BeginLayer(l)
			for op := model.OpAttnNorm; op <= model.OpFFNDown; op++ {
				lane.BeginOp(op, l)
				lane.EndOp(op, l)
			}
			lane.EndLayer(l)
		}
		for op := model.OpGather; op < model.NumOps; op++ {
			lane.BeginOp(op, -1)
			lane.EndOp(op, -1)
		}
		lane.EndPass(nil)
	}
	if n := testing.AllocsPerRun(100, pass); n != 0 {
		t.Errorf("a traced pass outside a window: %v allocations, want 0", n)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pass()
	if n := testing.AllocsPerRun(100, pass); n != 0 {
		t.Errorf("a traced pass in a window: %v allocations, want 0", n)
	}
	s := p.Stop()
	if len(s.Series) != 1 || s.Series[0].Steps != 102 || s.Series[0].Labels.Bucket != "4 seqs" {
		t.Fatalf("recorded %+v, want one series of 102 passes in bucket 4 seqs", s.Series)
	}
	for _, o := range s.Series[0].Ops {
		if o.Calls != 102 {
			t.Errorf("%s at layer %d: %d calls, want 102", o.Op, o.Layer, o.Calls)
		}
	}

	// The whole CPU pass, for the log.
	d := newDecoder(t, m)
	d.step(t)
	off := testing.AllocsPerRun(50, func() { d.step(t) })
	lane2, err := NewLane(p, m.Backend(), d.ws.Stream(), LaneOptions{Model: "tiny", Layers: m.Config.Layers})
	if err != nil {
		t.Fatal(err)
	}
	defer lane2.Close()
	d.ws.SetTracer(lane2)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	d.step(t)
	on := testing.AllocsPerRun(50, func() { d.step(t) })
	p.Stop()
	t.Logf("CPU decode pass of the tiny model: %v allocations without a tracer, %v recorded (the CPU backend's own)", off, on)
}

// BenchmarkOverhead measures what recording costs a CPU decode pass: passes without a
// tracer ("off") and recorded in a window ("on") alternate one by one, so load drifts
// hit both sides alike, and the medians of their times are compared (a median shrugs
// off the passes a busy machine delays). It reports on/off, the ratio of the median
// pass times, and the profile's share of the passes' wall time (ops/step).
// Run: go test ./runtime/profiling -run '^$' -bench Overhead -benchtime 400x
func BenchmarkOverhead(b *testing.B) {
	for _, name := range []string{"synthetic:tiny", "stories260K", "synthetic:tinyllama-1.1b"} {
		b.Run(name, func(b *testing.B) {
			var m *model.Model
			if model.IsSynthetic(name) {
				w := model.WeightsF32
				if name != "synthetic:tiny" {
					w = model.WeightsInt8
				}
				var err error
				if m, err = model.Synthetic(name, cpu.New(cpu.Options{}), model.Options{Weights: w}); err != nil {
					b.Fatal(err)
				}
			} else {
				l, err := llm.Open(shared.Path(b, "models", "stories260K", "stories260K.bin"), "", cpu.New(cpu.Options{}), model.Options{})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { l.Close() })
				m = l.Model
			}
			d := newDecoder(b, m)
			p := New(Options{Backend: "cpu", NVTX: new(bool)})
			lane, err := NewLane(p, m.Backend(), d.ws.Stream(), LaneOptions{Model: name, Layers: m.Config.Layers})
			if err != nil {
				b.Fatal(err)
			}
			defer lane.Close()
			for range 8 {
				d.step(b) // warm up
			}
			if err := p.Start(); err != nil {
				b.Fatal(err)
			}
			var off, on []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				traced := i%2 == 1
				if traced {
					d.ws.SetTracer(lane)
				} else {
					d.ws.SetTracer(nil)
				}
				t0 := time.Now()
				d.step(b)
				if dt := time.Since(t0); traced {
					on = append(on, dt)
				} else {
					off = append(off, dt)
				}
			}
			b.StopTimer()
			s := p.Stop().Summary()
			mo, mn := median(off), median(on)
			b.ReportMetric(float64(mn)/float64(mo), "on/off")
			b.ReportMetric(s.Share, "ops/step")
			b.ReportMetric(float64(mo), "ns/pass-off")
			b.ReportMetric(float64(mn), "ns/pass-on")
		})
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkLaneOp is what timing costs per op on the CPU, measured without the op:
// a lane's calls for a traced pass of the synthetic tiny model's shape (4 layers ×
// 14 ops + 4), divided by its ops. Multiplied by a pass's ops it bounds the overhead
// BenchmarkOverhead measures, without its noise.
func BenchmarkLaneOp(b *testing.B) {
	const layers = 4
	p := New(Options{Backend: "cpu", NVTX: new(bool)})
	lane, err := NewLane(p, cpu.New(cpu.Options{Threads: 1}), nil, LaneOptions{Model: "tiny", Layers: layers})
	if err != nil {
		b.Fatal(err)
	}
	defer lane.Close()
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	info := model.PassInfo{Kind: "forward", Phase: model.PhaseDecode, Tokens: 1, Seqs: 1, LogitRows: 1}
	ops := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lane.BeginPass(info)
		lane.BeginOp(model.OpEmbed, -1)
		lane.EndOp(model.OpEmbed, -1)
		for l := range layers {
			lane.BeginLayer(l)
			for op := model.OpAttnNorm; op <= model.OpFFNDown; op++ {
				lane.BeginOp(op, l)
				lane.EndOp(op, l)
			}
			lane.EndLayer(l)
		}
		for op := model.OpGather; op < model.NumOps; op++ {
			lane.BeginOp(op, -1)
			lane.EndOp(op, -1)
		}
		lane.EndPass(nil)
		ops += 1 + layers*14 + 3
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops), "ns/op-timed")
}
