package ggml

// Q2_K: super-blocks of 256 values in 16 groups of 16, 2-bit levels with a 4-bit scale
// and a 4-bit min per group (84 bytes):
//
//	scales[16] @0   group g: scale = scales[g]&15, min = scales[g]>>4
//	qs[64]     @16  2-bit levels, four per byte (see below)
//	d    fp16  @80  super-block scale of the scales
//	dmin fp16  @82  super-block scale of the mins
//
// Value i: half = i/128, j = (i%128)/32, l = i%32; q = (qs[32·half + l] >> 2j) & 3;
// s = scales[i/16]; y = d·(s&15)·q − dmin·(s>>4).

func dequantQ2_K(y []float32, b []byte) {
	scales, qs := b[0:16], b[16:80]
	d, dmin := f16(b[80:]), f16(b[82:])
	for i := range QK_K {
		half, j, l := i/128, i%128/32, i%32
		q := qs[32*half+l] >> (2 * j) & 3
		s := scales[i/16]
		dl, ml := d*float32(s&15), dmin*float32(s>>4)
		y[i] = float32(dl*float32(q)) - ml
	}
}

// packLevels2 stores 256 two-bit levels as Q2_K and Q3_K do: within each half of 128,
// byte l holds levels l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7.
func packLevels2(qs []byte, L []uint8) {
	for h := 0; h < QK_K; h += 128 {
		for l := range 32 {
			qs[h/4+l] = L[h+l] | L[h+l+32]<<2 | L[h+l+64]<<4 | L[h+l+96]<<6
		}
	}
}

// quantQ2_K: each group's scale and min come from makeQKX2Quants (weights |x|, absolute
// error); the 16 scales and 16 mins are then quantized to 4 bits against the largest of
// each, and the levels recomputed against the stored, rounded scales.
func quantQ2_K(b []byte, x []float32) {
	var L [QK_K]uint8
	var aux [16]uint8
	var weights, mins, scales [16]float32
	var maxScale, maxMin float32
	for g := range 16 {
		xs := x[16*g : 16*g+16]
		for l, v := range xs {
			weights[l] = abs32(v)
		}
		scales[g] = makeQKX2Quants(xs, weights[:], 3, L[16*g:16*g+16], aux[:], &mins[g], -0.5, 0.1, 15, true)
		maxScale = max(maxScale, scales[g])
		maxMin = max(maxMin, mins[g])
	}
	sc := b[0:16]
	if maxScale > 0 {
		iscale := 15 / maxScale
		for g := range 16 {
			sc[g] = uint8(nearestInt(float32(iscale * scales[g])))
		}
		putF16(b[80:], maxScale/15)
	}
	if maxMin > 0 {
		iscale := 15 / maxMin
		for g := range 16 {
			sc[g] |= uint8(nearestInt(float32(iscale*mins[g])) << 4)
		}
		putF16(b[82:], maxMin/15)
	}
	d, dmin := f16(b[80:]), f16(b[82:])
	for g := range 16 {
		dg := d * float32(sc[g]&15)
		if dg == 0 {
			continue // the group keeps the levels of its search
		}
		dm := dmin * float32(sc[g]>>4)
		for l := range 16 {
			L[16*g+l] = uint8(clampInt(nearestInt((x[16*g+l]+dm)/dg), 0, 3))
		}
	}
	packLevels2(b[16:80], L[:])
}
