package kern

import "encoding/binary"

// 2:4 sparse dot products: a weight row stored as its kept values (two per group of 4
// inputs) and 4-bit position codes (layout: runtime/backend/kinds.go), multiplied with
// a dense fp32 activation row. They read half the weights plus 1/16 byte of metadata
// per input, and gather the activations each value meets.
//
// Numerics (the contract Dot24 and Dot24x4 keep on a level, so a result depends only on
// its operands — batch invariance): the row's n inputs (n % 4 == 0) split into steps of
// 32 inputs (8 groups, 16 kept values, one little-endian 32-bit metadata word m) and a
// tail of fewer than 8 groups. Step s adds, into accumulator s%4 of 16 lanes, lane l:
// v[16s+l] · x[32s + 4(l/2) + ((m >> 2l) & 3)] — with one FMA on the avx512 level, a
// product then a sum on the portable one. The four accumulators reduce as the dense
// kernels' do ((A0+A1)+(A2+A3), then halves 256, 128, 64, 32 bits). The tail's groups
// are then added in order, each value's product rounded to float32 before its sum.
// Levels agree to rounding; Dot24 and Dot24x4 on one level agree bit for bit.

// checkSparse24 panics unless a row of n inputs (n % 4 == 0) has its values and
// metadata in v and meta.
func checkSparse24(n, lenv, lenmeta int) {
	if n%4 != 0 || lenv < n/2 || lenmeta < (n/4+1)/2 {
		panic("kern: 2:4 operands out of range")
	}
}

// Dot24 returns Σ_k x[k]·W[k] for the 2:4 row W of values v and metadata meta, over the
// n = len(x) inputs (a multiple of 4).
func Dot24(x, v []float32, meta []byte) float32 {
	n := len(x)
	checkSparse24(n, len(v), len(meta))
	steps := n / 32
	var s float32
	if steps > 0 {
		s = dot24Impl(x, v, meta, steps)
	}
	return tail24(s, x, n, 8*steps, v, meta)
}

// Dot24Q8 is Dot24 with int8 values (the row scale is the caller's).
func Dot24Q8(x []float32, v []int8, meta []byte) float32 {
	n := len(x)
	checkSparse24(n, len(v), len(meta))
	steps := n / 32
	var s float32
	if steps > 0 {
		s = dot24Q8Impl(x, v, meta, steps)
	}
	return tail24Q8(s, x, n, 8*steps, v, meta)
}

// Dot24x4 computes out[r] = Dot24(x[r*ldx : r*ldx+n], v, meta) for r < 4, reading the
// weight row once; bit-identical to four Dot24 calls.
func Dot24x4(out *[4]float32, x []float32, ldx, n int, v []float32, meta []byte) {
	checkRows(n, ldx, len(x))
	checkSparse24(n, len(v), len(meta))
	steps := n / 32
	*out = [4]float32{}
	if steps > 0 {
		dot24x4Impl(out, x, ldx, v, meta, steps)
	}
	for r := range out {
		out[r] = tail24(out[r], x[r*ldx:], n, 8*steps, v, meta)
	}
}

// Dot24x4Q8 is Dot24x4 with int8 values; bit-identical to four Dot24Q8 calls.
func Dot24x4Q8(out *[4]float32, x []float32, ldx, n int, v []int8, meta []byte) {
	checkRows(n, ldx, len(x))
	checkSparse24(n, len(v), len(meta))
	steps := n / 32
	*out = [4]float32{}
	if steps > 0 {
		dot24x4Q8Impl(out, x, ldx, v, meta, steps)
	}
	for r := range out {
		out[r] = tail24Q8(out[r], x[r*ldx:], n, 8*steps, v, meta)
	}
}

// tail24 adds groups [g0, n/4) of the row to s in order.
func tail24(s float32, x []float32, n, g0 int, v []float32, meta []byte) float32 {
	for g := g0; g < n/4; g++ {
		code := meta[g/2] >> (4 * (g % 2))
		s += float32(v[2*g] * x[4*g+int(code&3)])
		s += float32(v[2*g+1] * x[4*g+int(code>>2&3)])
	}
	return s
}

// tail24Q8 is tail24 with int8 values.
func tail24Q8(s float32, x []float32, n, g0 int, v []int8, meta []byte) float32 {
	for g := g0; g < n/4; g++ {
		code := meta[g/2] >> (4 * (g % 2))
		s += float32(float32(v[2*g]) * x[4*g+int(code&3)])
		s += float32(float32(v[2*g+1]) * x[4*g+int(code>>2&3)])
	}
	return s
}

// acc24 is the portable level's four 16-lane accumulators.
type acc24 [4][16]float32

// step adds step s of a row (values from v at 16s, metadata word at meta[4s:]).
func (a *acc24) step(x []float32, s int, v func(i int) float32, meta []byte) {
	m := binary.LittleEndian.Uint32(meta[4*s:])
	acc := &a[s%4]
	xs := x[32*s : 32*s+32]
	for l := 0; l < 16; l++ {
		acc[l] += v(16*s+l) * xs[4*(l/2)+int(m>>(2*l)&3)]
	}
}

// reduce folds the accumulators as REDUCE16 does.
func (a *acc24) reduce() float32 {
	var z [16]float32
	for l := range z {
		z[l] = (a[0][l] + a[1][l]) + (a[2][l] + a[3][l])
	}
	for w := 8; w >= 1; w /= 2 {
		for l := 0; l < w; l++ {
			z[l] += z[l+w]
		}
	}
	return z[0]
}

func dot24Generic(x, v []float32, meta []byte, steps int) float32 {
	var a acc24
	for s := 0; s < steps; s++ {
		a.step(x, s, func(i int) float32 { return v[i] }, meta)
	}
	return a.reduce()
}

func dot24Q8Generic(x []float32, v []int8, meta []byte, steps int) float32 {
	var a acc24
	for s := 0; s < steps; s++ {
		a.step(x, s, func(i int) float32 { return float32(v[i]) }, meta)
	}
	return a.reduce()
}
