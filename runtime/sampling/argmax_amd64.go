package sampling

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

var hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasBMI2

//go:noescape
func argmaxAVX512(x *float32, n int) int

func argmaxImpl(x []float32) int {
	if hasAVX512 {
		return argmaxAVX512(unsafe.SliceData(x), len(x))
	}
	return argmaxGeneric(x)
}
