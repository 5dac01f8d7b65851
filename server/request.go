package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/vireo-ai/vireo/internal/jinja"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// Request limits beyond what the engine checks.
const (
	maxN                   = 128 // completions per request (the engine's bound)
	maxStops               = 16  // stop strings per request
	maxStopBytes           = 256 // bytes per stop string
	defaultCompletionToken = 16  // /v1/completions max_tokens when unset, as OpenAI
)

// commonBody holds the fields both endpoints share: OpenAI's sampling parameters and
// vLLM's extensions (top_k, min_p, repetition_penalty, min_tokens, ignore_eos,
// stop_token_ids).
type commonBody struct {
	Model             *string         `json:"model"`
	Temperature       *float64        `json:"temperature"`
	TopP              *float64        `json:"top_p"`
	N                 *int            `json:"n"`
	Stream            *bool           `json:"stream"`
	StreamOptions     *streamOptions  `json:"stream_options"`
	Stop              json.RawMessage `json:"stop"`
	PresencePenalty   *float64        `json:"presence_penalty"`
	FrequencyPenalty  *float64        `json:"frequency_penalty"`
	Seed              *int64          `json:"seed"`
	User              *string         `json:"user"` // accepted, ignored: it only tags the request
	LogitBias         json.RawMessage `json:"logit_bias"`
	TopK              *int            `json:"top_k"`
	MinP              *float64        `json:"min_p"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
	MinTokens         *int            `json:"min_tokens"`
	IgnoreEOS         *bool           `json:"ignore_eos"`
	StopTokenIDs      []int64         `json:"stop_token_ids"`
	structuredFields
}

type streamOptions struct {
	IncludeUsage *bool `json:"include_usage"`
}

// completionBody is POST /v1/completions.
type completionBody struct {
	commonBody
	Prompt    json.RawMessage `json:"prompt"`
	MaxTokens *int            `json:"max_tokens"`
	Logprobs  *int            `json:"logprobs"`
	Echo      *bool           `json:"echo"`
	BestOf    *int            `json:"best_of"`
	Suffix    *string         `json:"suffix"`
}

// chatBody is POST /v1/chat/completions.
type chatBody struct {
	commonBody
	Messages            json.RawMessage `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int            `json:"top_logprobs"`
	Metadata            json.RawMessage `json:"metadata"`          // accepted, ignored: tags only
	ServiceTier         *string         `json:"service_tier"`      // accepted, ignored: one tier here
	SafetyIdentifier    *string         `json:"safety_identifier"` // accepted, ignored: like "user"
	PromptCacheKey      *string         `json:"prompt_cache_key"`  // accepted, ignored: a cache-routing hint
	Store               *bool           `json:"store"`
	Modalities          []string        `json:"modalities"`
	Tools               json.RawMessage `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   json.RawMessage `json:"parallel_tool_calls"`

	// Refused when present (not null): features this server does not have.
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`
	Audio            json.RawMessage `json:"audio"`
	Prediction       json.RawMessage `json:"prediction"`
	ReasoningEffort  json.RawMessage `json:"reasoning_effort"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	Verbosity        json.RawMessage `json:"verbosity"`
}

type chatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"`
	Name         *string         `json:"name"`    // accepted; the plain chat format has no place for it
	Refusal      *string         `json:"refusal"` // accepted on assistant turns, ignored
	ToolCalls    json.RawMessage `json:"tool_calls"`
	ToolCallID   json.RawMessage `json:"tool_call_id"`
	FunctionCall json.RawMessage `json:"function_call"`
	Audio        json.RawMessage `json:"audio"`
}

type endpoint int

const (
	epCompletion endpoint = iota
	epChat
)

// genRequest is a decoded, validated generation request, ready for the engine.
type genRequest struct {
	tools        *toolSpec // nil: no tools
	ep           endpoint
	model        string
	eng          engine.Request
	stream       bool
	includeUsage bool
	logprobs     bool // report logprobs (completions: "logprobs" given; chat: logprobs=true)
	topLogprobs  int
	maxParam     string // the request's name for max tokens (max_tokens, max_completion_tokens)
	ignored      ignored
}

