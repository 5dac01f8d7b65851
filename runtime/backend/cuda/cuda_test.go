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
