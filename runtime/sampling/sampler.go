package sampling

import (
	"math"
	"math/bits"
	"slices"
)

// Sampler picks the next token from a logit vector. It owns scratch buffers sized to
// the largest vocabulary seen, so after the first call (or Reserve) Sample does not
// allocate. A Sampler is not safe for concurrent use; use one per goroutine.
// The zero value is ready to use.
type Sampler struct {
	x      []float32   // penalized logits
	e      []float32   // softmax weights exp((x-xmax)/T) of the whole vocabulary
	w      []uint64    // masses of the candidates in keys, same order
	counts []int32     // history counts; all zero between calls
	keys   []uint64    // candidate sort keys, see sortKey
	hist   [256]uint64 // mass per float32 exponent of the weight
	pt     []float32   // Verify: the target distribution
}

// MaxVocab is the largest vocabulary the sampler takes: V masses of at most 2^40 sum
// to less than 2^63 (see the package documentation). Loaders refuse larger ones.
const MaxVocab = 1 << 23

// MassBits is the fixed-point precision of a token's mass: m = floor(e · 2^MassBits).
const MassBits = 40

// Mass is the integer mass floor(e · 2^40) of a weight e in [0, 1] (step 4).
func Mass(e float32) uint64 { return uint64(float64(e) * (1 << MassBits)) }

// TopPThreshold is ceil(topP · z) computed exactly from topP's binary value: the mass
// a top-p prefix must reach (step 5). topP is in (0, 1); z < 2^63.
func TopPThreshold(topP float32, z uint64) uint64 {
	b := math.Float32bits(topP)
	exp, frac := b>>23&0xff, uint64(b&(1<<23-1))
	mant, shift := frac, uint(149) // subnormal: frac · 2^-149
	if exp != 0 {
		mant, shift = frac|1<<23, uint(150-exp)
	}
	hi, lo := bits.Mul64(mant, z) // topP · z = (hi:lo) / 2^shift
	if shift >= 128 {
		if hi|lo != 0 {
			return 1
		}
		return 0
	}
	var q, rem uint64
	switch {
	case shift >= 64:
		q, rem = hi>>(shift-64), hi&(1<<(shift-64)-1)|lo
	case shift == 0:
		q = lo // topP >= 1 never reaches here (filter off); kept for completeness
	default:
		q, rem = hi<<(64-shift)|lo>>shift, lo&(1<<shift-1)
	}
	if rem != 0 {
		q++
	}
	return q
}

// DrawTarget is floor(r · total / 2^24), r the 24-bit integer of a uniform draw: the
// token drawn is the first kept one whose running mass exceeds it (step 6).
func DrawTarget(r uint32, total uint64) uint64 {
	hi, lo := bits.Mul64(uint64(r), total)
	return hi<<40 | lo>>24
}

// Reserve sizes the scratch buffers for a vocabulary of vocab tokens so that even the
// first Sample call does not allocate.
func (s *Sampler) Reserve(vocab int) {
	if cap(s.x) < vocab {
		s.x = make([]float32, vocab)
		s.e = make([]float32, vocab)
		s.w = make([]uint64, vocab)
		s.counts = make([]int32, vocab)
		s.keys = make([]uint64, vocab)
	}
}

// Sample returns the id of the next token. logits holds one value per vocabulary
// entry and is not modified; history holds the token ids the penalties look at (the
// generated tokens and, if the caller wants, the prompt); ids outside
// [0, len(logits)) are ignored. tokenIndex numbers the draws of a request (0 for the
// first generated token, then 1, 2, …) and selects the random number, so a request
// with a fixed seed is reproducible and each position gets an independent draw.
//
// p should have passed Validate; Sample does not check it (Temperature <= 0 or NaN
// is greedy, TopP outside (0, 1) and MinP <= 0 disable those filters, a
// RepetitionPenalty <= 0 disables it). The algorithm is specified in the package
// documentation; every step is float32 arithmetic unless said otherwise.
func (s *Sampler) Sample(logits []float32, p *Params, tokenIndex uint64, history []int32) int32 {
	n := len(logits)
	if n == 0 {
		return 0
	}
	T := p.Temperature
	if !(T > 0) && (len(history) == 0 || !p.Penalizes()) {
		return int32(argmaxLogits(logits)) // greedy, nothing to change: no copy
	}
	s.Reserve(n)
	x := s.prepare(logits, p, history)
	best := argmax(x)
	if !(T > 0) || x[best] == float32(math.Inf(-1)) {
		return int32(best)
	}
	cand, w, z := s.kept(x, best, p)
	r := UniformBits(p.Seed, tokenIndex, StreamToken)
	if cand == nil { // no filter: the whole vocabulary in ascending id order
		return int32(drawIDs(s.e[:n], z, r))
	}
	return int32(draw(cand, w, r))
}

