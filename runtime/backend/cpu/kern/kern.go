package kern

// Implementation levels; level (per architecture file) is chosen once from Features and
// only changed by tests.
const (
	levelGeneric = iota // portable Go
	levelAVX2           // amd64 AVX2+FMA: 3 accumulators x 8 lanes
	levelAVX512         // amd64 AVX-512F/BW/VL: 4 accumulators x 16 lanes, masked tails
)

// Dot returns sum(x[i]*w[i]) over len(x); len(w) >= len(x). Elements of w past len(x)
// are never read.
func Dot(x, w []float32) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	w = w[:n] // panics like the portable version when w is too short
	return dotImpl(x, w)
}

// DotQ8 returns sum(x[i]*float32(w[i])) over len(x); len(w) >= len(x). The weight
// scale is the caller's business.
func DotQ8(x []float32, w []int8) float32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	w = w[:n]
	return dotQ8Impl(x, w)
}

// Dot4 computes out[r] = Dot(x[r*ldx:r*ldx+n], w) for r < 4, reading w once.
// Bit-identical to four Dot calls.
func Dot4(out *[4]float32, x []float32, ldx, n int, w []float32) {
	if n <= 0 {
		checkRows(n, ldx, len(x))
		*out = [4]float32{}
		return
	}
	checkRows(n, ldx, len(x))
	w = w[:n]
	dot4Impl(out, x, ldx, n, w)
}

// Dot4Q8 is Dot4 with int8 weights; bit-identical to four DotQ8 calls.
func Dot4Q8(out *[4]float32, x []float32, ldx, n int, w []int8) {
	if n <= 0 {
		checkRows(n, ldx, len(x))
		*out = [4]float32{}
		return
	}
	checkRows(n, ldx, len(x))
	w = w[:n]
	dot4Q8Impl(out, x, ldx, n, w)
}

// checkRows panics unless rows x[r*ldx : r*ldx+n], r < 4, all lie inside x.
func checkRows(n, ldx, lenx int) {
	if n < 0 || ldx < 0 || (n > 0 && (ldx > lenx || 3*ldx+n > lenx)) {
		panic("kern: Dot4 rows out of range")
	}
}

// dot4Generic is the portable Dot4: four independent dotGeneric calls.
func dot4Generic(out *[4]float32, x []float32, ldx, n int, w []float32) {
	for r := 0; r < 4; r++ {
		out[r] = dotGeneric(x[r*ldx:r*ldx+n], w)
	}
}

// dot4Q8Generic is the portable Dot4Q8.
func dot4Q8Generic(out *[4]float32, x []float32, ldx, n int, w []int8) {
	for r := 0; r < 4; r++ {
		out[r] = dotQ8Generic(x[r*ldx:r*ldx+n], w)
	}
}
