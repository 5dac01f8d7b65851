package kern

// Attention inner loops for 8-wide heads (stories260K and other tiny models), where a
// call per key row would cost more than its 8 multiply-adds.

// Scores8 sets dst[j] = scale·(q·k[8j:8j+8]) for j < len(dst); len(q) >= 8,
// len(k) >= 8·len(dst). Every level computes each score the same way, bit for bit:
// the 8 products rounded, summed ((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7)), then scaled.
func Scores8(dst, q, k []float32, scale float32) {
	n := len(dst)
	if n == 0 {
		return
	}
	q = q[:8]
	k = k[:8*n]
	done := 0
	if level >= levelAVX2 {
		done = n &^ 7
		if done > 0 {
			scores8Impl(dst[:done], q, k, scale)
		}
	}
	scores8Generic(dst[done:], q, k[8*done:], scale)
}

func scores8Generic(dst, q, k []float32, scale float32) {
	q0, q1, q2, q3, q4, q5, q6, q7 := q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7]
	for j := range dst {
		r := k[j*8 : j*8+8 : j*8+8]
		// The conversions round each product (no fused multiply-add), as VMULPS does.
		a := float32(q0*r[0]) + float32(q1*r[1])
		b := float32(q2*r[2]) + float32(q3*r[3])
		c := float32(q4*r[4]) + float32(q5*r[5])
		d := float32(q6*r[6]) + float32(q7*r[7])
		dst[j] = ((a + b) + (c + d)) * scale
	}
}

// Weigh8 adds Σ_j w[j]·v[8j:8j+8] to out[:8]; len(v) >= 8·len(w). On AVX2 and
// AVX-512 position j is accumulated with FMA into one of four partial sums (j%4),
// summed (s0+s1)+(s2+s3) and then added to out; the portable level adds the products
// to out in order, so the levels agree to rounding.
func Weigh8(out, w, v []float32) {
	n := len(w)
	if n == 0 {
		return
	}
	out = out[:8]
	v = v[:8*n]
	if level >= levelAVX2 {
		weigh8Impl(out, w, v)
		return
	}
	weigh8Generic(out, w, v)
}

func weigh8Generic(out, w, v []float32) {
	o0, o1, o2, o3, o4, o5, o6, o7 := out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]
	for j, a := range w {
		r := v[j*8 : j*8+8 : j*8+8]
		o0 += a * r[0]
		o1 += a * r[1]
		o2 += a * r[2]
		o3 += a * r[3]
		o4 += a * r[4]
		o5 += a * r[5]
		o6 += a * r[6]
		o7 += a * r[7]
	}
	out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7] = o0, o1, o2, o3, o4, o5, o6, o7
}
