// Package sampling chooses the next token from a logit vector: penalties, greedy,
// temperature, top-k, top-p and min-p sampling, plus log-probabilities for the API.
//
// Every random number comes from the counter-based Philox4x32-10 generator through
// Uniform(seed, tokenIndex, StreamToken), so a draw depends only on (seed, token
// position) and a CUDA kernel can reproduce Sample token for token. This comment is
// the specification that kernel must follow. All arithmetic is IEEE float32 with
// round-to-nearest, no FMA contraction, unless stated otherwise; "canonical order"
// means penalized logit descending, then token id ascending.
//
// Step 1, copy: x_i = logits[i], with NaN replaced by -Inf and -0 by +0.
//
// Step 2, penalties: for each distinct id t in history with 0 <= t < V, c being its
// number of occurrences, in this order (a NaN result becomes -Inf, -0 becomes +0):
//
//	if r != 1 { if x_t > 0 { x_t = x_t / r } else { x_t = x_t * r } }  // repetition, CTRL-style
//	x_t = x_t - presence
//	x_t = x_t - frequency * float32(c)
//
// Step 3, greedy: if Temperature == 0, return argmax x, the lowest id on ties. If
// every x_i is -Inf, return 0 (in every mode).
//
// Step 4, weights and masses: with xmax = max x and T = Temperature,
//
//	e_i = float32(exp(float64((x_i - xmax) / T)))  // float32 sub and div, double exp
//	m_i = floor(e_i · 2^40)                         // uint64: the token's mass
//	Z   = m_0 + m_1 + … + m_{V-1}                   // uint64
//
// A kernel should use double-precision exp rounded to float, not __expf. The maximum
// gets e = 1 and m = 2^40 exactly. If xmax is +Inf, e_i is 1 for +Inf logits and 0
// otherwise. Masses are integers (fixed point, 2^-40 the unit: a token with e < 2^-40
// has mass 0 and is never drawn), so every sum below is exact and the same in any
// order: a GPU reduces them in parallel, with atomics or in blocks, and still matches
// this CPU bit for bit. V is at most MaxVocab (2^23), so Z < 2^63. Z is only needed
// for top-p and the unfiltered draw.
//
// Step 5, truncation: order all tokens canonically, s_1, s_2, …, s_V. Ordering by
// logit refines the order by (rounded) probability, and makes top_k = 1 identical
// to greedy at any temperature. With C_j = m_{s_1} + … + m_{s_j}, the kept set is the
// prefix s_1 … s_L, L = min(Lk, Lp, Lm):
//
//	Lk = TopK if 0 < TopK < V, else V
//	Lp = V if TopP >= 1, else the smallest j with C_j >= TopP · Z, compared exactly
//	     (TopP is the float32's exact binary value: C_j >= ceil(TopP · Z))
//	Lm = V if MinP == 0, else the number of leading s_j with e_{s_j} >= MinP
//	     (>= 1; e is compared with MinP because the best token has e = 1)
//
// Top-p measures mass under the full softmax of step 4, not under a distribution
// renormalized after top-k (as HF transformers and vLLM do), so the three filters
// commute. If no filter is active the kept set is instead all V tokens in
// ascending id order (the same distribution without a sort), with C_j the running
// sum in that order.
//
// Step 6, draw:
//
//	r      = the 24-bit integer of Uniform(Seed, tokenIndex, 0) (u = r / 2^24)
//	total  = C_L, the mass of the kept set (>= 2^40: the best token is kept)
//	target = floor(r · total / 2^24)            // exact: a 128-bit product
//	return the kept token s_j with the smallest j such that C_j > target
//
// Such a j always exists (C_L = total > target), and a token of mass 0 is never
// returned. Since C_j only depends on which tokens precede s_j, a parallel sampler
// finds L and the drawn token by selecting on the canonical order (radix select over
// the logits' order keys with per-bucket counts and masses, equal logits having equal
// masses), without sorting.
//
// Cost. Penalties are O(len(history)). Greedy is one pass. top-k selects with a
// bounded max-heap (one compare per token, O(V + k log k) typical, O(V log k) worst)
// and sorts only the k kept. top-p without top-k avoids sorting the whole
// vocabulary: while computing the weights it builds a histogram of the masses by the
// float32 exponent of their weights, picks the largest power-of-two threshold t such
// that the tokens with e >= t hold at least ceil(TopP · Z) of the mass (exact: the
// masses are integers), extends that set to the canonical prefix containing it (all
// tokens whose logit is >= the smallest logit in it), and sorts only that prefix, in
// which the walk of step 5 is certain to stop. min-p uses t = max(t, MinP) the same way.
//
// Speculative decoding. Probs is the distribution step 6 draws from (m/total over the
// kept set). Verify decides a drafted token at a position: for a deterministic
// proposal, or a greedy request, it is Sample's own draw compared with the draft, so the
// tokens are exactly those of decoding without speculation; for a draft drawn from a
// distribution q (DraftSample, stream StreamDraft) it is the rejection rule of Leviathan
// et al. / Chen et al. with r = Uniform(seed, tokenIndex, StreamAccept): accept when
// r·q(x) < P(x), else draw from max(0, P − q) with the position's StreamToken uniform,
// which leaves the output distributed as P.
//
// A Sampler keeps its scratch buffers between calls and does not allocate once
// warmed up (or after Reserve). LogSoftmax and TopLogprobs compute log-probabilities
// for the API's logprobs field.
package sampling
