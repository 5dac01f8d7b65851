package ggml

import "math"

// 8-bit types.
//
//	Q8_0 (34 bytes, 32 values): d fp16 @0, qs int8[32] @2; y = qs[i]·d
//	Q8_K (292 bytes, 256 values): d float32 @0, qs int8[256] @4, bsums int16[16] @260
//	  (the sum of each 16 consecutive qs); y = d·qs[i]. Q8_K is the activation type
//	  of llama.cpp's K-quant dot products and never occurs in a GGUF file.

func dequantQ8_0(y []float32, b []byte) {
	d := f16(b[0:])
	for i := range 32 {
		y[i] = float32(int8(b[2+i])) * d
	}
}

// quantQ8_0: d = amax/127; q = round(x/d) (half away from zero), 1/d from the unrounded d.
func quantQ8_0(b []byte, x []float32) {
	var amax float32
	for _, v := range x[:32] {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b[0:], d)
	for i, v := range x[:32] {
		b[2+i] = byte(int8(math.Round(float64(float32(v * id)))))
	}
}

func dequantQ8_K(y []float32, b []byte) {
	d := math.Float32frombits(le32(b))
	for i := range QK_K {
		y[i] = d * float32(int8(b[4+i]))
	}
}

// quantQ8_K: iscale = -127/max (max the value of largest magnitude); q = min(127,
// nearest(iscale·x)); d = 1/iscale stored as float32.
func quantQ8_K(b []byte, x []float32) {
	var amax, mx float32
	for _, v := range x[:QK_K] {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax == 0 {
		return // d = 0, all quants 0 (b was cleared)
	}
	iscale := -127 / mx
	for j, v := range x[:QK_K] {
		b[4+j] = byte(int8(min(127, nearestInt(float32(iscale*v)))))
	}
	for j := range QK_K / 16 {
		var sum int
		for _, q := range b[4+16*j : 4+16*j+16] {
			sum += int(int8(q))
		}
		put16(b[260+2*j:], uint16(int16(sum)))
	}
	put32(b, math.Float32bits(1/iscale))
}
