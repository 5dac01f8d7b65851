package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// vLLM's tokenizer endpoints (vllm/entrypoints/openai/protocol.py: TokenizeRequest,
// TokenizeResponse, DetokenizeRequest, DetokenizeResponse):
//
//	POST /tokenize   {"prompt": "text", "add_special_tokens": true, "return_token_strs": false}
//	             or  {"messages": [...], "add_generation_prompt": true, "add_special_tokens": false, ...}
//	              -> {"count": 5, "max_model_len": 512, "tokens": [1, 403, ...], "token_strs": null}
//	POST /detokenize {"tokens": [1, 403, ...]} -> {"prompt": "text"}
//	GET  /version    -> {"version": "0.1.0-dev"}
//
// Both POSTs take "model" (optional, as in vLLM), go through the same body limit and
// parsing gate as generation requests, and are bounded as vLLM bounds them: a text or
// chat must fit max_model_len (the encoding stops there), and so must the tokens to
// detokenize. A chat's ids are exactly those a chat completion would prefill.

type tokenizeBody struct {
	Model                *string         `json:"model"`
	Prompt               *string         `json:"prompt"`
	Messages             json.RawMessage `json:"messages"`
	AddSpecialTokens     *bool           `json:"add_special_tokens"`
	AddGenerationPrompt  *bool           `json:"add_generation_prompt"`
	ContinueFinalMessage *bool           `json:"continue_final_message"`
	ReturnTokenStrs      *bool           `json:"return_token_strs"`
	Tools                json.RawMessage `json:"tools"` // a chat's: rendered as a chat completion renders them
	// Accepted when null; refused otherwise (not implemented here).
	ChatTemplate       json.RawMessage `json:"chat_template"`
	ChatTemplateKwargs json.RawMessage `json:"chat_template_kwargs"`
	MMProcessorKwargs  json.RawMessage `json:"mm_processor_kwargs"`
}

type tokenizeResponse struct {
	Count       int      `json:"count"`
	MaxModelLen int      `json:"max_model_len"`
	Tokens      []int32  `json:"tokens"`
	TokenStrs   []string `json:"token_strs"` // null unless return_token_strs
}

type detokenizeBody struct {
	Model  *string         `json:"model"`
	Tokens json.RawMessage `json:"tokens"`
}

