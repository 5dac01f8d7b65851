//go:build !cuda

package main

import "github.com/vireo-ai/vireo/cgo"

func runOps([]string) (any, error) { return nil, cgo.ErrNoCUDA }
func runE2E([]string) (any, error) { return nil, cgo.ErrNoCUDA }
