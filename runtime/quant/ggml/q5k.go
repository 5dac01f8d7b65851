package ggml

// Q5_K: Q4_K with a fifth bit per value (176 bytes):
//
//	d    fp16   @0
//	dmin fp16   @2
//	scales[12]  @4   as Q4_K (scaleMinK4)
//	qh[32]      @16  bit s of qh[l] is the high bit of value 32·s + l
//	qs[128]     @48  low four bits, as Q4_K's qs
//
// Value i: s = i/32, l = i%32; q = nibble + 16·((qh[l] >> s) & 1);
// y = d·sc[s]·q − dmin·m[s].

func dequantQ5_K(y []float32, b []byte) {
	d, dmin := f16(b[0:]), f16(b[2:])
	scales, qh, qs := b[4:16], b[16:48], b[48:176]
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
			q += (qh[l] >> s & 1) << 4
			y[32*s+l] = float32(ds*float32(q)) - ms
		}
	}
}

func quantQ5_K(b []byte, x []float32) {
	L := quantScaleMinK(b, x, 31, -0.5, 0.1, 15)
	qh, qs := b[16:48], b[48:176]
	for i, q := range L {
		s, l := i/32, i%32
		if q > 15 {
			q -= 16
			qh[l] |= 1 << s
		}
		qs[32*(s/2)+l] |= q << (4 * (s % 2))
	}
}
