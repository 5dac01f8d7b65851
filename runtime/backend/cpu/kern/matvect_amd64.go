package kern

import "unsafe"

//go:noescape
func matVecTAVX512(dst, x, wt *float32, m, in, ld int, accumulate bool)

func matVecTImpl(dst, x, wt []float32, ld int, accumulate bool) {
	if level == levelAVX512 {
		matVecTAVX512(unsafe.SliceData(dst), unsafe.SliceData(x), unsafe.SliceData(wt), len(dst), len(x), ld, accumulate)
		return
	}
	matVecTGeneric(dst, x, wt, ld, accumulate)
}

//go:noescape
func matVecT4AVX512(dst *float32, ldd int, x *float32, ldx, in int, wt *float32, ld, m int, accumulate bool)

func matVecT4Impl(dst []float32, ldd int, x []float32, ldx, in int, wt []float32, ld, m int, accumulate bool) bool {
	if level != levelAVX512 {
		return false
	}
	matVecT4AVX512(unsafe.SliceData(dst), ldd, unsafe.SliceData(x), ldx, in, unsafe.SliceData(wt), ld, m, accumulate)
	return true
}
