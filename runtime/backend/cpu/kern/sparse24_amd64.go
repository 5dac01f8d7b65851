package kern

import "unsafe"

// 2:4 kernels (sparse24_amd64.s): steps > 0 whole steps of 32 inputs; row r of x starts
// at x + r*ldx elements.

//go:noescape
func dot24AVX512(x, v *float32, meta *byte, steps int) float32

//go:noescape
func dot24Q8AVX512(x *float32, v *int8, meta *byte, steps int) float32

//go:noescape
func dot24x4AVX512(out *[4]float32, x *float32, ldx int, v *float32, meta *byte, steps int)

//go:noescape
func dot24x4Q8AVX512(out *[4]float32, x *float32, ldx int, v *int8, meta *byte, steps int)

// The AVX2 level has no 2:4 kernel: it runs the portable one.

func dot24Impl(x, v []float32, meta []byte, steps int) float32 {
	if level == levelAVX512 {
		return dot24AVX512(unsafe.SliceData(x), unsafe.SliceData(v), unsafe.SliceData(meta), steps)
	}
	return dot24Generic(x, v, meta, steps)
}

func dot24Q8Impl(x []float32, v []int8, meta []byte, steps int) float32 {
	if level == levelAVX512 {
		return dot24Q8AVX512(unsafe.SliceData(x), unsafe.SliceData(v), unsafe.SliceData(meta), steps)
	}
	return dot24Q8Generic(x, v, meta, steps)
}

func dot24x4Impl(out *[4]float32, x []float32, ldx int, v []float32, meta []byte, steps int) {
	if level == levelAVX512 {
		dot24x4AVX512(out, unsafe.SliceData(x), ldx, unsafe.SliceData(v), unsafe.SliceData(meta), steps)
		return
	}
	for r := range out {
		out[r] = dot24Generic(x[r*ldx:], v, meta, steps)
	}
}

func dot24x4Q8Impl(out *[4]float32, x []float32, ldx int, v []int8, meta []byte, steps int) {
	if level == levelAVX512 {
		dot24x4Q8AVX512(out, unsafe.SliceData(x), ldx, unsafe.SliceData(v), unsafe.SliceData(meta), steps)
		return
	}
	for r := range out {
		out[r] = dot24Q8Generic(x[r*ldx:], v, meta, steps)
	}
}
