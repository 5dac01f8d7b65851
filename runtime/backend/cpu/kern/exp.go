package kern

import "math"

// ExpShift replaces each w[i] by e^(w[i]-mx) and returns their sum: the exponentials
// of a softmax. mx must be >= every w[i] (the row maximum), so every argument is <= 0;
// arguments below -87.3 (or NaN) give 0. Accuracy about 2 ulp (Cephes' polynomial
// after splitting off a power of two). The sum's order is fixed for each
// implementation level: the result depends only on the values.
func ExpShift(w []float32, mx float32) float32 {
	if len(w) == 0 {
		return 0
	}
	return expShiftImpl(w, mx)
}

// expShiftGeneric is the portable version; the assembly follows the same steps
// 16 lanes at a time.
func expShiftGeneric(w []float32, mx float32) float32 {
	var sum float32
	for i, v := range w {
		e := expNeg(v - mx)
		w[i] = e
		sum += e
	}
	return sum
}

// SiLUMul sets out[i] = silu(gate[i])·up[i] = gate·up / (1 + e^-gate) for i <
// len(out); gate and up must be at least as long.
func SiLUMul(out, gate, up []float32) {
	n := len(out)
	if n == 0 {
		return
	}
	siluMulImpl(out, gate[:n], up[:n])
}

func siluMulGeneric(out, gate, up []float32) {
	for i, g := range gate[:len(out)] {
		out[i] = g * up[i] / (1 + expAny(-g))
	}
}

// expAny is e^x for any x, within the range the polynomial serves: 0 below -87.34,
// +Inf above 87.34 (silu only needs e^x to swamp 1 there).
func expAny(x float32) float32 {
	if x > -expMin {
		return float32(math.Inf(1))
	}
	if x <= 0 || x != x {
		return expNeg(x)
	}
	// e^x = 1/e^-x keeps the one polynomial (x <= 88.7: e^-x is a normal float).
	return 1 / expNeg(-x)
}

// expNeg is e^x for x <= 0.
func expNeg(x float32) float32 {
	if !(x >= expMin) {
		return 0
	}
	t := x*log2e - 0.5 // x <= 0: truncating t rounds x·log2(e) to nearest
	ni := int32(t)
	n := float32(ni)
	r := x - n*ln2Hi
	r -= n * ln2Lo
	p := float32(expC0)
	p = p*r + expC1
	p = p*r + expC2
	p = p*r + expC3
	p = p*r + expC4
	p = p*r + expC5
	p = p*r*r + r + 1
	return p * math.Float32frombits(uint32(ni+127)<<23)
}

const (
	expMin = -87.33654
	log2e  = 1.44269504088896341
	ln2Hi  = 0.693359375
	ln2Lo  = -2.12194440e-4
	expC0  = 1.9875691500e-4
	expC1  = 1.3981999507e-3
	expC2  = 8.3334519073e-3
	expC3  = 4.1665795894e-2
	expC4  = 1.6666665459e-1
	expC5  = 5.0000001201e-1
)

// Max returns the largest element of w (len(w) > 0). The elements must not be NaN.
func Max(w []float32) float32 {
	if len(w) == 0 {
		panic("kern: Max of nothing")
	}
	return maxImpl(w)
}

func maxGeneric(w []float32) float32 {
	mx := w[0]
	for _, v := range w[1:] {
		if v > mx {
			mx = v
		}
	}
	return mx
}
