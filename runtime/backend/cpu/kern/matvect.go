package kern

// MatVecT computes dst[j] (+)= Σ_k x[k]·wt[k·ld + j] for j < len(dst), k < len(x): a
// small matrix stored transposed ([in][ld], output j in column j), so that each
// activation is broadcast against a row of outputs and no horizontal sum is needed.
// It is how the CPU backend multiplies matrices small enough to stay in cache, where
// the per-row reductions of Dot4 cost more than the multiply-adds (stories260K).
//
// Numerics: output j sums the even k and the odd k separately, each with one FMA per
// term in increasing k, then adds the two. The AVX-512 level does exactly that; the
// portable one rounds product and sum separately, so the levels agree to rounding.
// The result for column j never depends on which other columns are computed with it.
func MatVecT(dst, x, wt []float32, ld int, accumulate bool) {
	m, in := len(dst), len(x)
	if m == 0 {
		return
	}
	if in == 0 {
		if !accumulate {
			clear(dst)
		}
		return
	}
	if ld < m || len(wt) < (in-1)*ld+m {
		panic("kern: MatVecT matrix out of range")
	}
	matVecTImpl(dst, x, wt, ld, accumulate)
}

func matVecTGeneric(dst, x, wt []float32, ld int, accumulate bool) {
	for j := range dst {
		var a, b float32
		k := 0
		for ; k+2 <= len(x); k += 2 {
			a += x[k] * wt[k*ld+j]
			b += x[k+1] * wt[(k+1)*ld+j]
		}
		if k < len(x) {
			a += x[k] * wt[k*ld+j]
		}
		if accumulate {
			dst[j] += a + b
		} else {
			dst[j] = a + b
		}
	}
}

// MatVecT4 is MatVecT for four activation rows at once (x[t·ldx:], t < 4, each len(x0)
// values; results to dst[t·ldd:], m columns each), reading each weight vector once for
// the four: bit-identical to four MatVecT calls.
func MatVecT4(dst []float32, ldd int, x []float32, ldx, in int, wt []float32, ld, m int, accumulate bool) {
	if m <= 0 {
		return
	}
	if in <= 0 || ld < m || len(wt) < (in-1)*ld+m || ldd < m || len(dst) < 3*ldd+m || ldx < in || len(x) < 3*ldx+in {
		panic("kern: MatVecT4 operands out of range")
	}
	if matVecT4Impl(dst, ldd, x, ldx, in, wt, ld, m, accumulate) {
		return
	}
	for t := 0; t < 4; t++ {
		matVecTImpl(dst[t*ldd:t*ldd+m], x[t*ldx:t*ldx+in], wt, ld, accumulate)
	}
}
