package ggml

import "math"

// Legacy 4-bit types: blocks of 32 values, one fp16 scale (and for Q4_1 an fp16 min).
//
//	Q4_0 (18 bytes): d fp16 @0, qs[16] @2
//	Q4_1 (20 bytes): d fp16 @0, m fp16 @2, qs[16] @4
//
// Nibble order (all legacy types): qs[j]&15 is value j, qs[j]>>4 is value j+16, for
// j = 0..15 — halves, not interleaved.
//
//	Q4_0: y[j] = (nibble - 8)·d
//	Q4_1: y[j] = nibble·d + m

func dequantQ4_0(y []float32, b []byte) {
	d := f16(b[0:])
	qs := b[2:18]
	for j := 0; j < 16; j++ {
		y[j] = float32(int(qs[j]&15)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// quantQ4_0: d = max/-8 where max is the value of largest magnitude (so it maps to -8
// exactly and the other side gets up to +7); q = min(15, trunc(x/d + 8.5)), with 1/d
// taken from the unrounded d.
func quantQ4_0(b []byte, x []float32) {
	var amax, mx float32
	for _, v := range x[:32] {
		if a := abs32(v); amax < a {
			amax, mx = a, v
		}
	}
	d := mx / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b[0:], d)
	for j := 0; j < 16; j++ {
		x0 := float32(x[j] * id)
		x1 := float32(x[j+16] * id)
		q0 := min(15, int8(x0+8.5))
		q1 := min(15, int8(x1+8.5))
		b[2+j] = uint8(q0) | uint8(q1)<<4
	}
}

func dequantQ4_1(y []float32, b []byte) {
	d, m := f16(b[0:]), f16(b[2:])
	qs := b[4:20]
	for j := 0; j < 16; j++ {
		y[j] = float32(float32(qs[j]&15)*d) + m
		y[j+16] = float32(float32(qs[j]>>4)*d) + m
	}
}

// quantQ4_1: d = (max-min)/15, m = min; q = min(15, trunc((x-min)/d + 0.5)).
func quantQ4_1(b []byte, x []float32) {
	lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
	for _, v := range x[:32] {
		lo, hi = min(lo, v), max(hi, v)
	}
	d := (hi - lo) / 15
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b[0:], d)
	putF16(b[2:], lo)
	for j := 0; j < 16; j++ {
		x0 := float32((x[j] - lo) * id)
		x1 := float32((x[j+16] - lo) * id)
		q0 := min(15, int8(x0+0.5))
		q1 := min(15, int8(x1+0.5))
		b[4+j] = uint8(q0) | uint8(q1)<<4
	}
}
