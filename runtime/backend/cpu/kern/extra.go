package kern

// Axpy computes dst[i] += a*x[i] for i < len(dst); len(x) >= len(dst). dst and x must
// not partially overlap. The assembly versions round once per element (FMA); the portable
// one twice.
func Axpy(dst []float32, a float32, x []float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	x = x[:n]
	axpyImpl(dst, a, x)
}

func axpyGeneric(dst []float32, a float32, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += a * x[i]
	}
}

// DotI8 returns the exact integer dot product sum(int32(x[i])*int32(w[i])) over
// len(x); len(w) >= len(x). This is a different numeric contract from DotQ8 (the
// activations are int8-quantized by the caller). Sums wrap like Go int32 arithmetic,
// which cannot happen below n = 131072.
func DotI8(x, w []int8) int32 {
	n := len(x)
	if n == 0 {
		return 0
	}
	w = w[:n]
	return dotI8Impl(x, w)
}

func dotI8Generic(x, w []int8) int32 {
	w = w[:len(x)]
	var s int32
	for i, v := range x {
		s += int32(v) * int32(w[i])
	}
	return s
}

// WeighRows adds Σ_j w[j]·v[j·len(out) : (j+1)·len(out)] to out, j in order: exactly
// len(w) calls of Axpy(out, w[j], row j), the same operations in the same order (one
// rounding per element per row at the assembly levels), but at AVX-512 in one call
// that keeps out in registers across the rows instead of loading and storing it per
// row (attention's weighting of the value rows: a 512-token prompt made 92 million
// Axpy calls of 64 values on the TinyLlama shape). len(v) >= len(w)·len(out).
func WeighRows(out, w, v []float32) {
	hd, n := len(out), len(w)
	if hd == 0 || n == 0 {
		return
	}
	v = v[:n*hd]
	if level == levelAVX512 {
		weighRowsImpl(out, w, v)
		return
	}
	for j, a := range w {
		axpyImpl(out, a, v[j*hd:(j+1)*hd])
	}
}
