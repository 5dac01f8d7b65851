//go:build !amd64

package kern

func quantQ8KFast(rec []byte, x []float32) bool { return false }

func quantQ8_0Fast(act []byte, x []float32, corr int32) bool { return false }
