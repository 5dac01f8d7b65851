// Package engine serves many requests on one model: it owns the model, the backend's
// KV cache and the scheduler, runs the step loop (decode first, prefill chunks on a
// pool of lanes, K decode steps per round when nothing needs scheduling), samples,
// detokenizes incrementally and delivers each request's events on a channel.
//
// It is the Go API another service embeds:
//
//	eng, _ := engine.New(m, engine.Options{})
//	defer eng.Close()
//	events, _ := eng.Submit(ctx, &engine.Request{Prompt: ids, MaxTokens: 64})
//	for ev := range events { fmt.Print(ev.Text) }
//
// Cancelling ctx aborts the request; its KV blocks are free by the end of the step in
// flight.
package engine
