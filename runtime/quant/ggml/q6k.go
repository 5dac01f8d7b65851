package ggml

// Q6_K: super-blocks of 256 values in 16 groups of 16, 6-bit levels with a signed 8-bit
// scale per group, no min (210 bytes):
//
//	ql[128]         @0    low four bits
//	qh[64]          @128  high two bits
//	scales int8[16] @192
//	d fp16          @208
//
// Value i: half = i/128, g = (i%128)/32, l = i%32;
// lb = ql[64·half + 32·(g%2) + l]; low = g<2 ? lb&15 : lb>>4;
// hi = (qh[32·half + l] >> 2g) & 3; q = (low | hi<<4) − 32; y = (d·scales[i/16])·q
// (d·scale first: the product with q is not always exact, so the order matters).

func dequantQ6_K(y []float32, b []byte) {
	ql, qh, scales := b[0:128], b[128:192], b[192:208]
	d := f16(b[208:])
	for i := range QK_K {
		half, g, l := i/128, i%128/32, i%32
		lb := ql[64*half+32*(g%2)+l]
		low := lb & 15
		if g >= 2 {
			low = lb >> 4
		}
		hi := qh[32*half+l] >> (2 * g) & 3
		q := int(low|hi<<4) - 32
		ds := d * float32(int8(scales[i/16]))
		y[i] = ds * float32(q)
	}
}

// quantQ6_K: each group's scale from makeQXQuants; the scales quantized to int8 against
// the one of largest magnitude (d = that/-128), then the levels recomputed against the
// stored scales. A super-block of (near) zeros is all zero bytes.
func quantQ6_K(b []byte, x []float32) {
	var L [QK_K]int8
	var scales [16]float32
	var maxAbs, maxScale float32
	for g := range 16 {
		scales[g] = makeQXQuants(x[16*g:16*g+16], 32, L[16*g:16*g+16])
		if a := abs32(scales[g]); a > maxAbs {
			maxAbs, maxScale = a, scales[g]
		}
	}
	if maxAbs < groupMaxEps {
		return // b was cleared: d = 0
	}
	iscale := -128 / maxScale
	putF16(b[208:], 1/iscale)
	sc := b[192:208]
	for g := range 16 {
		sc[g] = byte(int8(min(127, nearestInt(float32(iscale*scales[g])))))
	}
	d := f16(b[208:])
	for g := range 16 {
		dg := d * float32(int8(sc[g]))
		if dg == 0 {
			continue // the group keeps the levels of its search
		}
		for l := range 16 {
			L[16*g+l] = int8(clampInt(nearestInt(x[16*g+l]/dg), -32, 31) + 32)
		}
	}
	ql, qh := b[0:128], b[128:192]
	for h := range 2 {
		for l := range 32 {
			q := func(g int) uint8 { return uint8(L[128*h+32*g+l]) }
			ql[64*h+l] = q(0)&15 | (q(2)&15)<<4
			ql[64*h+l+32] = q(1)&15 | (q(3)&15)<<4
			qh[32*h+l] = q(0)>>4 | q(1)>>4<<2 | q(2)>>4<<4 | q(3)>>4<<6
		}
	}
}
