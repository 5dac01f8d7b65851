//go:build cuda

package cuda

import (
	"errors"
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

func open(t *testing.T) *Backend {
	t.Helper()
	b, err := New(Options{})
	if errors.Is(err, cgo.ErrNoDevice) {
		t.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestOps checks every op against the CPU backend (backendtest); it skips without a GPU.
func TestOps(t *testing.T) {
	b := open(t)
	rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Large: !testing.Short()})
	if rep.Failed() {
		t.Errorf("%s", rep.Summary())
	}
}

// TestMatMulPaths checks the matmul paths the default TestOps never takes (it has fewer
// rows than Options.W8A8Rows, and AUTO picks one kernel per shape): W8A8 from the first
// row (the MMA kernel where In % 32 == 0, the rest stay W8A16), and the SIMT reference
// kernels forced on every shape, W8A16, 16-bit and W8A8 alike.
func TestMatMulPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Options
		v    cgo.Variant
	}{
		{"w8a8", Options{W8A8Rows: 1}, cgo.MMAuto},
		{"simt", Options{W8A8Rows: -1}, cgo.MMSIMT},
		{"w8a8-simt", Options{W8A8Rows: 1}, cgo.MMSIMT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.opt)
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			b.mmVariant = tc.v
			rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Ops: []string{backendtest.OpMatMul}})
			if rep.Failed() {
				t.Errorf("%s", rep.Summary())
			}
		})
	}
}
