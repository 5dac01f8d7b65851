package kern

// dotGeneric sums x[i]*w[i] in eight interleaved lanes, then folds them in a fixed order.
func dotGeneric(x, w []float32) float32 {
	n := len(x)
	w = w[:n]
	var s [8]float32
	i := 0
	for ; i+8 <= n; i += 8 {
		s[0] += x[i] * w[i]
		s[1] += x[i+1] * w[i+1]
		s[2] += x[i+2] * w[i+2]
		s[3] += x[i+3] * w[i+3]
		s[4] += x[i+4] * w[i+4]
		s[5] += x[i+5] * w[i+5]
		s[6] += x[i+6] * w[i+6]
		s[7] += x[i+7] * w[i+7]
	}
	t := ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
	for ; i < n; i++ {
		t += x[i] * w[i]
	}
	return t
}

// dotQ8Generic is dotGeneric with int8 weights converted to float on the fly.
func dotQ8Generic(x []float32, w []int8) float32 {
	n := len(x)
	w = w[:n]
	var s [8]float32
	i := 0
	for ; i+8 <= n; i += 8 {
		s[0] += x[i] * float32(w[i])
		s[1] += x[i+1] * float32(w[i+1])
		s[2] += x[i+2] * float32(w[i+2])
		s[3] += x[i+3] * float32(w[i+3])
		s[4] += x[i+4] * float32(w[i+4])
		s[5] += x[i+5] * float32(w[i+5])
		s[6] += x[i+6] * float32(w[i+6])
		s[7] += x[i+7] * float32(w[i+7])
	}
	t := ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
	for ; i < n; i++ {
		t += x[i] * float32(w[i])
	}
	return t
}
