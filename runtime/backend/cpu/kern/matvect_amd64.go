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
