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
// Structured outputs (structured.go): response_format {"type": "json_object"} and
// {"type": "json_schema", "json_schema": {"name", "schema", "strict"}} on both
// endpoints, and vLLM's guided_json, guided_regex, guided_choice and
// structured_outputs ({json | regex | choice | json_object, disable_any_whitespace}).
// Each compiles to a grammar (runtime/grammar, cached by source) that masks every
// sampling step; a schema keyword the compiler cannot enforce is a 400 naming it,
// never a looser output. One constraint per request.
//
// Tools (tools.go): "tools" (function tools), "tool_choice" none | auto | required |
// {"type": "function", "function": {"name"}}, "parallel_tool_calls", assistant
// messages with "tool_calls" and "tool" messages. Tools are rendered by the model's
// chat template when it reads "tools" (Llama 3.1's); otherwise a documented system
// message lists them (chattemplate.ToolsSystemMessage). Output is read back in
// Llama 3.x's JSON format ({"name", "parameters"}, optionally after <|python_tag|>,
// several separated by "; ", or python_tag's name.call(k=v) form) into tool_calls
// with finish_reason "tool_calls". "required" and a named function are forced
// through a grammar, so calls always parse and their arguments validate; "auto"
// leaves the choice to the model, and output that starts like a call but does not
// parse comes back as content. With "none" the tools are not shown to the model.
// "auto" with a response_format allows either a call or an instance of the schema.
// Streams send tool calls as OpenAI does (a call's first delta has its id, type and
// name; its arguments follow in pieces — held back until the end with "auto").
//
// Requests are strict: a field the server does not know is a 400 naming it (a typo
// such as "max_token" is never silently ignored), and so is a known feature it does not
// implement (non-function tools, the deprecated functions API, grammars in EBNF,
// logit_bias, image or audio content, echo, suffix, best_of other than n, batched
// prompts). Only "user",
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
