package grammar

import (
	"math/big"
	"strings"
)

// Numbers. JSON numbers are parsed by most clients into float64, so the grammar keeps
// every generated number exactly representable and every bound comparison exact:
//
//   - integers have at most 15 digits (|n| < 10^15 < 2^53); bounds are applied
//     exactly (a bound beyond that range only clamps it);
//   - numbers with bounds are written without exponent, with at most F fraction
//     digits and 15-F integer digits (F = 6, or what the bounds' own digits need), so
//     every generated value and every bound has at most 15 significant digits: distinct
//     such decimals are distinct doubles and rounding keeps their order, so
//     exclusive bounds hold after parsing too. Bounds that need more than 15
//     significant digits are refused;
//   - numbers without bounds: up to 15 integer digits, 15 fraction digits and a
//     two-digit exponent (never overflowing a double).

const (
	maxIntDigits   = 15
	maxSigDigits   = 15
	defaultFracDig = 6
)

var ten = big.NewInt(10)

func pow10(n int) *big.Int { return new(big.Int).Exp(ten, big.NewInt(int64(n)), nil) }

// natFixed matches the decimal strings of length len(x) between x and y (same length,
// x <= y), digit by digit.
func (a *nfa) natFixed(x, y string) frag {
	if len(x) == 0 {
		return a.empty()
	}
	if len(x) == 1 {
		return a.rng(x[0], y[0])
	}
	if strings.Trim(x, "0") == "" && strings.Trim(y, "9") == "" {
		parts := make([]frag, len(x))
		for i := range parts {
			parts[i] = a.rng('0', '9')
		}
		return a.seq(parts...)
	}
	if x[0] == y[0] {
		return a.seq(a.lit(x[:1]), a.natFixed(x[1:], y[1:]))
	}
	n := len(x) - 1
	nines, zeros := strings.Repeat("9", n), strings.Repeat("0", n)
	parts := []frag{a.seq(a.lit(x[:1]), a.natFixed(x[1:], nines))}
	if x[0]+1 <= y[0]-1 {
		parts = append(parts, a.seq(a.rng(x[0]+1, y[0]-1), a.natFixed(zeros, nines)))
	}
	parts = append(parts, a.seq(a.lit(y[:1]), a.natFixed(zeros, y[1:])))
	return a.alt(parts...)
}

// natRange matches the canonical decimal forms (no leading zeros) of the integers in
// [lo, hi], 0 <= lo <= hi.
func (a *nfa) natRange(lo, hi *big.Int) frag {
	var parts []frag
	if lo.Sign() == 0 {
		parts = append(parts, a.lit("0"))
		lo = big.NewInt(1)
	}
	if lo.Cmp(hi) <= 0 {
		ls, hs := lo.String(), hi.String()
		for n := len(ls); n <= len(hs); n++ {
			x, y := strings.Repeat("0", n), strings.Repeat("9", n)
			x = "1" + x[1:]
			if n == len(ls) {
				x = ls
			}
			if n == len(hs) {
				y = hs
			}
			parts = append(parts, a.natFixed(x, y))
		}
	}
	if len(parts) == 0 {
		return a.none()
	}
	return a.alt(parts...)
}

// intRange matches the integers in [lo, hi] (canonical form, no "-0").
func (a *nfa) intRange(lo, hi *big.Int) frag {
	if lo.Cmp(hi) > 0 {
		return a.none()
	}
	var parts []frag
	if lo.Sign() < 0 {
		negHi := new(big.Int).Neg(lo)
		negLo := big.NewInt(1)
		if hi.Sign() < 0 {
			negLo = new(big.Int).Neg(hi)
		}
		parts = append(parts, a.seq(a.lit("-"), a.natRange(negLo, negHi)))
	}
	if hi.Sign() >= 0 {
		l := lo
		if l.Sign() < 0 {
			l = big.NewInt(0)
		}
		parts = append(parts, a.natRange(l, hi))
	}
	return a.alt(parts...)
}

