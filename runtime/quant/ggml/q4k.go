package ggml

import "math"

// Q4_K: super-blocks of 256 values in 8 groups of 32, 4-bit levels with a 6-bit scale
// and a 6-bit min per group (144 bytes):
//
//	d    fp16   @0
//	dmin fp16   @2
//	scales[12]  @4   eight 6-bit scales and eight 6-bit mins (scaleMinK4)
//	qs[128]     @16  group s: byte qs[32·(s/2) + l], low nibble for even s, high for odd
//
// Value i: s = i/32, l = i%32; y = d·sc[s]·q − dmin·m[s].
//
// The scale/min packing (shared with Q5_K): for s < 4, sc = scales[s]&63 and
// m = scales[s+4]&63; for s >= 4, sc = scales[s+4]&15 | (scales[s-4]>>6)<<4 and
// m = scales[s+4]>>4 | (scales[s]>>6)<<4.

// scaleMinK4 unpacks group s's 6-bit scale and min.
func scaleMinK4(s int, q []byte) (sc, m uint8) {
	if s < 4 {
		return q[s] & 63, q[s+4] & 63
	}
	return q[s+4]&15 | q[s-4]>>6<<4, q[s+4]>>4 | q[s]>>6<<4
}

// packScaleMinK4 packs eight 6-bit scales and mins into q[0:12] (cleared by the caller).
func packScaleMinK4(q []byte, ls, lm *[8]uint8) {
	for s := range 8 {
		if s < 4 {
			q[s] = ls[s]
			q[s+4] = lm[s]
		} else {
			q[s+4] = ls[s]&15 | (lm[s]&15)<<4
			q[s-4] |= ls[s] >> 4 << 6
			q[s] |= lm[s] >> 4 << 6
		}
	}
}

func dequantQ4_K(y []float32, b []byte) {
	d, dmin := f16(b[0:]), f16(b[2:])
	scales, qs := b[4:16], b[16:144]
	for s := range 8 {
		sc, m := scaleMinK4(s, scales)
		ds, ms := d*float32(sc), dmin*float32(m)
		for l := range 32 {
			q := qs[32*(s/2)+l]
			if s%2 == 0 {
				q &= 15
			} else {
				q >>= 4
			}
			y[32*s+l] = float32(ds*float32(q)) - ms
		}
	}
}

// quantScaleMinK quantizes the groups of a Q4_K or Q5_K super-block: each group's scale
// and min from makeQKX2Quants (weights rms(group) + |x|, squared error), then all eight
// of each to 6 bits against the largest (d = max/63), then the levels recomputed
// against the stored values. It fills d, dmin and scales (b[0:16]) and returns the
// levels.
func quantScaleMinK(b []byte, x []float32, nmax int, rmin, rdelta float32, nstep int) (L [QK_K]uint8) {
	var aux [32]uint8
	var weights [32]float32
	var scales, mins [8]float32
	var maxScale, maxMin float32
	for s := range 8 {
		xs := x[32*s : 32*s+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[s] = makeQKX2Quants(xs, weights[:], nmax, L[32*s:32*s+32], aux[:], &mins[s], rmin, rdelta, nstep, false)
		maxScale = max(maxScale, scales[s])
		maxMin = max(maxMin, mins[s])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	var ls, lm [8]uint8
	for s := range 8 {
		ls[s] = min(63, uint8(nearestInt(float32(invScale*scales[s]))))
		lm[s] = min(63, uint8(nearestInt(float32(invMin*mins[s]))))
	}
	packScaleMinK4(b[4:16], &ls, &lm)
	putF16(b[0:], maxScale/63)
	putF16(b[2:], maxMin/63)
	d, dmin := f16(b[0:]), f16(b[2:])
	for s := range 8 {
		sc, m := scaleMinK4(s, b[4:16])
		ds := d * float32(sc)
		if ds == 0 {
			continue // the group keeps the levels of its search
		}
		dm := dmin * float32(m)
		for l := range 32 {
			L[32*s+l] = uint8(clampInt(nearestInt((x[32*s+l]+dm)/ds), 0, nmax))
		}
	}
	return L
}

func quantQ4_K(b []byte, x []float32) {
	L := quantScaleMinK(b, x, 15, -1, 0.1, 20)
	qs := b[16:144]
	for c := range 4 { // 64 values per 32 bytes: group 2c in the low nibbles, 2c+1 high
		for l := range 32 {
			qs[32*c+l] = L[64*c+l] | L[64*c+l+32]<<4
		}
	}
}
