package ggml

import "testing"

// BenchmarkQuantize: values per second of each reference quantizer on Gaussian data.
func BenchmarkQuantize(b *testing.B) {
	rng := newRand(3)
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = 0.02 * float32(rng.NormFloat64())
	}
	for _, typ := range []Type{Q8_0, Q4_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			dst := make([]byte, mustRowBytesB(b, typ, len(x)))
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := Quantize(typ, dst, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDequantize: the load-time cost per type.
func BenchmarkDequantize(b *testing.B) {
	rng := newRand(4)
	x := make([]float32, 1<<16)
	for i := range x {
		x[i] = 0.02 * float32(rng.NormFloat64())
	}
	for _, typ := range []Type{Q8_0, Q4_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			src := make([]byte, mustRowBytesB(b, typ, len(x)))
			if err := Quantize(typ, src, x); err != nil {
				b.Fatal(err)
			}
			y := make([]float32, len(x))
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if err := Dequantize(typ, y, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustRowBytesB(b *testing.B, typ Type, n int) int {
	r, err := typ.RowBytes(n)
	if err != nil {
		b.Fatal(err)
	}
	return r
}