// decoder turns request bodies into genRequests. It needs the tokenizer and the
// model's limits; it holds no per-request state.
type decoder struct {
	tok         *tokenizer.Tokenizer
	vocab       int
	maxModelLen int
	models      []string               // served names; models[0] is the default
	aliases     []string               // names accepted too, not listed
	adapter     func(name string) bool // a LoRA adapter of that name is loaded (nil: LoRA off)
	chatPrompt  func(msgs []chattemplate.Message, tools []chattemplate.Tool, limit int) ([]int32, error)
	chatEncode  func(msgs []chattemplate.Message, tools []chattemplate.Tool, addGen bool, limit int) ([]int32, error)
	maxWaiting  int           // the engine's waiting cap (0: none): n beyond it can never run
	maxLogprobs int           // top logprobs per token
	grammars    *grammarCache // compiled constraints
	pythonTag   int32         // <|python_tag|>'s id, -1 when the vocabulary has none
}

// templateError classifies a chat-template failure: a template that raises (e.g.
// "roles must alternate") or hits a size limit rejects the client's conversation; any
// other failure is the template's (the server's) fault.
func templateError(err error) *apiError {
	var raise *jinja.RaiseError
	var limit *jinja.LimitError
	switch {
	case errors.As(err, &raise):
		return badParam("messages", "the model's chat template rejected the conversation: %s", clip(raise.Message))
	case errors.As(err, &limit):
		return badParam("messages", "the conversation is too large for the model's chat template: %s", clip(limit.Msg))
	}
	return &apiError{Status: 500, Type: typeServer, Code: "chat_template_error", Message: "rendering the model's chat template failed: " + clip(err.Error())}
}

