// Package specdec is speculative decoding's proposing side: the configuration (vLLM's
// --speculative-config), prompt lookup (an n-gram match against the prompt and the
// output so far, no extra model), and a draft model (a smaller Llama-family model with
// the target's vocabulary, run beside it on the same backend, its KV cache paged by
// the target's block tables).
//
// The engine asks a proposer for up to k tokens per sequence, the scheduler reserves
// their KV slots, the target scores all k+1 positions in one forward pass, and
// sampling.Sampler.Verify keeps the longest accepted prefix plus one token of the
// target's own (see runtime/engine and runtime/sampling).
//
// # Prompt lookup
//
// Propose takes the longest suffix of the history of n tokens, n from
// PromptLookupMax down to PromptLookupMin, that also occurs earlier, at its most
// recent earlier occurrence, and proposes the up to k tokens that followed it. The
// search is O(len(history) × n) per sequence and step.
//
// # Draft model
//
// The draft's KV cache has the target's number of blocks and block size and is
// addressed by the same block tables, so the scheduler's bookkeeping (reservations,
// preemption, the prefix cache) covers it: the draft prefills every prefill chunk the
// target computes, into the same slots, and before proposing it catches up on the
// positions it has not computed (usually the last token, or the last accepted draft
// and the bonus token; more after steps in which the sequence decoded without
// drafts). It never writes a block another sequence holds too (a shared prefix), so
// the positions it missed in such a block keep stale draft KV; so do the positions a
// sequence decoded without the draft before a later prompt shared its blocks. Stale
// draft KV lowers the draft's acceptance, never the output, which the target's
// verification decides.
package specdec
