// Package device opens a backend by name — "cpu", or "cuda" in binaries built with the
// cuda tag — so commands share one switch and one error for a missing CUDA build.
package device

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// Options configure whichever backend is opened.
type Options struct {
	Threads              int         // CPU: worker goroutines per op (0: GOMAXPROCS)
	GPUMemoryUtilization float64     // CUDA: fraction of device memory the process may hold (0: 0.9)
	Log                  *zap.Logger // what the backend decides on the user's behalf; nil discards it
	// Kernels is the CUDA kernel generation of attention and sampling: "v2" (default,
	// also "") or "v1", kept selectable until a GPU run has verified v2. The CPU
	// backend has one implementation and ignores it.
	Kernels string
	// W4A16 keeps GGUF Q4_0 and Q4_K matrices 4-bit on CUDA (cuda.Options.W4A16: off
	// by default until a GPU run verifies the kernels; the model hands them over as
	// blocks with weights auto). The CPU backend multiplies its block types natively
	// anyway and ignores it.
	W4A16 bool
}

// CheckKernels validates a --kernels value ("", "v1" or "v2").
func CheckKernels(k string) error {
	switch k {
	case "", "v1", "v2":
		return nil
	}
	return fmt.Errorf("kernels %q: want v1 or v2", k)
}

// Names lists the devices this binary can open.
func Names() []string { return names }

// Open returns the named backend.
func Open(name string, o Options) (backend.Backend, error) {
	if err := CheckKernels(o.Kernels); err != nil {
		return nil, err
	}
	switch name {
	case "cpu", "":
		return cpu.New(cpu.Options{Threads: o.Threads}), nil
	case "cuda":
		return openCUDA(o)
	}
	return nil, fmt.Errorf("device %q: unknown (this binary has %v)", name, names)
}
