//go:build !linux

package testref

import "os"

func goStderr() *os.File { return nil }