// resolveModel finds the model a request names: a served name or alias of the base
// model, or a LoRA adapter (then adapter is its name too).
func (d *decoder) resolveModel(m *string) (model, adapter string, e *apiError) {
	if m == nil || *m == "" {
		return d.models[0], "", nil
	}
	for _, name := range d.models {
		if *m == name {
			return name, "", nil
		}
	}
	for _, name := range d.aliases {
		if *m == name {
			return d.models[0], "", nil
		}
	}
	if d.adapter != nil && d.adapter(*m) {
		return *m, *m, nil
	}
	served := quoteList(d.models)
	if d.adapter != nil {
		served += " and the LoRA adapters GET /v1/models lists"
	}
	return "", "", &apiError{Status: 404, Type: typeNotFound, Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("the model %q does not exist; this server serves %s", clip(*m), served)}
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// decodeCompletion reads and validates a /v1/completions body.
func (d *decoder) decodeCompletion(body []byte) (*genRequest, *apiError) {
	var b completionBody
	g := &genRequest{ep: epCompletion}
	if err := decodeJSON(body, &b, &g.ignored); err != nil {
		return nil, err
	}
	var e *apiError
	if g.model, g.eng.Adapter, e = d.resolveModel(b.Model); e != nil {
		return nil, e
	}
	switch {
	case b.Echo != nil && *b.Echo:
		return nil, unsupported("echo", "the prompt is not echoed back")
	case b.Suffix != nil && *b.Suffix != "":
		return nil, unsupported("suffix", "insertion (fill-in-the-middle) is not implemented")
	}
	p, e := d.parsePrompt(b.Prompt)
	if e != nil {
		return nil, e
	}
	if p.isIDs {
		g.eng.Prompt = p.ids
	} else if g.eng.Prompt, e = d.encodeBounded("prompt", p.text, d.tok.DefaultOptions()); e != nil {
		return nil, e
	}
	if e := d.common(&b.commonBody, g); e != nil {
		return nil, e
	}
	if b.BestOf != nil && *b.BestOf != g.eng.N {
		return nil, unsupported("best_of", fmt.Sprintf("best_of=%d with n=%d: only best_of equal to n is implemented", *b.BestOf, g.eng.N))
	}
	if b.Logprobs != nil {
		k := *b.Logprobs
		if k < 0 || k > d.maxLogprobs {
			return nil, badParam("logprobs", "\"logprobs\" must be in [0, %d], got %d", d.maxLogprobs, k)
		}
		g.logprobs, g.topLogprobs = true, k
	}
	if e := d.lengths(g, "prompt", "max_tokens", b.MaxTokens, defaultCompletionToken, b.MinTokens); e != nil {
		return nil, e
	}
	format, e := b.structuredFields.parse(&g.ignored)
	if e != nil {
		return nil, e
	}
	if format != nil {
		if g.eng.Constraint, e = d.compile(format); e != nil {
			return nil, e
		}
	}
	if e := g.checkConstraint(); e != nil {
		return nil, e
	}
	g.fillEngine()
	return g, nil
}

// decodeChat reads and validates a /v1/chat/completions body.
func (d *decoder) decodeChat(body []byte) (*genRequest, *apiError) {
	var b chatBody
	g := &genRequest{ep: epChat}
	if err := decodeJSON(body, &b, &g.ignored); err != nil {
		return nil, err
	}
	var e *apiError
	if g.model, g.eng.Adapter, e = d.resolveModel(b.Model); e != nil {
		return nil, e
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		why  string
	}{
		{"functions", b.Functions, "the deprecated functions API is not implemented; use \"tools\""},
		{"function_call", b.FunctionCall, "the deprecated functions API is not implemented; use \"tool_choice\""},
		{"audio", b.Audio, "audio output is not implemented"},
		{"prediction", b.Prediction, "predicted outputs are not implemented"},
		{"reasoning_effort", b.ReasoningEffort, "this is not a reasoning model"},
		{"web_search_options", b.WebSearchOptions, "web search is not implemented"},
		{"verbosity", b.Verbosity, "output verbosity control is not implemented"},
	} {
		if !isNull(f.raw) {
			return nil, unsupported(f.name, f.why)
		}
	}
	format, e := b.structuredFields.parse(&g.ignored)
	if e != nil {
		return nil, e
	}
	tools, e := parseTools(b.Tools, b.ToolChoice, b.ParallelToolCalls, &g.ignored)
	if e != nil {
		return nil, e
	}
	g.tools = tools
	for _, m := range b.Modalities {
		if m != "text" {
			return nil, unsupported("modalities", fmt.Sprintf("output modality %q; only \"text\" is available", m))
		}
	}
	msgs, e := parseMessages(b.Messages, &g.ignored)
	if e != nil {
		return nil, e
	}
	contents := make([]string, len(msgs))
	for i := range msgs {
		contents[i] = msgs[i].Content
	}
	if e := d.checkChatBytes(contents); e != nil {
		return nil, e
	}
	var render []chattemplate.Tool // tools the prompt shows: none when the choice is "none"
	if tools.active() {
		render = tools.tools
	}
	if d.chatPrompt != nil {
		ids, err := d.chatPrompt(msgs, render, d.maxModelLen-1)
		if err != nil {
			return nil, templateError(err)
		}
		if len(ids) >= d.maxModelLen {
			return nil, d.promptTooLong("messages", len(ids), true, " (counting stopped there)")
		}
		g.eng.Prompt = ids
	} else {
		// No template hook: the plain "role: content" format, with special-token
		// text in the messages kept as text.
		text, err := chattemplate.RenderChatTools(nil, msgs, render, true, nil, nil)
		if err != nil {
			return nil, templateError(err)
		}
		if g.eng.Prompt, e = d.encodeBounded("messages", text, tokenizer.EncodeOptions{AddBOS: d.tok.DefaultOptions().AddBOS}); e != nil {
			return nil, e
		}
	}
	switch {
	case tools.forced() || tools.active() && format != nil:
		if g.eng.Constraint, e = d.toolGrammar(tools, format); e != nil {
			return nil, e
		}
	case format != nil:
		if g.eng.Constraint, e = d.compile(format); e != nil {
			return nil, e
		}
	}
	if e := d.common(&b.commonBody, g); e != nil {
		return nil, e
	}
	if b.Logprobs != nil && *b.Logprobs {
		g.logprobs = true
	}
	if b.TopLogprobs != nil {
		k := *b.TopLogprobs
		if k < 0 || k > d.maxLogprobs {
			return nil, badParam("top_logprobs", "\"top_logprobs\" must be in [0, %d], got %d", d.maxLogprobs, k)
		}
		if k > 0 && !g.logprobs {
			return nil, badParam("top_logprobs", "\"top_logprobs\" needs \"logprobs\": true")
		}
		g.topLogprobs = k
	}
	maxTok, param := b.MaxCompletionTokens, "max_completion_tokens"
	if maxTok == nil {
		maxTok, param = b.MaxTokens, "max_tokens"
	}
	if e := d.lengths(g, "messages", param, maxTok, 0, b.MinTokens); e != nil {
		return nil, e
	}
	if e := g.checkConstraint(); e != nil {
		return nil, e
	}
	g.fillEngine()
	return g, nil
}

// checkConstraint refuses what a constrained output cannot honour.
func (g *genRequest) checkConstraint() *apiError {
	if g.eng.Constraint != nil && g.eng.IgnoreEOS {
		return badParam("ignore_eos", "\"ignore_eos\" cannot be combined with a structured output or forced tool call: the output ends where it is complete")
	}
	return nil
}

// parseMessages reads the chat messages: text content only (a string, null, or a list
// of text parts); no tool turns.
func parseMessages(raw json.RawMessage, ig *ignored) ([]chattemplate.Message, *apiError) {
	if isNull(raw) {
		return nil, badParam("messages", "\"messages\" is required")
	}
	var list []chatMessage
	if firstByte(raw) != '[' {
		return nil, badParam("messages", "\"messages\" must be an array of messages, got %s", kindOf(raw))
	}
	checkKeys(raw, 0, reflect.TypeOf(list), "messages", ig) // before decoding: it masks case-folded keys
	if err := json.Unmarshal(raw, &list); err != nil {
		e := jsonError(err)
		if e.Param != "" && !strings.HasPrefix(e.Param, "messages") {
			e.Param = "messages." + e.Param
		}
		return nil, e
	}
	if len(list) == 0 {
		return nil, badParam("messages", "\"messages\" must hold at least one message")
	}
	out := make([]chattemplate.Message, len(list))
	callNames := map[string]string{} // tool call id → function name, from assistant turns
	for i, m := range list {
		at := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		case "function":
			return nil, unsupported(at+".role", "\"function\" messages belong to the deprecated functions API; answer tool calls with \"tool\" messages")
		case "":
			return nil, badParam(at+".role", "%s has no \"role\"", at)
		default:
			return nil, badParam(at+".role", "%s.role must be one of system, developer, user, assistant, tool; got %q", at, clip(m.Role))
		}
		switch {
		case !isNull(m.FunctionCall):
			return nil, unsupported(at+".function_call", "the deprecated functions API is not implemented; use \"tool_calls\"")
		case !isNull(m.Audio):
			return nil, unsupported(at+".audio", "audio is not implemented")
		case !isNull(m.ToolCalls) && m.Role != "assistant":
			return nil, badParam(at+".tool_calls", "only assistant messages carry \"tool_calls\"")
		case !isNull(m.ToolCallID) && m.Role != "tool":
			return nil, badParam(at+".tool_call_id", "only tool messages carry \"tool_call_id\"")
		}
		text, e := messageText(m.Content, at, ig)
		if e != nil {
			return nil, e
		}
		msg := chattemplate.Message{Role: m.Role, Content: text}
		if !isNull(m.ToolCalls) {
			calls, e := parseCallsIn(m.ToolCalls, at+".tool_calls", ig)
			if e != nil {
				return nil, e
			}
			for _, c := range calls {
				if c.ID != "" {
					callNames[c.ID] = c.Name
				}
			}
			msg.ToolCalls = calls
		}
		if m.Role == "tool" {
			var id string
			if isNull(m.ToolCallID) || json.Unmarshal(m.ToolCallID, &id) != nil || id == "" {
				return nil, badParam(at+".tool_call_id", "%s: a tool message needs the string \"tool_call_id\" of the call it answers", at)
			}
			msg.ToolCallID, msg.Name = id, callNames[id]
		}
		out[i] = msg
	}
	return out, nil
}