// fracDigits matches what follows an integer part for fraction values (as F-digit
// strings, zero-padded) in [x, y]: nothing (the value .000…0), or "." and 1..F digits
// whose zero-padded value is in range.
func (a *nfa) fracDigits(x, y string) frag {
	F := len(x)
	end := a.state()
	memo := map[[3]int]int32{}
	allZero := func(s string) bool { return strings.Trim(s, "0") == "" }
	var node func(p int, tl, th bool) int32
	node = func(p int, tl, th bool) int32 {
		k := [3]int{p, b2i(tl), b2i(th)}
		if s, ok := memo[k]; ok {
			return s
		}
		s := a.state()
		memo[k] = s
		if p == F {
			a.link(s, end)
			return s
		}
		if p > 0 && (!tl || allZero(x[p:])) {
			a.link(s, end)
		}
		lo, hi := byte('0'), byte('9')
		if tl {
			lo = x[p]
		}
		if th {
			hi = y[p]
		}
		if lo > hi {
			return s
		}
		// Digits strictly inside keep neither bound tight.
		edge := func(from, to byte, tl2, th2 bool) {
			if from <= to {
				t := node(p+1, tl2, th2)
				a.edges[s] = append(a.edges[s], bedge{from, to, t})
			}
		}
		if lo == hi {
			edge(lo, lo, tl, th)
		} else {
			edge(lo, lo, tl, false)
			edge(lo+1, hi-1, false, false)
			edge(hi, hi, false, th)
		}
		return s
	}
	start := a.state()
	if allZero(x) {
		a.link(start, end)
	}
	if F > 0 {
		dot := a.state()
		a.edges[start] = append(a.edges[start], bedge{'.', '.', dot})
		a.link(dot, node(0, true, true))
	}
	return frag{start, end}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decRange matches decimals with at most F fraction digits whose value times 10^F
// lies in [lo, hi] (scaled integers).
func (a *nfa) decRange(lo, hi *big.Int, F int) frag {
	if lo.Cmp(hi) > 0 {
		return a.none()
	}
	var parts []frag
	if lo.Sign() < 0 {
		mhi := new(big.Int).Neg(lo)
		mlo := big.NewInt(1)
		if hi.Sign() < 0 {
			mlo = new(big.Int).Neg(hi)
		}
		parts = append(parts, a.seq(a.lit("-"), a.posDec(mlo, mhi, F)))
	}
	if hi.Sign() >= 0 {
		l := lo
		if l.Sign() < 0 {
			l = big.NewInt(0)
		}
		parts = append(parts, a.posDec(l, hi, F))
	}
	return a.alt(parts...)
}

// posDec is decRange for 0 <= lo <= hi.
func (a *nfa) posDec(lo, hi *big.Int, F int) frag {
	unit := pow10(F)
	ia, fa := new(big.Int).QuoRem(lo, unit, new(big.Int))
	ib, fb := new(big.Int).QuoRem(hi, unit, new(big.Int))
	pad := func(x *big.Int) string {
		s := x.String()
		return strings.Repeat("0", F-len(s)) + s
	}
	zeros, nines := strings.Repeat("0", F), strings.Repeat("9", F)
	if ia.Cmp(ib) == 0 {
		return a.seq(a.natRange(ia, ia), a.fracDigits(pad(fa), pad(fb)))
	}
	parts := []frag{a.seq(a.natRange(ia, ia), a.fracDigits(pad(fa), nines))}
	mlo, mhi := new(big.Int).Add(ia, big.NewInt(1)), new(big.Int).Sub(ib, big.NewInt(1))
	if mlo.Cmp(mhi) <= 0 {
		parts = append(parts, a.seq(a.natRange(mlo, mhi), a.fracDigits(zeros, nines)))
	}
	parts = append(parts, a.seq(a.natRange(ib, ib), a.fracDigits(zeros, pad(fb))))
	return a.alt(parts...)
}

// anyNumber is a JSON number within the unbounded limits above.
func (a *nfa) anyNumber() frag {
	intPart := a.alt(a.lit("0"), a.seq(a.rng('1', '9'), a.repeat(func() frag { return a.rng('0', '9') }, 0, maxIntDigits-1)))
	frac := a.opt(a.seq(a.lit("."), a.repeat(func() frag { return a.rng('0', '9') }, 1, 15)))
	exp := a.opt(a.seq(a.set([2]byte{'e', 'e'}, [2]byte{'E', 'E'}), a.opt(a.set([2]byte{'+', '+'}, [2]byte{'-', '-'})),
		a.repeat(func() frag { return a.rng('0', '9') }, 1, 2)))
	return a.seq(a.opt(a.lit("-")), intPart, frac, exp)
}

// fracDigitsOf is how many digits after the point r needs (exact decimals), -1 when
// r is not a finite decimal.
func fracDigitsOf(r *big.Rat) int {
	d := new(big.Int).Set(r.Denom())
	n := 0
	for d.Cmp(big.NewInt(1)) != 0 {
		if n > 400 {
			return -1
		}
		// Multiply r by 10 until integral.
		n++
		x := new(big.Rat).Mul(r, new(big.Rat).SetInt(pow10(n)))
		if x.IsInt() {
			return n
		}
	}
	return n
}

// intDigitsOf is the number of digits of |r|'s integer part (0 for |r| < 1).
func intDigitsOf(r *big.Rat) int {
	q := new(big.Int).Quo(new(big.Int).Abs(r.Num()), r.Denom())
	if q.Sign() == 0 {
		return 0
	}
	return len(q.String())
}

func ratCeil(r *big.Rat) *big.Int {
	q, m := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

func ratFloor(r *big.Rat) *big.Int {
	q, _ := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int))
	return q
}
