package ggml

import "math"

// The searches the K-quantizers share. Each finds, for a small group of values, a scale
// (and for the types with a min, an offset) and the integer levels L that best
// represent the group, exactly as ggml's reference code does, so the chosen levels and
// the bytes written are the same.

// groupMaxEps: a group whose largest magnitude is below this is all zeros.
const groupMaxEps = float32(1e-15)

// nearestInt rounds f to the nearest integer, ties to even, with ggml's trick: adding
// 1.5·2^23 leaves the integer in the low mantissa bits (valid for |f| < 2^22).
func nearestInt(f float32) int {
	v := float32(f) + 12582912
	return int(int32(math.Float32bits(v)&0x007fffff) - 0x00400000)
}

// clampInt limits v to [lo, hi].
func clampInt(v, lo, hi int) int { return max(lo, min(hi, v)) }

// makeQXQuants picks symmetric levels in [-nmax, nmax) for x, weighting each value by
// x², and returns the scale (L holds level+nmax). It starts from the scale that maps the
// largest magnitude to -nmax and tries 18 nearby ones, keeping the best weighted fit.
// ggml's make_qx_quants with rmse_type 1 and no importance weights (Q6_K's search).
func makeQXQuants(x []float32, nmax int, L []int8) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	fit := func(iscale float32, store bool) (sumlx, suml2 float32) {
		for i, v := range x {
			l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
			if store {
				L[i] = int8(l + nmax)
			}
			w := float32(v * v)
			fl := float32(l)
			sumlx += float32(float32(w*v) * fl)
			suml2 += float32(float32(w*fl) * fl)
		}
		return sumlx, suml2
	}
	iscale := float32(-nmax) / mx
	sumlx, suml2 := fit(iscale, true)
	var scale float32
	if suml2 != 0 {
		scale = sumlx / suml2
	}
	best := scale * sumlx
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + float32(0.1*float32(is))) / mx
		sumlx, suml2 = fit(iscale, false)
		if suml2 > 0 && sumlx*sumlx > best*suml2 {
			fit(iscale, true)
			scale = sumlx / suml2
			best = scale * sumlx
		}
	}
	return scale
}

// makeQ3Quants picks symmetric levels in [-nmax, nmax) for x (weights x²) and refines
// them one value at a time, up to five passes, while the weighted fit improves; it
// returns the least-squares scale and stores level+nmax in L. ggml's make_q3_quants with
// do_rmse (Q3_K's search).
func makeQ3Quants(x []float32, nmax int, L []int8) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, mx = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	iscale := float32(-nmax) / mx
	var sumlx, suml2 float32
	for i, v := range x {
		l := clampInt(nearestInt(float32(iscale*v)), -nmax, nmax-1)
		L[i] = int8(l)
		w := float32(v * v)
		fl := float32(l)
		sumlx += float32(float32(w*v) * fl)
		suml2 += float32(float32(w*fl) * fl)
	}
	for range 5 {
		changed := 0
		for i, v := range x {
			w := float32(v * v)
			li := float32(L[i])
			slx := sumlx - float32(float32(w*v)*li)
			if slx > 0 {
				sl2 := suml2 - float32(float32(w*li)*li)
				nl := clampInt(nearestInt(float32(v*sl2)/slx), -nmax, nmax-1)
				if nl != int(L[i]) {
					fl := float32(nl)
					slx += float32(float32(w*v) * fl)
					sl2 += float32(float32(w*fl) * fl)
					if sl2 > 0 && float32(slx*slx)*suml2 > float32(sumlx*sumlx)*sl2 {
						L[i] = int8(nl)
						sumlx, suml2 = slx, sl2
						changed++
					}
				}
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	if suml2 > 0 {
		return sumlx / suml2
	}
	return 0
}

// makeQKX2Quants fits x ≈ scale·L + min with levels L in [0, nmax] and min <= 0,
// minimizing the weighted error (absolute with mad, else squared): it starts from the
// range (min(x,0), max x) and tries nstep+1 stretched grids (iscale = (rmin + rdelta·is
// + nmax)/range), solving each for the least-squares scale and min. It returns the
// scale and stores -min (>= 0) in *theMin. ggml's make_qkx2_quants (Q2_K, Q4_K, Q5_K).
func makeQKX2Quants(x, weights []float32, nmax int, L, Laux []uint8, theMin *float32, rmin, rdelta float32, nstep int, mad bool) float32 {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		lo, hi = min(lo, x[i]), max(hi, x[i])
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(L[:n])
		*theMin = -lo
		return 0
	}
	errOf := func(scale, off float32, l uint8, v float32) float32 {
		diff := float32(float32(scale*float32(l))+off) - v
		if mad {
			return abs32(diff)
		}
		return float32(diff * diff)
	}
	iscale := float32(nmax) / (hi - lo)
	scale := 1 / iscale
	var bestErr float32
	for i, v := range x {
		L[i] = uint8(clampInt(nearestInt(float32(iscale*(v-lo))), 0, nmax))
		bestErr += float32(weights[i] * errOf(scale, lo, L[i], v))
	}
	if nstep < 1 {
		*theMin = -lo
		return scale
	}
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + float32(nmax)) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clampInt(nearestInt(float32(iscale*(v-lo))), 0, nmax)
			Laux[i] = uint8(l)
			w, fl := weights[i], float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * v)
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D > 0 {
			thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
			thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
			if thisMin > 0 {
				thisMin = 0
				thisScale = sumXL / sumL2
			}
			var cur float32
			for i, v := range x {
				cur += float32(weights[i] * errOf(thisScale, thisMin, Laux[i], v))
			}
			if cur < bestErr {
				copy(L[:n], Laux[:n])
				bestErr, scale, lo = cur, thisScale, thisMin
			}
		}
	}
	*theMin = -lo
	return scale
}
