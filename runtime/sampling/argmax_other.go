//go:build !amd64

package sampling

func argmaxImpl(x []float32) int { return argmaxGeneric(x) }
