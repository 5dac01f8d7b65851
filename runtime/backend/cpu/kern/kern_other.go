//go:build !amd64

package kern

// Portable code only off amd64.

var level = levelGeneric

func availableLevels() []int { return []int{levelGeneric} }

func levelName(l int) string { return "go" }

func dotImpl(x, w []float32) float32                                 { return dotGeneric(x, w) }
func dotQ8Impl(x []float32, w []int8) float32                        { return dotQ8Generic(x, w) }
func dot4Impl(out *[4]float32, x []float32, ldx, n int, w []float32) { dot4Generic(out, x, ldx, n, w) }
func dot4Q8Impl(out *[4]float32, x []float32, ldx, n int, w []int8) {
	dot4Q8Generic(out, x, ldx, n, w)
}

func axpyImpl(dst []float32, a float32, x []float32) { axpyGeneric(dst, a, x) }
func dotI8Impl(x, w []int8) int32                    { return dotI8Generic(x, w) }
func expShiftImpl(w []float32, mx float32) float32   { return expShiftGeneric(w, mx) }
func siluMulImpl(out, gate, up []float32)            { siluMulGeneric(out, gate, up) }

func scores8Impl(dst, q, k []float32, scale float32) { scores8Generic(dst, q, k, scale) }
func weigh8Impl(out, w, v []float32)                 { weigh8Generic(out, w, v) }

func matVecTImpl(dst, x, wt []float32, ld int, accumulate bool) {
	matVecTGeneric(dst, x, wt, ld, accumulate)
}

func maxImpl(w []float32) float32 { return maxGeneric(w) }

func q8Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, qa *int8, da *float32) {
	panic("kern: no VNNI kernels off amd64")
}

func q8Tile4x4VNNI(out *[16]float32, pw *byte, pd *float32, nb int, qa *int8, lda int, da4 *float32, ca *int32, ldc int) {
	panic("kern: no VNNI kernels off amd64")
}

func quantizeQ8Impl(qa []int8, da []float32, x []float32) { quantizeQ8Generic(qa, da, x) }

func q8Pack4Impl(pw []byte, pd []float32, w []byte, ldw, nb int) bool { return false }

func matVecT4Impl(dst []float32, ldd int, x []float32, ldx, in int, wt []float32, ld, m int, accumulate bool) bool {
	return false
}

func weighRowsImpl(out, w, v []float32) {
	for j, a := range w {
		axpyGeneric(out, a, v[j*len(out):(j+1)*len(out)])
	}
}
