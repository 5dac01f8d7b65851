// Package server is Vireo's OpenAI-compatible HTTP API over one engine.
//
// Endpoints:
//
//	POST /v1/completions        text completion (prompt: a string or token ids)
//	POST /v1/chat/completions   chat completion (text messages, rendered by Config.ChatPrompt:
//	                            the model's chat template, or the plain "role: content" format)
//	GET  /v1/models             the served model names (and /v1/models/{name})
//	GET  /health                200 while the process is alive
//	GET  /ready                 200 when it takes requests, 503 while draining
//	GET  /metrics               Prometheus, with vLLM's metric names
//
// Both generation endpoints stream with "stream": true (server-sent events, one chunk
// per token, "data: [DONE]" at the end, a usage chunk with
// "stream_options": {"include_usage": true}). Besides OpenAI's sampling parameters they
// take vLLM's extensions top_k, min_p, repetition_penalty, min_tokens, ignore_eos and
// stop_token_ids.
//
// Requests are strict: a field the server does not know is a 400 naming it (a typo
// such as "max_token" is never silently ignored), and so is a known feature it does not
// implement (tools, response_format other than text, logit_bias, image or audio
// content, echo, suffix, best_of other than n, batched prompts). Only "user",
// "metadata", "service_tier", "safety_identifier" and "prompt_cache_key" are accepted
// and ignored: they tag or route a request without changing what it generates. Every error — malformed JSON, a wrong type, a value out
// of range, a prompt longer than the context, an unknown model — is OpenAI's error JSON
// {"error": {"message", "type", "param", "code"}} with a 4xx status; 5xx means the
// server failed.
//
// Load and lifecycle: a full engine queue answers 429 with Retry-After; a client that
// disconnects cancels its request's context, which aborts it in the engine and frees
// its KV blocks; Drain stops intake (503), lets in-flight requests finish, and aborts
// what is left when its context ends. Streams set a write deadline per chunk, so the
// HTTP server's WriteTimeout bounds a stuck client without cutting long streams.
//
// Every generation request logs one line (id, status, token counts, time to first
// token, duration, finish reasons).
package server
