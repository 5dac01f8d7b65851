//go:build !cuda

package device

import (
	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

var names = []string{"cpu"}

func openCUDA(Options) (backend.Backend, error) { return nil, cgo.ErrNoCUDA }
