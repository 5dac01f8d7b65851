package kern

import "unsafe"

//go:noescape
func scores8AVX2(dst, q, k *float32, n int, scale float32)

//go:noescape
func weigh8AVX2(out, w, v *float32, n int)

// n is a positive multiple of 8.
func scores8Impl(dst, q, k []float32, scale float32) {
	scores8AVX2(unsafe.SliceData(dst), unsafe.SliceData(q), unsafe.SliceData(k), len(dst), scale)
}

func weigh8Impl(out, w, v []float32) {
	weigh8AVX2(unsafe.SliceData(out), unsafe.SliceData(w), unsafe.SliceData(v), len(w))
}