// parseCallsIn reads an assistant message's tool_calls: [{"id", "type": "function",
// "function": {"name", "arguments": "<JSON object>"}}].
func parseCallsIn(raw json.RawMessage, at string, ig *ignored) ([]chattemplate.ToolCall, *apiError) {
	var list []struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	if firstByte(raw) != '[' {
		return nil, badParam(at, "%s must be an array of tool calls", at)
	}
	if e := decodeField(raw, &list, at, ig); e != nil {
		return nil, e
	}
	var out []chattemplate.ToolCall
	for j, c := range list {
		cat := fmt.Sprintf("%s[%d]", at, j)
		if c.Type != "" && c.Type != "function" {
			return nil, unsupported(cat+".type", fmt.Sprintf("tool calls of type %q; only \"function\"", c.Type))
		}
		if c.Function.Name == "" {
			return nil, badParam(cat+".function.name", "%s has no function name", cat)
		}
		args := strings.TrimSpace(c.Function.Arguments)
		if args == "" {
			args = "{}"
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(args), &obj) != nil {
			return nil, badParam(cat+".function.arguments", "%s.function.arguments must be a JSON object's text", cat)
		}
		out = append(out, chattemplate.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: args})
	}
	return out, nil
}

// messageText flattens a message's content: a string, null, or text parts joined.
func messageText(raw json.RawMessage, at string, ig *ignored) (string, *apiError) {
	switch firstByte(raw) {
	case 0, 'n':
		return "", nil
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badParam(at+".content", "%s.content: %v", at, err)
		}
		return s, nil
	case '[':
	default:
		return "", badParam(at+".content", "%s.content must be a string or an array of content parts, got %s", at, kindOf(raw))
	}
	var parts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badParam(at+".content", "%s.content must be a string or an array of content-part objects", at)
	}
	var b strings.Builder
	for j, p := range parts {
		pat := fmt.Sprintf("%s.content[%d]", at, j)
		var typ string
		if json.Unmarshal(p["type"], &typ) != nil || typ == "" {
			return "", badParam(pat+".type", "%s has no string \"type\"", pat)
		}
		if typ != "text" {
			return "", unsupported(pat+".type", fmt.Sprintf("content parts of type %q; only \"text\" parts are accepted (this model reads text only)", clip(typ)))
		}
		for k := range p {
			if k != "type" && k != "text" {
				ig.add(pat + "." + k)
			}
		}
		var text string
		if err := json.Unmarshal(p["text"], &text); err != nil {
			return "", badParam(pat+".text", "%s.text must be a string", pat)
		}
		b.WriteString(text)
	}
	return b.String(), nil
}

