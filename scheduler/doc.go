// Package scheduler is Vireo's request scheduler: a deterministic state
// machine over requests, token counts and KV block ids. It imports no backend,
// starts no goroutines and reads no clock (deadlines are compared against the
// time passed to Step/Expire). The KV block bookkeeping is a kv.BlockPool the
// scheduler owns.
//
// # Loop
//
// The engine calls Schedule (or Step(now)) to get a Plan, runs it, and calls
// Commit with the sampled tokens. One plan is pending at a time. A plan has a
// decode group (one forward pass, or NumSteps passes on the device) and up to
// PrefillLanes prefill groups, each one forward pass on its own lane.
//
// Per step: first every decoding request gets a DecodeItem (one token per
// sequence against the budget; NumSteps = DecodeSteps when nothing is waiting
// or prefilling, else 1; the blocks for all NumSteps positions are reserved).
// Then running partial prefills get chunks in admission order, then waiting
// requests are admitted in FIFO order, each chunk at most PrefillChunk tokens,
// all within MaxNumBatchedTokens. Admission needs the blocks of the first chunk
// plus WatermarkBlocks available and fewer than MaxNumSeqs running; if the head
// does not fit, nobody behind it is admitted (no overtaking on blocks). The one
// exception is MaxLongPrefills: when that many long prompts (longer than
// LongPromptThreshold) are prefilling, waiting long prompts are skipped so short
// ones behind them keep a good time to first token.
//
// When a running request needs a block and none is available, the newest
// running request is preempted by recompute: its blocks are released, its
// generated tokens kept, and it goes to the front of the waiting queue; later it
// re-prefills prompt+output. A step with a preemption admits nobody.
//
// Prefix cache: at admission the sequence's full blocks are looked up by chain
// hash (never the block holding the last token, so the last position's logits
// are computed); hits are shared and prefill starts after them. Full blocks are
// registered in the index when the step that computed them is committed, so a
// block is never shared before its KV exists. The chain starts from the
// request's CacheSalt (the engine gives each loaded LoRA adapter its own), so
// blocks are shared only between requests whose KV is the same function of the
// tokens.
//
// LoRA adapters (MaxAdapters > 0): at most MaxAdapters distinct non-zero
// NewRequest.Adapter values run at once (the device's adapter slots). A waiting
// request whose adapter would exceed that is adapter-capped: it stays queued,
// requests of the base model behind it are admitted as usual, and requests of
// any adapter behind it wait too — even of a running adapter — so the running
// adapters' requests drain and a slot frees for it within their MaxNewTokens.
//
// Speculative decoding (SpecTokens > 0): the engine says in each Result how many
// drafted positions the request wants verified next (Result.Lookahead, from its
// proposer). Its next decode item is then a single pass (NumSteps 1) that also
// computes positions Pos+1 … Pos+Lookahead, whose slots are reserved. Drafted
// positions are granted last, from what the step leaves: the token budget after
// admission (each drafted position costs one token), MaxSpecTokens, and free blocks
// only — never by preemption or by evicting a cached prefix block, and never ahead of
// an admission, so speculation changes nothing in the bounded-waiting argument below.
// At Commit the accepted drafts and the sampled token are appended and the computed
// count moves past the accepted positions only; the KV of rejected positions lies
// beyond it, is never registered in the prefix index, and the blocks reserved only
// for them are released at once.
//
// Every request ends with a FinishReason: FinishedStop / FinishedLength /
// Aborted as the engine reports them (FinishedLength also when MaxNewTokens,
// clamped to MaxModelLen, is reached), Aborted by Cancel, Deadline by
// Step/Expire, Rejected by Add for requests that can never be served. Cancel
// and deadline release blocks at once, or, for a request in the pending plan,
// when that plan is committed (kv deferred release).
//
// # Bounded waiting
//
// Let S = MaxNumSeqs, T = MaxNumBatchedTokens (T >= S is enforced) and
// M = MaxModelLen. Say the head of the waiting queue "has room" in a step when,
// after the step's decode and prefill scheduling, no preemption happened, fewer
// than S requests run, the long-prefill cap does not hold it back, and the
// blocks of its first full chunk (after prefix hits) plus the watermark are
// available. Then:
//
//	the head is admitted within B = ceil(S·M / (T−S+1)) steps in which it has room
//
// counted while it stays head with no preemption in between (a preemption
// puts the victim in front and restarts the count).
//
// Proof sketch. In a step where the head h has room but is not admitted, the
// admission loop reached h (nothing before it was skipped — only a long-capped
// h could cause skips) and stopped only because the budget was spent: any
// budget left would have admitted h with a smaller first chunk that fits. The
// decode group takes at most S−1 tokens, so at least T−S+1 prefill tokens of
// running requests were computed. Once h is not long-capped, nobody can be
// admitted ahead of it (blocks: strict FIFO; long cap: only a long admission
// could re-cap it, and that would have to pass h), so no prefill work is added
// while h waits; preemptions are excluded. The running prefill work is at most
// S·M tokens. Hence at most S·M/(T−S+1) such steps. Steps in which h has no
// room (blocks held by running requests, S running, long cap, adapter cap) are
// not bounded by the config: they end as running requests finish, which they do
// within their MaxNewTokens. (An adapter-capped head is passed only by base
// requests, which add no adapter: the capped steps end once the requests of one
// running adapter have finished.)
//
// The scheduler counts these steps per request (Request.roomWaits) and the
// property tests assert the bound.
package scheduler
