package kern

import "unsafe"

//go:noescape
func expShiftAVX512(w *float32, n int, mx float32) float32

func expShiftImpl(w []float32, mx float32) float32 {
	if level == levelAVX512 {
		return expShiftAVX512(unsafe.SliceData(w), len(w), mx)
	}
	return expShiftGeneric(w, mx)
}

//go:noescape
func siluMulAVX512(out, gate, up *float32, n int)

func siluMulImpl(out, gate, up []float32) {
	if level == levelAVX512 {
		siluMulAVX512(unsafe.SliceData(out), unsafe.SliceData(gate), unsafe.SliceData(up), len(out))
		return
	}
	siluMulGeneric(out, gate, up)
}

//go:noescape
func maxAVX512(w *float32, n int) float32

func maxImpl(w []float32) float32 {
	if level == levelAVX512 && len(w) >= 16 {
		return maxAVX512(unsafe.SliceData(w), len(w))
	}
	return maxGeneric(w)
}