type detokenizeResponse struct {
	Prompt string `json:"prompt"`
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// decodeTokenize reads and runs a /tokenize body.
func (d *decoder) decodeTokenize(body []byte, ig *ignored) (*tokenizeResponse, *apiError) {
	var b tokenizeBody
	if e := decodeJSON(body, &b, ig); e != nil {
		return nil, e
	}
	if _, _, e := d.resolveModel(b.Model); e != nil {
		return nil, e
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		why  string
	}{
		{"chat_template", b.ChatTemplate, "the model's own chat template is used"},
		{"chat_template_kwargs", b.ChatTemplateKwargs, "the chat template takes no extra arguments here"},
		{"mm_processor_kwargs", b.MMProcessorKwargs, "this model reads text only"},
	} {
		if !isNull(f.raw) {
			return nil, unsupported(f.name, f.why)
		}
	}
	var ids []int32
	switch {
	case b.Prompt != nil && !isNull(b.Messages):
		return nil, badParam("messages", "give either \"prompt\" (a text) or \"messages\" (a chat), not both")
	case b.Prompt != nil:
		opt := d.tok.DefaultOptions()
		opt.AddBOS = opt.AddBOS && boolOr(b.AddSpecialTokens, true)
		var e *apiError
		if ids, e = d.encodeBounded("prompt", *b.Prompt, opt); e != nil {
			return nil, e
		}
	case !isNull(b.Messages):
		addGen := boolOr(b.AddGenerationPrompt, true)
		if boolOr(b.ContinueFinalMessage, false) {
			if addGen {
				return nil, badParam("continue_final_message", "Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
			}
			return nil, unsupported("continue_final_message", "an open-ended final message is not implemented")
		}
		msgs, e := parseMessages(b.Messages, ig)
		if e != nil {
			return nil, e
		}
		spec, e := parseTools(b.Tools, nil, nil, ig)
		if e != nil {
			return nil, e
		}
		var tools []chattemplate.Tool // rendered as a chat completion offering them renders them
		if spec != nil {
			tools = spec.tools
		}
		if ids, e = d.encodeChat(msgs, tools, addGen); e != nil {
			return nil, e
		}
		if boolOr(b.AddSpecialTokens, false) {
			if bos := d.tok.BOS(); bos >= 0 && (len(ids) == 0 || ids[0] != bos) {
				ids = append([]int32{bos}, ids...)
			}
		}
	default:
		return nil, badParam("prompt", "\"prompt\" (a text) or \"messages\" (a chat) is required")
	}
	r := &tokenizeResponse{Count: len(ids), MaxModelLen: d.maxModelLen, Tokens: ids}
	if r.Tokens == nil {
		r.Tokens = []int32{}
	}
	if boolOr(b.ReturnTokenStrs, false) {
		r.TokenStrs = make([]string, len(ids))
		for i, id := range ids {
			r.TokenStrs[i] = d.tok.Spelling(id)
		}
	}
	return r, nil
}

// encodeChat renders and encodes a chat, with the tools it offers, as a chat
// completion would (the generation prompt optional), refusing it once it is known not
// to fit the context.
func (d *decoder) encodeChat(msgs []chattemplate.Message, tools []chattemplate.Tool, addGen bool) ([]int32, *apiError) {
	contents := make([]string, len(msgs))
	for i := range msgs {
		contents[i] = msgs[i].Content
	}
	if e := d.checkChatBytes(contents); e != nil {
		return nil, e
	}
	limit := d.maxModelLen - 1
	var ids []int32
	var err error
	switch {
	case d.chatEncode != nil:
		ids, err = d.chatEncode(msgs, tools, addGen, limit)
	case d.chatPrompt != nil && addGen:
		ids, err = d.chatPrompt(msgs, tools, limit)
	default:
		// The plain "role: content" format, as the chat path renders it.
		text, rerr := chattemplate.RenderChatTools(nil, msgs, tools, addGen, nil, nil)
		if rerr != nil {
			return nil, templateError(rerr)
		}
		var e *apiError
		if ids, e = d.encodeBounded("messages", text, tokenizer.EncodeOptions{AddBOS: d.tok.DefaultOptions().AddBOS}); e != nil {
			return nil, e
		}
	}
	if err != nil {
		return nil, templateError(err)
	}
	if len(ids) > limit {
		return nil, d.promptTooLong("messages", len(ids), true, " (counting stopped there)")
	}
	return ids, nil
}

// decodeDetokenize reads and runs a /detokenize body.
func (d *decoder) decodeDetokenize(body []byte, ig *ignored) (*detokenizeResponse, *apiError) {
	var b detokenizeBody
	if e := decodeJSON(body, &b, ig); e != nil {
		return nil, e
	}
	if _, _, e := d.resolveModel(b.Model); e != nil {
		return nil, e
	}
	const shape = "\"tokens\" must be an array of token ids (integers)"
	switch firstByte(b.Tokens) {
	case 0, 'n':
		return nil, badParam("tokens", "\"tokens\" is required")
	case '[':
	default:
		return nil, badParam("tokens", "%s, got %s", shape, kindOf(b.Tokens))
	}
	// Count before decoding: a body of millions of ids costs no more than its bytes.
	raw := []byte(b.Tokens)
	n := 0
	for i := skipWS(raw, skipWS(raw, 0)+1); i < len(raw) && raw[i] != ']'; n++ {
		if i = skipWS(raw, skipValue(raw, i)); i < len(raw) && raw[i] == ',' {
			i = skipWS(raw, i+1)
		}
	}
	if n > d.maxModelLen {
		return nil, badParam("tokens", "%d tokens to detokenize, but this model's maximum context length is %d tokens", n, d.maxModelLen)
	}
	var ids []int64
	if err := json.Unmarshal(b.Tokens, &ids); err != nil {
		return nil, badParam("tokens", shape)
	}
	out := make([]int32, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(d.vocab) {
			return nil, badParam("tokens", "token id %d at position %d is outside the vocabulary of %d tokens", id, i, d.vocab)
		}
		out[i] = int32(id)
	}
	// As SentencePiece decodes (and so Hugging Face's tokenizers): the first token loses
	// the dummy-prefix space Encode added, as the token after BOS does (Decode); BOS
	// itself decodes to "". Byte-level vocabularies give back their bytes as they are.
	if bos := d.tok.BOS(); bos >= 0 && (len(out) == 0 || out[0] != bos) {
		out = append([]int32{bos}, out...)
	}
	return &detokenizeResponse{Prompt: d.tok.Decode(out)}, nil
}

// serveTokenizer runs POST /tokenize and /detokenize.
func (s *Server) serveTokenizer(w http.ResponseWriter, r *http.Request, detok bool) {
	l := &reqLog{path: clip(r.URL.Path), start: time.Now()}
	defer s.logRequest(l)
	l.id = newID("tok-")
	ctx := r.Context()
	body, e := s.readBody(ctx, w, r)
	if e != nil {
		s.fail(w, l, e, "invalid")
		return
	}
	ok, err := s.parsing.enter(ctx)
	if !ok {
		if err != nil {
			l.status, l.err = 499, "client went away while its request waited to be parsed"
			return
		}
		s.fail(w, l, &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "server_busy", RetryAfter: s.retryAfter(),
			Message: fmt.Sprintf("the server is parsing as many requests as it may at once (%d, max_concurrent_parsing) with as many waiting; retry after a moment", s.cfg.MaxConcurrentParsing)}, "busy")
		return
	}
	defer s.parsing.leave()
	var ig ignored
	var resp any
	if detok {
		resp, e = s.dec.decodeDetokenize(body, &ig)
	} else {
		resp, e = s.dec.decodeTokenize(body, &ig)
	}
	if e != nil {
		s.fail(w, l, contentTypeNote(e, r), "invalid")
		return
	}
	s.fields.note(l.id, l.path, &ig)
	l.status = http.StatusOK
	writeJSON(w, http.StatusOK, resp)
}
