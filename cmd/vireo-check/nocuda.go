//go:build !cuda

package main

import (
	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

func runOps([]string) (any, error) { return nil, cgo.ErrNoCUDA }
func runE2E([]string) (any, error) { return nil, cgo.ErrNoCUDA }

func newCUDA() (backend.Backend, func(), error) { return nil, nil, cgo.ErrNoCUDA }
