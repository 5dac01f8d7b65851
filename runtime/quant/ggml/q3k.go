package ggml

// Q3_K: super-blocks of 256 values in 16 groups of 16, 3-bit levels (two low bits in
// qs, the high bit in hmask) with a signed 6-bit scale per group, no min (110 bytes):
//
//	hmask[32]  @0    bit i/32 of hmask[i%32] is the high bit of value i
//	qs[64]     @32   low two bits, packed as Q2_K's
//	scales[12] @96   16 six-bit scales: low four bits in scales[0..7] (groups 0-7 in the
//	                 low nibbles, 8-15 in the high ones), high two bits in scales[8..11]
//	d fp16     @108
//
// Group k's scale: sc = low4 | hi2<<4 with low4 = scales[k]&15 (k<8) or scales[k-8]>>4
// (k>=8) and hi2 = (scales[8+k%4] >> 2·(k/4)) & 3. Value i (half, j, l as in Q2_K):
// q = (qs[32·half + l] >> 2j) & 3, h = (hmask[l] >> (4·half + j)) & 1;
// y = d·(sc[i/16] − 32)·(q − (h ? 0 : 4)).

// q3Scale is group k's 6-bit scale, 0..63 (subtract 32 for the signed value).
func q3Scale(scales []byte, k int) int {
	var low int
	if k < 8 {
		low = int(scales[k] & 15)
	} else {
		low = int(scales[k-8] >> 4)
	}
	return low | int(scales[8+k%4]>>(2*(k/4))&3)<<4
}

func dequantQ3_K(y []float32, b []byte) {
	hmask, qs, scales := b[0:32], b[32:96], b[96:108]
	d := f16(b[108:])
	for i := range QK_K {
		half, j, l := i/128, i%128/32, i%32
		q := int(qs[32*half+l] >> (2 * j) & 3)
		if hmask[l]>>(4*half+j)&1 == 0 {
			q -= 4
		}
		dl := d * float32(q3Scale(scales, i/16)-32)
		y[i] = dl * float32(q)
	}
}

// quantQ3_K: each group's scale comes from makeQ3Quants; the scales are quantized to
// signed 6 bits against the one of largest magnitude (d = that/-32) and the levels
// recomputed against the stored scales.
func quantQ3_K(b []byte, x []float32) {
	var L [QK_K]int8
	var scales [16]float32
	var amax, maxScale float32
	for g := range 16 {
		scales[g] = makeQ3Quants(x[16*g:16*g+16], 4, L[16*g:16*g+16])
		if a := abs32(scales[g]); a > amax {
			amax, maxScale = a, scales[g]
		}
	}
	sc := b[96:108]
	if maxScale != 0 {
		iscale := -32 / maxScale
		for g := range 16 {
			l := uint8(clampInt(int(int8(nearestInt(float32(iscale*scales[g])))), -32, 31) + 32)
			if g < 8 {
				sc[g] = l & 15
			} else {
				sc[g-8] |= (l & 15) << 4
			}
			sc[8+g%4] |= l >> 4 << (2 * (g / 4))
		}
		putF16(b[108:], 1/iscale)
	}
	d := f16(b[108:])
	for g := range 16 {
		dg := d * float32(q3Scale(sc, g)-32)
		if dg == 0 {
			continue // the group keeps the levels of its search
		}
		for l := range 16 {
			L[16*g+l] = int8(clampInt(nearestInt(x[16*g+l]/dg), -4, 3) + 4)
		}
	}
	var low [QK_K]uint8
	hmask := b[0:32]
	for i, l := range L {
		if l > 3 {
			hmask[i%32] |= 1 << (i / 32)
			l -= 4
		}
		low[i] = uint8(l)
	}
	packLevels2(b[32:96], low[:])
}
