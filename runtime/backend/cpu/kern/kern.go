package kern

// Dot returns sum(x[i]*w[i]) over len(x); len(w) >= len(x).
func Dot(x, w []float32) float32 { return dotGeneric(x, w) }

// DotQ8 returns sum(x[i]*float32(w[i])) over len(x); len(w) >= len(x).
func DotQ8(x []float32, w []int8) float32 { return dotQ8Generic(x, w) }

// Dot4 computes out[r] = Dot(x[r*ldx:r*ldx+n], w) for r < 4, reading w once.
// Bit-identical to four Dot calls.
func Dot4(out *[4]float32, x []float32, ldx, n int, w []float32) {
	for r := 0; r < 4; r++ {
		out[r] = dotGeneric(x[r*ldx:r*ldx+n], w)
	}
}

// Dot4Q8 is Dot4 with int8 weights; bit-identical to four DotQ8 calls.
func Dot4Q8(out *[4]float32, x []float32, ldx, n int, w []int8) {
	for r := 0; r < 4; r++ {
		out[r] = dotQ8Generic(x[r*ldx:r*ldx+n], w)
	}
}
