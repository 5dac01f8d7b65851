package kern

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

var level = bestLevel()

func bestLevel() int {
	switch {
	case Features.AVX512 && Features.FMA && cpu.X86.HasBMI2:
		return levelAVX512
	case Features.AVX2 && Features.FMA:
		return levelAVX2
	}
	return levelGeneric
}

// availableLevels lists the levels this CPU can run, best last.
func availableLevels() []int {
	ls := []int{levelGeneric}
	b := bestLevel()
	if b >= levelAVX2 {
		ls = append(ls, levelAVX2)
	}
	if b >= levelAVX512 {
		ls = append(ls, levelAVX512)
	}
	return ls
}

func levelName(l int) string {
	switch l {
	case levelAVX2:
		return "avx2"
	case levelAVX512:
		return "avx512"
	}
	return "go"
}

// Assembly kernels (kern_amd64.s). n > 0; all n elements of x and w are readable; for
// the 4-row kernels row r starts at x + r*ldx elements.

//go:noescape
func dotAVX512(x, w *float32, n int) float32

//go:noescape
func dotQ8AVX512(x *float32, w *int8, n int) float32

//go:noescape
func dot4AVX512(out *[4]float32, x *float32, ldx int, w *float32, n int)

//go:noescape
func dot4Q8AVX512(out *[4]float32, x *float32, ldx int, w *int8, n int)

//go:noescape
func dotAVX2(x, w *float32, n int) float32

//go:noescape
func dotQ8AVX2(x *float32, w *int8, n int) float32

//go:noescape
func dot4AVX2(out *[4]float32, x *float32, ldx int, w *float32, n int)

//go:noescape
func dot4Q8AVX2(out *[4]float32, x *float32, ldx int, w *int8, n int)

// The callers guarantee len(x) == len(w) == n > 0 (dot) or n > 0 and rows in range (dot4).

func dotImpl(x, w []float32) float32 {
	switch level {
	case levelAVX512:
		return dotAVX512(unsafe.SliceData(x), unsafe.SliceData(w), len(x))
	case levelAVX2:
		return dotAVX2(unsafe.SliceData(x), unsafe.SliceData(w), len(x))
	}
	return dotGeneric(x, w)
}

func dotQ8Impl(x []float32, w []int8) float32 {
	switch level {
	case levelAVX512:
		return dotQ8AVX512(unsafe.SliceData(x), unsafe.SliceData(w), len(x))
	case levelAVX2:
		return dotQ8AVX2(unsafe.SliceData(x), unsafe.SliceData(w), len(x))
	}
	return dotQ8Generic(x, w)
}

func dot4Impl(out *[4]float32, x []float32, ldx, n int, w []float32) {
	switch level {
	case levelAVX512:
		dot4AVX512(out, unsafe.SliceData(x), ldx, unsafe.SliceData(w), n)
	case levelAVX2:
		dot4AVX2(out, unsafe.SliceData(x), ldx, unsafe.SliceData(w), n)
	default:
		dot4Generic(out, x, ldx, n, w)
	}
}

func dot4Q8Impl(out *[4]float32, x []float32, ldx, n int, w []int8) {
	switch level {
	case levelAVX512:
		dot4Q8AVX512(out, unsafe.SliceData(x), ldx, unsafe.SliceData(w), n)
	case levelAVX2:
		dot4Q8AVX2(out, unsafe.SliceData(x), ldx, unsafe.SliceData(w), n)
	default:
		dot4Q8Generic(out, x, ldx, n, w)
	}
}

//go:noescape
func axpyAVX512(dst *float32, a float32, x *float32, n int)

//go:noescape
func axpyAVX2(dst *float32, a float32, x *float32, n int)

//go:noescape
func dotI8VNNI(x, w *int8, n int) int32

//go:noescape
func dotI8AVX2(x, w *int8, n int) int32

func axpyImpl(dst []float32, a float32, x []float32) {
	switch level {
	case levelAVX512:
		axpyAVX512(unsafe.SliceData(dst), a, unsafe.SliceData(x), len(dst))
	case levelAVX2:
		axpyAVX2(unsafe.SliceData(dst), a, unsafe.SliceData(x), len(dst))
	default:
		axpyGeneric(dst, a, x)
	}
}

func dotI8Impl(x, w []int8) int32 {
	switch {
	case level == levelAVX512 && Features.VNNI:
		return dotI8VNNI(unsafe.SliceData(x), unsafe.SliceData(w), len(x))
	case level >= levelAVX2:
		return dotI8AVX2(unsafe.SliceData(x), unsafe.SliceData(w), len(x))
	}
	return dotI8Generic(x, w)
}

//go:noescape
func weighRowsAVX512(out, w, v *float32, n, hd int)

func weighRowsImpl(out, w, v []float32) {
	weighRowsAVX512(unsafe.SliceData(out), unsafe.SliceData(w), unsafe.SliceData(v), len(w), len(out))
}