// prepare copies logits into s.x, maps NaN to -Inf and -0 to +0, and applies the
// penalties.
func (s *Sampler) prepare(logits []float32, p *Params, history []int32) []float32 {
	n := len(logits)
	x := s.x[:n]
	negInf := float32(math.Inf(-1))
	for i, v := range logits {
		if v != v {
			v = negInf
		} else if v == 0 {
			v = 0 // canonical +0, so that sort keys order ±0 as equal
		}
		x[i] = v
	}
	rep, pres, freq := p.RepetitionPenalty, p.PresencePenalty, p.FrequencyPenalty
	useRep := rep > 0 && rep != 1
	if len(history) == 0 || !p.Penalizes() {
		return x
	}
	counts := s.counts[:n]
	for _, t := range history {
		if t >= 0 && int(t) < n {
			counts[t]++
		}
	}
	for _, t := range history {
		if t < 0 || int(t) >= n || counts[t] == 0 {
			continue
		}
		c := counts[t]
		counts[t] = 0 // each distinct token once; leaves counts all zero
		v := x[t]
		if useRep {
			if v > 0 {
				v /= rep
			} else {
				v *= rep
			}
		}
		v -= pres
		v -= float32(freq * float32(c)) // explicit conversion: no FMA fusion
		if v != v {
			v = negInf
		} else if v == 0 {
			v = 0
		}
		x[t] = v
	}
	return x
}

// Penalizes reports whether any penalty changes logits.
func (p *Params) Penalizes() bool {
	return (p.RepetitionPenalty > 0 && p.RepetitionPenalty != 1) || p.PresencePenalty != 0 || p.FrequencyPenalty != 0
}

// argmax returns the index of the largest value, the lowest index on ties, and 0 if
// every value is -Inf.
func argmax(x []float32) int {
	best, bv := 0, x[0]
	for i, v := range x {
		if v > bv {
			best, bv = i, v
		}
	}
	return best
}

// weight is the unnormalized softmax weight of a logit v given the maximum logit
// xmax and temperature T: float32(exp(float64((v - xmax) / T))), where the
// subtraction and division are float32. When xmax is +Inf the weight is 1 for +Inf
// logits and 0 otherwise. The maximum always gets weight exactly 1.
func weight(v, xmax, T float32) float32 {
	if xmax > math.MaxFloat32 {
		if v == xmax {
			return 1
		}
		return 0
	}
	return float32(math.Exp(float64((v - xmax) / T)))
}

// sortKey orders tokens by logit descending, then id ascending, when compared as
// unsigned integers ascending.
func sortKey(v float32, id int) uint64 {
	b := math.Float32bits(v)
	if b>>31 != 0 {
		b = ^b
	} else {
		b |= 1 << 31
	}
	return uint64(^b)<<32 | uint64(uint32(id))
}

func keyID(k uint64) int { return int(uint32(k)) }

