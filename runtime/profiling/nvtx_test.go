package profiling

import (
	"errors"
	"slices"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// fakeRanger records NVTX calls as a backend.Ranger would receive them.
type fakeRanger struct {
	backend.Backend
	names  []string
	stack  []int
	pushes []string
	fail   string // a name whose registration fails
}

func (f *fakeRanger) RangeID(name string, color uint32) (int, error) {
	if name == f.fail {
		return 0, errors.New("full")
	}
	if i := slices.Index(f.names, name); i >= 0 {
		return i, nil
	}
	f.names = append(f.names, name)
	return len(f.names) - 1, nil
}

func (f *fakeRanger) PushRange(id int) {
	f.stack = append(f.stack, id)
	f.pushes = append(f.pushes, f.names[id])
}

func (f *fakeRanger) PopRange() {
	if len(f.stack) == 0 {
		panic("pop without push")
	}
	f.stack = f.stack[:len(f.stack)-1]
}

// TestNVTXRanges: with NVTX on, a pass opens a range for the step, each layer and each
// op, nested and balanced, whether or not a window is open; a name that cannot be
// registered turns the ranges off without unbalancing them.
func TestNVTXRanges(t *testing.T) {
	m := newTiny(t)
	on := true
	p := New(Options{Backend: "fake", NVTX: &on})
	fr := &fakeRanger{Backend: m.Backend()}
	d := newDecoder(t, m)
	lane, err := NewLane(p, fr, d.ws.Stream(), LaneOptions{Model: "tiny", Layers: m.Config.Layers})
	if err != nil {
		t.Fatal(err)
	}
	defer lane.Close()
	if !lane.Active() {
		t.Fatal("a lane with NVTX on is not active outside a window")
	}
	d.ws.SetTracer(lane)
	d.step(t)
	d.step(t)
	layers := m.Config.Layers
	perPass := 1 + 1 + layers*(1+14) + 3 // step, embed, layers and their ops, gather/norm/classifier
	if len(fr.stack) != 0 || len(fr.pushes) != 2*perPass {
		t.Fatalf("%d ranges open, %d pushed; want 0 and %d", len(fr.stack), len(fr.pushes), 2*perPass)
	}
	want := []string{"decode step · 1 seqs", "embed", "layer 0", "attn_norm", "q_proj"}
	if !slices.Equal(fr.pushes[:len(want)], want) {
		t.Errorf("first ranges %q, want %q", fr.pushes[:len(want)], want)
	}
	if l := fr.pushes[perPass-1]; l != "classifier" {
		t.Errorf("last range of a pass %q, want classifier", l)
	}

	// Registration fails for a step's name: that pass and later ones open none, and
	// nothing is left open.
	fr2 := &fakeRanger{Backend: m.Backend(), fail: "prefill step · 4 tokens"}
	lane2, err := NewLane(p, fr2, d.ws.Stream(), LaneOptions{Model: "tiny", Layers: layers})
	if err != nil {
		t.Fatal(err)
	}
	defer lane2.Close()
	d.ws.SetTracer(lane2)
	d.step(t)
	n := len(fr2.pushes)
	d.seq[0].Tokens = []int32{5, 6, 7}
	if _, err := m.Forward(d.ws, d.kv, d.seq); err != nil {
		t.Fatal(err)
	}
	d.step(t)
	if n != perPass || len(fr2.pushes) != n || len(fr2.stack) != 0 {
		t.Errorf("after a failed registration: %d then %d pushes, %d open; want %d, %d, 0", n, len(fr2.pushes), len(fr2.stack), perPass, perPass)
	}
}
