//go:build cuda

package device

import (
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cuda"
)

var names = []string{"cpu", "cuda"}

func openCUDA(o Options) (backend.Backend, error) {
	return cuda.New(cuda.Options{GPUMemoryUtilization: o.GPUMemoryUtilization, Log: o.Log, Kernels: cuda.Kernels(o.Kernels), W4A16: o.W4A16})
}
