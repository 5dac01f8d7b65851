//go:build !amd64

package kern

func dot24Impl(x, v []float32, meta []byte, steps int) float32 {
	return dot24Generic(x, v, meta, steps)
}

func dot24Q8Impl(x []float32, v []int8, meta []byte, steps int) float32 {
	return dot24Q8Generic(x, v, meta, steps)
}

func dot24x4Impl(out *[4]float32, x []float32, ldx int, v []float32, meta []byte, steps int) {
	for r := range out {
		out[r] = dot24Generic(x[r*ldx:], v, meta, steps)
	}
}

func dot24x4Q8Impl(out *[4]float32, x []float32, ldx int, v []int8, meta []byte, steps int) {
	for r := range out {
		out[r] = dot24Q8Generic(x[r*ldx:], v, meta, steps)
	}
}
