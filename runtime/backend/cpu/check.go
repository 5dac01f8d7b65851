package cpu

import "github.com/vireo-ai/vireo/runtime/backend"

var _ backend.Backend = (*Backend)(nil)
