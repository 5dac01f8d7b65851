//go:build cuda

package cuda

import (
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// TestOpTimer (GPU only): marks around a SiLUMul of 4096 rows measure a positive time
// that grows with the work (16,384 rows take longer), Elapsed of unknown marks is an
// error, marks fail during a capture, and Reset reuses the events.
func TestOpTimer(t *testing.T) {
	b := open(t)
	s, err := b.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := b.NewTimer(s)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	small, err := b.Alloc(b.Activations(), 4096, 4096)
	if err != nil {
		t.Fatal(err)
	}
	big, err := b.Alloc(b.Activations(), 16384, 4096)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.Alloc(b.Activations(), 16384, 4096)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(x backend.Tensor) int64 {
		i, err := tm.Mark()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.SiLUMul(s, out.SliceRows(0, x.Rows), x, x); err != nil {
			t.Fatal(err)
		}
		j, err := tm.Mark()
		if err != nil {
			t.Fatal(err)
		}
		ns, err := tm.Elapsed(i, j)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	for range 2 { // the second round reuses the events
		a, c := fill(small), fill(big)
		if a <= 0 || c <= a {
			t.Errorf("SiLUMul of 4096 rows: %d ns, of 16384: %d ns; want 0 < first < second", a, c)
		}
		if _, err := tm.Elapsed(0, 99); err == nil {
			t.Error("Elapsed of an unknown mark: no error")
		}
		tm.Reset()
	}
	if err := b.BeginCapture(s); err != nil {
		t.Fatal(err)
	}
	if _, err := tm.Mark(); err == nil {
		t.Error("a mark during a capture: no error")
	}
	if _, err := b.EndCapture(s); err != nil {
		t.Logf("end capture of an empty graph: %v", err)
	}
}