// common validates the sampling fields and fills g (all but the lengths).
func (d *decoder) common(b *commonBody, g *genRequest) *apiError {
	p := sampling.DefaultParams()
	f32 := func(name string, v *float64, lo, hi float64, loOpen bool, dst *float32) *apiError {
		if v == nil {
			return nil
		}
		x := *v
		if math.IsNaN(x) || math.IsInf(x, 0) || x > hi || x < lo || (loOpen && x == lo) {
			open := "["
			if loOpen {
				open = "("
			}
			hiS := fmt.Sprint(hi)
			if math.IsInf(hi, 1) {
				hiS = "inf)"
			} else {
				hiS += "]"
			}
			return badParam(name, "%q must be in %s%v, %s, got %v", name, open, lo, hiS, x)
		}
		f := float32(x)
		if math.IsInf(float64(f), 0) || (loOpen && f == float32(lo)) {
			// In range, but not as the sampler's 32-bit float.
			return badParam(name, "%q is %v, which a 32-bit float (what the sampler takes) cannot hold: use a value between 1e-38 and 3.4e38 in magnitude", name, x)
		}
		*dst = f
		return nil
	}
	for _, e := range []*apiError{
		f32("temperature", b.Temperature, 0, 2, false, &p.Temperature),
		f32("top_p", b.TopP, 0, 1, true, &p.TopP),
		f32("min_p", b.MinP, 0, 1, false, &p.MinP),
		f32("presence_penalty", b.PresencePenalty, -2, 2, false, &p.PresencePenalty),
		f32("frequency_penalty", b.FrequencyPenalty, -2, 2, false, &p.FrequencyPenalty),
		f32("repetition_penalty", b.RepetitionPenalty, 0, math.Inf(1), true, &p.RepetitionPenalty),
	} {
		if e != nil {
			return e
		}
	}
	if b.TopK != nil {
		switch k := *b.TopK; {
		case k == -1: // vLLM's "disabled"
		case k < 0:
			return badParam("top_k", "\"top_k\" must be >= 0 (0 or -1 disables it), got %d", k)
		default:
			p.TopK = k
		}
	}
	g.eng.Sampling = p
	if b.Seed != nil {
		s := uint64(*b.Seed)
		g.eng.Seed = &s
	}
	g.eng.N = 1
	if b.N != nil {
		if *b.N < 1 || *b.N > maxN {
			return badParam("n", "\"n\" must be in [1, %d], got %d", maxN, *b.N)
		}
		if d.maxWaiting > 0 && *b.N > d.maxWaiting {
			return badParam("n", "\"n\" is %d, but this server queues at most %d completions at a time (its max_waiting): such a request could never run", *b.N, d.maxWaiting)
		}
		g.eng.N = *b.N
	}
	stops, e := parseStop(b.Stop)
	if e != nil {
		return e
	}
	g.eng.Stop = stops
	for _, id := range b.StopTokenIDs {
		if id < 0 || id >= int64(d.vocab) {
			return badParam("stop_token_ids", "stop token id %d is outside the vocabulary of %d tokens", id, d.vocab)
		}
		g.eng.StopTokenIDs = append(g.eng.StopTokenIDs, int32(id))
	}
	g.eng.IgnoreEOS = b.IgnoreEOS != nil && *b.IgnoreEOS
	if !isNull(b.LogitBias) && strings.ReplaceAll(string(b.LogitBias), " ", "") != "{}" {
		return unsupported("logit_bias", "per-token logit biases are not implemented")
	}
	g.stream = b.Stream != nil && *b.Stream
	if b.StreamOptions != nil {
		if !g.stream {
			return badParam("stream_options", "\"stream_options\" is only allowed with \"stream\": true")
		}
		g.includeUsage = b.StreamOptions.IncludeUsage != nil && *b.StreamOptions.IncludeUsage
	}
	return nil
}