// kept returns the kept candidates as sort keys in canonical order together with
// their masses, or (nil, nil) when no filter is active; then s.e holds the weights
// of the whole vocabulary and z their total mass.
func (s *Sampler) kept(x []float32, best int, p *Params) (cand []uint64, w []uint64, z uint64) {
	n := len(x)
	T, xmax := p.Temperature, x[best]
	k := p.TopK
	if k <= 0 || k >= n {
		k = 0
	}
	topP := p.TopP
	useP := topP > 0 && topP < 1
	minP := p.MinP
	useM := minP > 0
	if minP > 1 {
		minP = 1
	}

	// Whole-vocabulary weights: needed for the total Z (top-p), for the threshold
	// pre-filter (no top-k) and for the unfiltered draw.
	if k == 0 || useP {
		e := s.e[:n]
		clear(s.hist[:])
		for i, v := range x {
			wi := weight(v, xmax, T)
			e[i] = wi
			m := Mass(wi)
			z += m
			s.hist[math.Float32bits(wi)>>23] += m
		}
	}
	if k == 0 && !useP && !useM {
		return nil, nil, z
	}
	var thr uint64
	if useP {
		thr = TopPThreshold(topP, z)
	}

	if k > 0 {
		cand := s.topK(x, k)
		L := s.prefix(cand, x, xmax, T, thr, useP, useM, minP)
		return cand[:L], s.w[:L], z
	}

	// No top-k: pre-filter with a weight threshold t so that only the tokens that
	// can be kept are sorted. t is the largest power of two such that the tokens
	// with weight >= t hold at least thr of the mass (read off the histogram of the
	// masses by the float32 exponent of the weights: exact, the masses are integers),
	// raised to min_p. Buckets below exponent 87 (e < 2^-40) hold no mass, so the
	// search stops above them.
	t := float32(0)
	if useP {
		var cum uint64
		for b := 127; b >= 1; b-- {
			cum += s.hist[b]
			if cum >= thr {
				t = math.Float32frombits(uint32(b) << 23)
				break
			}
		}
	}
	if useM && minP > t {
		t = minP
	}
	// Extend {i : e_i >= t} to the prefix of the canonical order that contains it:
	// every token whose logit is >= the smallest logit in the set. Its mass reaches
	// thr (top-p), or it is exactly the min-p prefix, so the walk stops inside it.
	e := s.e[:n]
	xmin := xmax
	for i, v := range x {
		if e[i] >= t && v < xmin {
			xmin = v
		}
	}
	cand = s.keys[:0]
	for i, v := range x {
		if v >= xmin {
			cand = append(cand, sortKey(v, i))
		}
	}
	slices.Sort(cand)
	L := s.prefix(cand, x, xmax, T, thr, useP, useM, minP)
	return cand[:L], s.w[:L], z
}

// topK returns the k best tokens in canonical order (logit descending, id
// ascending), selected with a bounded max-heap of sort keys: O(V + k log k · hits).
func (s *Sampler) topK(x []float32, k int) []uint64 {
	h := s.keys[:0]
	for i := 0; i < k; i++ {
		h = append(h, sortKey(x[i], i))
	}
	// heapify (max-heap on keys: the root is the worst kept token)
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	worst := x[keyID(h[0])]
	for i := k; i < len(x); i++ {
		// A later id with an equal logit is worse, so only strictly larger logits
		// can enter.
		if v := x[i]; v > worst {
			h[0] = sortKey(v, i)
			siftDown(h, 0)
			worst = x[keyID(h[0])]
		}
	}
	slices.Sort(h)
	return h
}

func siftDown(h []uint64, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && h[r] > h[l] {
			c = r
		}
		if h[i] >= h[c] {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// prefix walks the candidates (a prefix of the canonical order) and returns how many
// are kept by min_p and top_p (the running mass reaching thr), storing their masses
// in s.w.
func (s *Sampler) prefix(cand []uint64, x []float32, xmax, T float32, thr uint64, useP, useM bool, minP float32) (L int) {
	w := s.w[:len(cand)]
	var cum uint64
	for j, key := range cand {
		wj := weight(x[keyID(key)], xmax, T)
		if useM && wj < minP && j > 0 {
			return j
		}
		w[j] = Mass(wj)
		if useP {
			cum += w[j]
			if cum >= thr {
				return j + 1
			}
		}
	}
	return len(cand)
}

// draw returns the first candidate whose running mass exceeds DrawTarget(r, total),
// total the candidates' mass (step 6).
func draw(cand []uint64, w []uint64, r uint32) int {
	var total uint64
	for _, wj := range w {
		total += wj
	}
	target := DrawTarget(r, total)
	var cum uint64
	for j, wj := range w {
		cum += wj
		if cum > target {
			return keyID(cand[j])
		}
	}
	return keyID(cand[0]) // unreachable: the running mass ends at total > target
}

// drawIDs is draw over the whole vocabulary in ascending id order, of total mass z.
func drawIDs(e []float32, z uint64, r uint32) int {
	target := DrawTarget(r, z)
	var cum uint64
	for i, ei := range e {
		cum += Mass(ei)
		if cum > target {
			return i
		}
	}
	return 0 // unreachable: the running mass ends at z > target
}
