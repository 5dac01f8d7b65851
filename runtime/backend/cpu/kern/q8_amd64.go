package kern

import "unsafe"

//go:noescape
func q8Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, qa *int8, da *float32)

//go:noescape
func q8Tile4x4VNNI(out *[16]float32, pw *byte, pd *float32, nb int, qa *int8, lda int, da4 *float32, ca *int32, ldc int)

//go:noescape
func quantizeQ8AVX512(qa *int8, da *float32, x *float32, nb int)

func quantizeQ8Impl(qa []int8, da []float32, x []float32) {
	if level == levelAVX512 {
		quantizeQ8AVX512(unsafe.SliceData(qa), unsafe.SliceData(da), unsafe.SliceData(x), len(da))
		return
	}
	quantizeQ8Generic(qa, da, x)
}

//go:noescape
func q8Pack4AVX512(pw *byte, pd *float32, w *byte, ldw, nb int)

func q8Pack4Impl(pw []byte, pd []float32, w []byte, ldw, nb int) bool {
	if level != levelAVX512 {
		return false
	}
	q8Pack4AVX512(unsafe.SliceData(pw), unsafe.SliceData(pd), unsafe.SliceData(w), ldw, nb)
	return true
}
