// Package engine serves many requests on one model: it owns the model, the backend's
// KV cache and the scheduler, runs the step loop (decode first, prefill chunks on a
// pool of lanes, K decode steps per round when nothing needs scheduling), samples,
// detokenizes incrementally and delivers each request's events on a channel.
//
// The model is anything with the small Model interface (configuration, backend,
// workspaces, KV cache, forward pass, decode-step capture): a *model.Model, or
// enginetest.Fake when only the serving stack's own cost matters. It is the Go API
// another service embeds; the package's Example runs these lines as they are:
//
//	m, err := llm.Open("synthetic:tiny", "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsAuto})
//	if err != nil {
//		panic(err)
//	}
//	defer m.Close()
//	eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{})
//	if err != nil {
//		panic(err)
//	}
//	defer eng.Close()
//
//	prompt := m.Tokenizer.Encode("Once upon a time", m.Tokenizer.DefaultOptions())
//	seed := uint64(1)
//	events, err := eng.Submit(context.Background(), &engine.Request{
//		Prompt:    prompt,
//		MaxTokens: 8,
//		IgnoreEOS: true,
//		Seed:      &seed,
//		Sampling:  sampling.Params{Temperature: 0.8, TopP: 0.95, RepetitionPenalty: 1},
//	})
//
// and then ranges over events (token, text delta, logprobs, finish reason, usage).
// Cancelling the context aborts the request; its KV blocks are free once the device work in
// flight on them has completed.
//
// Request.Constraint (a *grammar.Grammar: JSON Schema, regex, choice) restricts a
// request's output: before each sampling step the logits are masked to the tokens the
// constraint's automaton allows (end-of-sequence only where the output is complete,
// and only tokens that keep it finishable within MaxTokens), so the sampler's
// temperature, top-k/p, min-p and penalties act within the allowed set. The mask is
// computed on the host: constrained rows of a device decode loop are sampled on the
// host from their logits, like rows that want logprobs. Unconstrained requests are
// untouched (testdata/unconstrained.json pins their tokens from before constraints
// existed). See Example_constrained.
//
// Each group of a plan (the decode group, each prefill group) is issued on its lane's
// backend stream, after stream waits for the events of the groups that last wrote the
// blocks it touches, and followed by an event of its own; every block a group touched
// stays referenced until that event completes (fence.go). On the CPU backend events
// are complete when recorded, so this costs nothing and changes nothing; on an
// asynchronous backend it is what keeps cancelled, preempted and shared blocks safe
// (async_test.go checks it with a fake asynchronous backend).
//
// On a backend that captures graphs and loops decode on the device
// (backend.DecodeLooper: the CUDA backend), New captures the decode step once per
// batch-size bucket (1, 2, 4, … MaxNumSeqs rows, contexts up to MaxModelLen) and the
// decode group replays the smallest bucket that holds it: the inputs go to the
// bucket's fixed device buffers, the device samples each row into the next step's
// input, ends rows at a stop id or their reserved length (the finished mask), and
// copies the tokens back once per round trip; the host checks stop strings and drops
// overshoot. Rows that need their logits on the host (logprobs, min_tokens, a row the
// device sampler gave back) are sampled from the replay's logits, one step per round
// trip. Graphs reports the mode and why; Options.DisableCUDAGraphs turns it off.
//
// Speculative decoding (Options.Speculative, spec.go): after each token a request gets,
// its proposer says how many positions it wants drafted (prompt lookup finds its
// proposal then; a draft model always wants k) and the scheduler reserves them. The
// decode group then runs eagerly: the draft model, if any, catches up and drafts on
// the decode lane's stream; one forward pass feeds each row's last token and its drafts
// (LogitsAll) — verification rows are ordinary rows of the pass, so on the CPU their
// logits are bit-identical to decode steps'; sampling.Sampler.Verify takes drafts while
// they are accepted, each through accept as an ordinary token, and the row ends with
// one token of the target's own. The draft prefills every prefill chunk on the chunk's
// lane. Rows that speculation cannot apply to say so in speculates.
package engine