// lengths checks the prompt against the context and settles max_tokens: an explicit
// value must fit beside the prompt; a default is clamped to what is left (0 means
// "the rest of the context").
func (d *decoder) lengths(g *genRequest, promptParam, maxParam string, maxTokens *int, def int, minTokens *int) *apiError {
	g.maxParam = maxParam
	n := len(g.eng.Prompt)
	if n == 0 {
		return badParam(promptParam, "the prompt is empty (and this tokenizer adds no BOS token)")
	}
	if n >= d.maxModelLen {
		return badParam(promptParam, "the prompt is %d tokens, but this model's maximum context length is %d tokens (at least one must be left for the completion)", n, d.maxModelLen)
	}
	left := d.maxModelLen - n
	switch {
	case maxTokens != nil:
		m := *maxTokens
		if m < 1 {
			return badParam(maxParam, "%q must be at least 1, got %d", maxParam, m)
		}
		if m > left {
			return badParam(maxParam, "this model's maximum context length is %d tokens, but %d were requested (%d in the prompt, %d for the completion): reduce the prompt or %q", d.maxModelLen, n+m, n, m, maxParam)
		}
		g.eng.MaxTokens = m
	case def > 0:
		g.eng.MaxTokens = min(def, left)
	default:
		g.eng.MaxTokens = left
	}
	if minTokens != nil {
		if *minTokens < 0 || *minTokens > g.eng.MaxTokens {
			return badParam("min_tokens", "\"min_tokens\" must be in [0, max tokens=%d], got %d", g.eng.MaxTokens, *minTokens)
		}
		g.eng.MinTokens = *minTokens
	}
	return nil
}

// fillEngine copies the reporting options into the engine request.
func (g *genRequest) fillEngine() {
	g.eng.Logprobs = g.logprobs
	g.eng.TopLogprobs = g.topLogprobs
}
