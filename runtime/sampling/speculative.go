package sampling

import "math"

// Philox streams of speculative decoding (see Uniform). A draw of token number t of a
// request is keyed by (seed, t) in every stream, so the three decisions made about one
// position are independent of each other and of every other position.
const (
	// StreamAccept is the uniform r of the acceptance test of a drafted token.
	StreamAccept uint32 = 1
	// StreamDraft is the uniform with which a draft model samples its proposal.
	StreamDraft uint32 = 2
)

// Probs writes into dst (len(logits) entries, or a new slice when dst is too short)
// the distribution that Sample draws from for these logits, parameters and history:
// m/total over the kept tokens of step 5 (rounded to float32) and 0 elsewhere; a
// one-hot vector at the
// token Sample returns when it is greedy (Temperature 0) or every logit is -Inf.
func (s *Sampler) Probs(dst, logits []float32, p *Params, history []int32) []float32 {
	n := len(logits)
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	clear(dst)
	if n == 0 {
		return dst
	}
	if !(p.Temperature > 0) {
		dst[s.Sample(logits, p, 0, history)] = 1
		return dst
	}
	s.Reserve(n)
	x := s.prepare(logits, p, history)
	best := argmax(x)
	if x[best] == float32(math.Inf(-1)) {
		dst[best] = 1
		return dst
	}
	cand, w, z := s.kept(x, best, p)
	if cand == nil {
		for i, ei := range s.e[:n] {
			dst[i] = float32(float64(Mass(ei)) / float64(z))
		}
		return dst
	}
	var total uint64
	for _, wj := range w {
		total += wj
	}
	for j, wj := range w {
		dst[keyID(cand[j])] = float32(float64(wj) / float64(total))
	}
	return dst
}

// verifyBroken replaces the residual draw of a rejected draft by a plain draw from the
// target: a classic bug the distribution test must catch (tests only).
var verifyBroken bool

// Verify decides a drafted token at one position by speculative sampling (Leviathan
// et al. 2023, Chen et al. 2023) and returns the token the position gets and whether
// it is the draft. logits, p, tokenIndex and history are exactly what Sample would be
// given for this position without speculation; q is the distribution the draft was
// drawn from (len(logits) entries), or nil for a deterministic proposal (prompt
// lookup, or a greedy draft model).
//
//   - Deterministic draft, or greedy target: tok is Sample's own draw (stream
//     StreamToken), accepted when it equals the draft. For a proposal that puts all its
//     mass on the draft this is the rejection rule (accept with probability P(draft),
//     else draw from P without the draft) with the draws coupled, so the tokens are the
//     ones decoding without speculation produces, seed for seed.
//   - Drafted from q: with P = Probs(logits, p, history) and r = Uniform(seed,
//     tokenIndex, StreamAccept), the draft x is accepted when P(x) >= q(x) or
//     r·q(x) < P(x); otherwise the token is drawn from the residual max(0, P − q)
//     (walked in ascending id order, u = Uniform(seed, tokenIndex, StreamToken), the
//     first id whose running sum exceeds u times the total). Either way the token is
//     distributed as P. A residual of zero mass (rounding only) falls back to Sample.
func (s *Sampler) Verify(logits []float32, p *Params, tokenIndex uint64, history []int32, draft int32, q []float32) (tok int32, accepted bool) {
	if q == nil || !(p.Temperature > 0) || draft < 0 || int(draft) >= len(q) || !(q[draft] > 0) {
		tok = s.Sample(logits, p, tokenIndex, history)
		return tok, tok == draft
	}
	s.pt = s.Probs(s.pt, logits, p, history)
	P := s.pt
	qx, px := q[draft], P[draft]
	if px >= qx || Uniform(p.Seed, tokenIndex, StreamAccept)*qx < px {
		return draft, true
	}
	if verifyBroken {
		return s.Sample(logits, p, tokenIndex, history), false
	}
	var total float32
	for i, pi := range P {
		if d := pi - q[i]; d > 0 {
			total += d
		}
	}
	if !(total > 0) {
		tok = s.Sample(logits, p, tokenIndex, history)
		return tok, tok == draft
	}
	target := Uniform(p.Seed, tokenIndex, StreamToken) * total
	var cum float32
	last := -1
	for i, pi := range P {
		d := pi - q[i]
		if !(d > 0) {
			continue
		}
		cum += d
		if cum > target {
			return int32(i), false
		}
		last = i
	}
	return int32(last), false
}

// DraftSample draws a draft model's proposal for token number tokenIndex from its
// logits, with the request's parameters and history, from stream StreamDraft. It
// returns the token and, when p samples (Temperature > 0), the distribution it was
// drawn from, written into q (resized as Probs does); q is nil for a greedy draft,
// whose proposal is deterministic (see Verify).
func (s *Sampler) DraftSample(q, logits []float32, p *Params, tokenIndex uint64, history []int32) (int32, []float32) {
	if !(p.Temperature > 0) {
		return s.Sample(logits, p, tokenIndex, history), nil
	}
	q = s.Probs(q, logits, p, history)
	u := Uniform(p.Seed, tokenIndex, StreamDraft)
	var total float32
	for _, v := range q {
		total += v
	}
	target := u * total
	var cum float32
	last := 0
	for i, v := range q {
		if v <= 0 {
			continue
		}
		cum += v
		if cum > target {
			return int32(i), q
		}
		last = i
	}
	return int32(last), q
}
