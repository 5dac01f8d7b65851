package ggml

import "math"

// Legacy 5-bit types: blocks of 32 values; the low four bits of each value are nibbles
// as in Q4_0 (qs[j]&15 is value j, qs[j]>>4 is value j+16) and the fifth bit of value i
// is bit i of the 32-bit qh.
//
//	Q5_0 (22 bytes): d fp16 @0, qh u32 @2, qs[16] @6;          y = (q - 16)·d
//	Q5_1 (24 bytes): d fp16 @0, m fp16 @2, qh u32 @4, qs[16] @8; y = q·d + m

// q5Values unpacks the 32 five-bit values of a block.
func q5Values(qh uint32, qs []byte) (q [32]uint8) {
	for j := 0; j < 16; j++ {
		q[j] = qs[j]&15 | uint8(qh>>j&1)<<4
		q[j+16] = qs[j]>>4 | uint8(qh>>(j+16)&1)<<4
	}
	return q
}

// q5Pack packs 32 five-bit values (only their low five bits count) into qh and qs.
func q5Pack(q *[32]uint8, qs []byte) (qh uint32) {
	for j := 0; j < 16; j++ {
		qs[j] = q[j]&15 | (q[j+16]&15)<<4
		qh |= uint32(q[j]>>4&1)<<j | uint32(q[j+16]>>4&1)<<(j+16)
	}
	return qh
}

func dequantQ5_0(y []float32, b []byte) {
	d := f16(b[0:])
	q := q5Values(le32(b[2:]), b[6:22])
	for i, v := range q {
		y[i] = float32(int(v)-16) * d
	}
}

// quantQ5_0: d = max/-16 (max the value of largest magnitude); q = min(31, trunc(x/d + 16.5)).
func quantQ5_0(b []byte, x []float32) {
	var amax, mx float32
	for _, v := range x[:32] {
		if a := abs32(v); amax < a {
			amax, mx = a, v
		}
	}
	d := mx / -16
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b[0:], d)
	var q [32]uint8
	for i, v := range x[:32] {
		q[i] = uint8(min(31, int8(float32(v*id)+16.5)))
	}
	put32(b[2:], q5Pack(&q, b[6:22]))
}

func dequantQ5_1(y []float32, b []byte) {
	d, m := f16(b[0:]), f16(b[2:])
	q := q5Values(le32(b[4:]), b[8:24])
	for i, v := range q {
		y[i] = float32(float32(v)*d) + m
	}
}

// quantQ5_1: d = (max-min)/31, m = min; q = trunc((x-min)/d + 0.5), unclamped as in ggml
// (a rounding up to 32 keeps its low five bits).
func quantQ5_1(b []byte, x []float32) {
	lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
	for _, v := range x[:32] {
		lo, hi = min(lo, v), max(hi, v)
	}
	d := (hi - lo) / 31
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(b[0:], d)
	putF16(b[2:], lo)
	var q [32]uint8
	for i, v := range x[:32] {
		q[i] = uint8(float32((v-lo)*id) + 0.5)
	}
	put32(b[4:], q5Pack(&q, b[8:24]))
}
