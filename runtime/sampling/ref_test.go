package sampling

import (
	"math"
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

func refWeights(x []float32, T float32) (e []float32, Z float32) {
	xmax := float32(math.Inf(-1))
	for _, v := range x {
		xmax = max(xmax, v)
	}
	e = make([]float32, len(x))
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
		Z += e[i]
	}
	return e, Z
}

// refKept returns the kept token ids in walk order and their weights.
func refKept(x []float32, p *Params) ([]int, []float32) {
	n := len(x)
	e, Z := refWeights(x, p.Temperature)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	kOn := p.TopK > 0 && p.TopK < n
	pOn := p.TopP > 0 && p.TopP < 1
	mOn := p.MinP > 0
	if !kOn && !pOn && !mOn {
		return ids, e
	}
	sort.SliceStable(ids, func(a, b int) bool { return x[ids[a]] > x[ids[b]] })
	L := n
	if kOn {
		L = p.TopK
	}
	if pOn {
		var c float32
		for j, id := range ids {
			c += e[id] / Z
			if c >= p.TopP {
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
	w := make([]float32, L)
	for j, id := range ids {
		w[j] = e[id]
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

func refDraw(ids []int, w []float32, u float32) int {
	var total float32
	for _, v := range w {
		total += v
	}
	var cum float32
	last := -1
	for j, id := range ids {
		cum += w[j]
		if cum > u*total {
			return id
		}
		if w[j] > 0 {
			last = id
		}
	}
	return last
}

// keptSet exposes the Sampler's kept set (walk order) for comparison with refKept.
func (s *Sampler) keptSet(logits []float32, p *Params, history []int32) []int {
	s.Reserve(len(logits))
	x := s.prepare(logits, p, history)
	best := argmax(x)
	if math.IsInf(float64(x[best]), -1) {
		return []int{0}
	}
	cand, _ := s.kept(x, best, p)
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
