//go:build !cuda

// Command vireo-devinfo needs the cuda build (make cuda): see main.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "vireo-devinfo: built without CUDA (build with make cuda)")
	os.Exit(1)
}
