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
// Step 4, weights: with xmax = max x and T = Temperature,
//
//	e_i = float32(exp(float64((x_i - xmax) / T)))  // float32 sub and div, double exp
//	Z   = e_0 + e_1 + … + e_{V-1}                   // float32, sequential, ascending id
//
// A kernel should use double-precision exp rounded to float, not __expf. The maximum
// gets e = 1 exactly. If xmax is +Inf, e_i is 1 for +Inf logits and 0 otherwise. Z is
// only needed for top-p.
//
// Step 5, truncation: order all tokens canonically, s_1, s_2, …, s_V. Ordering by
// logit refines the order by (rounded) probability, and makes top_k = 1 identical
// to greedy at any temperature. The kept set is the prefix s_1 … s_L, L = min(Lk,
// Lp, Lm):
//
//	Lk = TopK if 0 < TopK < V, else V
//	Lp = V if TopP >= 1, else the smallest j with c_j >= TopP,
//	     c_0 = 0, c_j = c_{j-1} + e_{s_j} / Z (float32), or V if there is none
//	Lm = V if MinP == 0, else the number of leading s_j with e_{s_j} >= MinP
//	     (>= 1; e is compared with MinP because the best token has e = 1)
//
// Top-p measures mass under the full softmax of step 4, not under a distribution
// renormalized after top-k (as HF transformers and vLLM do), so the three filters
// commute. If no filter is active the kept set is instead all V tokens in
// ascending id order (the same distribution without a sort).
//
// Step 6, draw:
//
//	u      = Uniform(Seed, tokenIndex, 0)
//	total  = Σ e over the kept tokens, in their order (float32, sequential)
//	cum   += e walking the kept tokens in that order; return the first with cum > u * total
//	if none (rounding only): return the last kept token with e > 0
//
// Cost. Penalties are O(len(history)). Greedy is one pass. top-k selects with a
// bounded max-heap (one compare per token, O(V + k log k) typical, O(V log k) worst)
// and sorts only the k kept. top-p without top-k avoids sorting the whole
// vocabulary: while computing the weights it builds a histogram of their float32
// exponents, picks the largest power-of-two threshold t such that the tokens with
// e >= t hold top_p (+0.1% margin) of the mass, extends that set to the canonical
// prefix containing it (all tokens whose logit is >= the smallest logit in it), and
// sorts only that prefix. If the exact walk of step 5 runs off its end without
// reaching top_p (float32 rounding), Sample falls back to sorting the whole
// vocabulary, so the result is always exactly the one specified above. min-p uses
// t = max(t, MinP) the same way.
//
// Speculative decoding. Probs is the distribution step 6 draws from (w/total over the
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
