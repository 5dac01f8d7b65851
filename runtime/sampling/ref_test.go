package sampling

import (
	"math"
	"math/big"
	"sort"
)

// This file is a deliberately naive transcription of the specification in doc.go
// (full sort, maps, no pruning), used as the oracle for Sampler.

func refPenalize(logits []float32, p *Params, history []int32) []float32 {
	x := make([]float32, len(logits))
	for i, v := range logits {
		if math.IsNaN(float64(v)) {
			v = float32(math.Inf(-1))
		}
		x[i] = v
	}
	counts := map[int32]int{}
	for _, t := range history {
		if t >= 0 && int(t) < len(x) {
			counts[t]++
		}
	}
	r := p.RepetitionPenalty
	for t, c := range counts {
		v := x[t]
		if r > 0 && r != 1 {
			if v > 0 {
				v = v / r
			} else {
				v = v * r
			}
		}
		v = v - p.PresencePenalty
		v = v - float32(p.FrequencyPenalty*float32(c))
		if math.IsNaN(float64(v)) {
			v = float32(math.Inf(-1))
		}
		x[t] = v
	}
	return x
}

func refWeights(x []float32, T float32) (e []float32, m []uint64, Z uint64) {
	xmax := float32(math.Inf(-1))
	for _, v := range x {
		xmax = max(xmax, v)
	}
	e = make([]float32, len(x))
	m = make([]uint64, len(x))
	for i, v := range x {
		if math.IsInf(float64(xmax), 1) {
			if math.IsInf(float64(v), 1) {
				e[i] = 1
			}
		} else {
			d := v - xmax
			d = d / T
			e[i] = float32(math.Exp(float64(d)))
		}
		// floor(e · 2^40) in exact rational arithmetic (NaN: every logit is -Inf, the
		// caller ignores the result).
		if e[i] != e[i] {
			continue
		}
		m[i] = new(big.Int).Quo(new(big.Int).Mul(ratNum(e[i]), big.NewInt(1<<40)), ratDen(e[i])).Uint64()
		Z += m[i]
	}
	return e, m, Z
}

// ratNum and ratDen are the numerator and denominator of a float32's exact value.
func ratNum(v float32) *big.Int { return new(big.Rat).SetFloat64(float64(v)).Num() }
func ratDen(v float32) *big.Int { return new(big.Rat).SetFloat64(float64(v)).Denom() }

// refKept returns the kept token ids in walk order and their masses.
func refKept(x []float32, p *Params) ([]int, []uint64) {
	n := len(x)
	e, m, Z := refWeights(x, p.Temperature)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	kOn := p.TopK > 0 && p.TopK < n
	pOn := p.TopP > 0 && p.TopP < 1
	mOn := p.MinP > 0
	if !kOn && !pOn && !mOn {
		return ids, m
	}
	sort.SliceStable(ids, func(a, b int) bool { return x[ids[a]] > x[ids[b]] })
	L := n
	if kOn {
		L = p.TopK
	}
	if pOn {
		// C_j >= TopP·Z, exactly.
		need := new(big.Rat).Mul(new(big.Rat).SetFloat64(float64(p.TopP)), new(big.Rat).SetInt(new(big.Int).SetUint64(Z)))
		var c uint64
		for j, id := range ids {
			c += m[id]
			if new(big.Rat).SetInt(new(big.Int).SetUint64(c)).Cmp(need) >= 0 {
				L = min(L, j+1)
				break
			}
		}
	}
	if mOn {
		j := 0
		for j < n && e[ids[j]] >= min(p.MinP, 1) {
			j++
		}
		L = min(L, max(j, 1))
	}
	ids = ids[:L]
	w := make([]uint64, L)
	for j, id := range ids {
		w[j] = m[id]
	}
	return ids, w
}

func refSample(logits []float32, p *Params, tokenIndex uint64, history []int32) int32 {
	if len(logits) == 0 {
		return 0
	}
	x := refPenalize(logits, p, history)
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	if p.Temperature == 0 || math.IsInf(float64(x[best]), -1) {
		return int32(best)
	}
	ids, w := refKept(x, p)
	return int32(refDraw(ids, w, Uniform(p.Seed, tokenIndex, 0)))
}

// refDraw: the first kept token whose running mass exceeds u·total (u = r/2^24 exactly).
func refDraw(ids []int, w []uint64, u float32) int {
	total := new(big.Int)
	for _, v := range w {
		total.Add(total, new(big.Int).SetUint64(v))
	}
	target := new(big.Rat).Mul(new(big.Rat).SetFloat64(float64(u)), new(big.Rat).SetInt(total))
	c := new(big.Int)
	for j, id := range ids {
		c.Add(c, new(big.Int).SetUint64(w[j]))
		if new(big.Rat).SetInt(c).Cmp(target) > 0 {
			return id
		}
	}
	return -1
}

// keptSet exposes the Sampler's kept set (walk order) for comparison with refKept.
func (s *Sampler) keptSet(logits []float32, p *Params, history []int32) []int {
	s.Reserve(len(logits))
	x := s.prepare(logits, p, history)
	best := argmax(x)
	if math.IsInf(float64(x[best]), -1) {
		return []int{0}
	}
	cand, _, _ := s.kept(x, best, p)
	if cand == nil {
		ids := make([]int, len(x))
		for i := range ids {
			ids[i] = i
		}
		return ids
	}
	ids := make([]int, len(cand))
	for j, k := range cand {
		ids[j] = keyID(k)
	}
	return ids
}
