package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/grammar/grammartest"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

type chatResp struct {
	Choices []struct {
		Message struct {
			Content   *string       `json:"content"`
			ToolCalls []toolCallOut `json:"tool_calls"`
		} `json:"message"`
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

func postJSON(t *testing.T, ts *testServer, path, body string) chatResp {
	t.Helper()
	code, b, _ := ts.post(t, path, body)
	require.Equal(t, 200, code, "%s", b)
	var r chatResp
	require.NoError(t, json.Unmarshal(b, &r), "%s", b)
	return r
}

// sseChunks reads a stream's chunks (the data lines before [DONE]).
func sseChunks(t *testing.T, ts *testServer, path, body string) []map[string]any {
	t.Helper()
	resp := ts.streamReq(t, context.Background(), path, body)
	defer resp.Body.Close()
	raw, err := readAllString(resp)
	require.NoError(t, err)
	var out []map[string]any
	for _, line := range strings.Split(raw, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &m), data)
		out = append(out, m)
	}
	return out
}

// TestStructuredOutputsHTTP: response_format (json_object, json_schema) and vLLM's
// guided_json / guided_regex / guided_choice / structured_outputs on both endpoints,
// streamed and not: stories260K's outputs parse and validate (ajv).
func TestStructuredOutputsHTTP(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	person := `{"type":"object","properties":{"name":{"type":"string","maxLength":16},"age":{"type":"integer","minimum":1,"maximum":99},"pets":{"type":"array","items":{"enum":["cat","dog"]},"maxItems":2}},"required":["name","age","pets"],"additionalProperties":false}`
	msgs := `"messages":[{"role":"user","content":"Tell me about Lily."}]`
	var checks []grammartest.Check

	r := postJSON(t, ts, "/v1/chat/completions", `{`+msgs+`,"max_tokens":200,"n":2,"temperature":0.9,"seed":3,"response_format":{"type":"json_schema","json_schema":{"name":"person","schema":`+person+`,"strict":true}}}`)
	require.Len(t, r.Choices, 2)
	for _, c := range r.Choices {
		require.Equal(t, "stop", c.FinishReason)
		checks = append(checks, grammartest.Check{Schema: person, Text: *c.Message.Content})
	}

	r = postJSON(t, ts, "/v1/chat/completions", `{`+msgs+`,"max_tokens":200,"response_format":{"type":"json_object"}}`)
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(*r.Choices[0].Message.Content), &obj), *r.Choices[0].Message.Content)

	r = postJSON(t, ts, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":200,"temperature":0.7,"seed":1,"guided_json":`+mustQuote(person)+`}`)
	require.Equal(t, "stop", r.Choices[0].FinishReason)
	checks = append(checks, grammartest.Check{Schema: person, Text: r.Choices[0].Text})

	r = postJSON(t, ts, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":60,"guided_regex":"[a-z]+@[a-z]+\\.com"}`)
	require.Regexp(t, `^[a-z]+@[a-z]+\.com$`, r.Choices[0].Text)
	require.Equal(t, "stop", r.Choices[0].FinishReason)

	r = postJSON(t, ts, "/v1/chat/completions", `{`+msgs+`,"max_tokens":10,"guided_choice":["happy","sad"]}`)
	require.Contains(t, []string{"happy", "sad"}, *r.Choices[0].Message.Content)

	r = postJSON(t, ts, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":200,"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":`+person+`}},"temperature":1,"seed":8}`)
	checks = append(checks, grammartest.Check{Schema: person, Text: r.Choices[0].Text})

	r = postJSON(t, ts, "/v1/completions", `{"prompt":"Once upon a time","max_tokens":200,"structured_outputs":{"json":`+person+`,"disable_any_whitespace":true},"temperature":1,"seed":2}`)
	text := r.Choices[0].Text
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, []byte(text)), text)
	require.Equal(t, compact.String(), text, "no white space between tokens")
	checks = append(checks, grammartest.Check{Schema: person, Text: text})

	// Streamed: the deltas concatenate to a valid document.
	var streamed strings.Builder
	finish := ""
	for _, ch := range sseChunks(t, ts, "/v1/chat/completions", `{`+msgs+`,"max_tokens":200,"stream":true,"temperature":0.8,"seed":4,"response_format":{"type":"json_schema","json_schema":{"name":"person","schema":`+person+`}}}`) {
		for _, c := range ch["choices"].([]any) {
			c := c.(map[string]any)
			if d, ok := c["delta"].(map[string]any); ok {
				if s, ok := d["content"].(string); ok {
					streamed.WriteString(s)
				}
			}
			if f, ok := c["finish_reason"].(string); ok {
				finish = f
			}
		}
	}
	require.Equal(t, "stop", finish)
	checks = append(checks, grammartest.Check{Schema: person, Text: streamed.String()})

	for i, v := range grammartest.Ajv(t, checks) {
		require.True(t, v.Parses && v.Valid, "check %d: %s: %q", i, v.Errors, checks[i].Text)
	}
	ts.waitIdle(t, 0)
}

func mustQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestToolCallsHTTP: tools on stories260K (no chat template: the documented
// fallback system message) — tool_choice required, named, auto, auto with a
// response format, streamed calls, and the round trip with tool messages.
func TestToolCallsHTTP(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	params := `{"type":"object","properties":{"city":{"type":"string","maxLength":10},"unit":{"enum":["c","f"]}},"required":["city","unit"]}`
	tools := `"tools":[{"type":"function","function":{"name":"weather","parameters":` + params + `}},{"type":"function","function":{"name":"now"}}]`
	msgs := `"messages":[{"role":"user","content":"Weather in Oslo?"}]`
	var checks []grammartest.Check
	argsOK := func(calls []toolCallOut) {
		for _, c := range calls {
			switch c.Function.Name {
			case "weather":
				checks = append(checks, grammartest.Check{Schema: params, Text: c.Function.Arguments})
			case "now":
				require.JSONEq(t, `{}`, c.Function.Arguments)
			default:
				t.Fatalf("unknown tool %q", c.Function.Name)
			}
			require.Regexp(t, `^call_[A-Za-z0-9]{24}$`, c.ID)
			require.Equal(t, "function", c.Type)
		}
	}

	for seed := 1; seed <= 4; seed++ {
		r := postJSON(t, ts, "/v1/chat/completions", fmt.Sprintf(`{%s,%s,"tool_choice":"required","max_tokens":120,"temperature":1,"seed":%d}`, msgs, tools, seed))
		c := r.Choices[0]
		require.Equal(t, "tool_calls", c.FinishReason)
		require.Nil(t, c.Message.Content)
		require.NotEmpty(t, c.Message.ToolCalls)
		argsOK(c.Message.ToolCalls)
	}

	r := postJSON(t, ts, "/v1/chat/completions", `{`+msgs+`,`+tools+`,"tool_choice":{"type":"function","function":{"name":"weather"}},"max_tokens":120,"temperature":1,"seed":9}`)
	require.Len(t, r.Choices[0].Message.ToolCalls, 1)
	require.Equal(t, "weather", r.Choices[0].Message.ToolCalls[0].Function.Name)
	argsOK(r.Choices[0].Message.ToolCalls)

	r = postJSON(t, ts, "/v1/chat/completions", `{`+msgs+`,`+tools+`,"tool_choice":"required","parallel_tool_calls":false,"max_tokens":120,"temperature":1,"seed":5}`)
	require.Len(t, r.Choices[0].Message.ToolCalls, 1, "parallel_tool_calls false: one call")

	// auto: this model writes prose, which comes back as content.
	r = postJSON(t, ts, "/v1/chat/completions", `{`+msgs+`,`+tools+`,"max_tokens":20,"temperature":0}`)
	require.NotNil(t, r.Choices[0].Message.Content)
	require.Empty(t, r.Choices[0].Message.ToolCalls)

	// auto with a response format: a call or an object of the schema, either parsed.
	for seed := 1; seed <= 3; seed++ {
		r = postJSON(t, ts, "/v1/chat/completions", fmt.Sprintf(`{%s,%s,"max_tokens":120,"temperature":1,"seed":%d,"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object","properties":{"answer":{"type":"integer"}},"required":["answer"],"additionalProperties":false}}}}`, msgs, tools, seed))
		c := r.Choices[0]
		if len(c.Message.ToolCalls) > 0 {
			require.Equal(t, "tool_calls", c.FinishReason)
			argsOK(c.Message.ToolCalls)
		} else {
			var v struct{ Answer *int }
			require.NoError(t, json.Unmarshal([]byte(*c.Message.Content), &v))
			require.NotNil(t, v.Answer)
		}
	}

	// Streamed calls: the first delta of a call has its id, type and name; the
	// arguments arrive in pieces and concatenate to valid JSON.
	type acc struct {
		id, name string
		args     strings.Builder
		pieces   int
	}
	calls := map[int]*acc{}
	finish := ""
	for _, ch := range sseChunks(t, ts, "/v1/chat/completions", `{`+msgs+`,`+tools+`,"tool_choice":"required","stream":true,"max_tokens":120,"temperature":1,"seed":6}`) {
		for _, c := range ch["choices"].([]any) {
			c := c.(map[string]any)
			if f, ok := c["finish_reason"].(string); ok {
				finish = f
			}
			d, _ := c["delta"].(map[string]any)
			tcs, _ := d["tool_calls"].([]any)
			for _, x := range tcs {
				tc := x.(map[string]any)
				i := int(tc["index"].(float64))
				fn := tc["function"].(map[string]any)
				if calls[i] == nil {
					calls[i] = &acc{}
					require.NotEmpty(t, tc["id"], "a call's first delta names it")
					require.Equal(t, "function", tc["type"])
					calls[i].id, calls[i].name = tc["id"].(string), fn["name"].(string)
				}
				calls[i].args.WriteString(fn["arguments"].(string))
				calls[i].pieces++
			}
		}
	}
	require.Equal(t, "tool_calls", finish)
	require.NotEmpty(t, calls)
	var got []toolCallOut
	for i := 0; i < len(calls); i++ {
		require.NotNil(t, calls[i], "indexes are dense")
		require.Greater(t, calls[i].pieces, 1, "arguments stream in pieces")
		got = append(got, toolCallOut{ID: calls[i].id, Type: "function", Function: functionCall{Name: calls[i].name, Arguments: calls[i].args.String()}})
	}
	argsOK(got)

	// The round trip: the assistant's call and the tool's answer go back.
	body := `{"messages":[{"role":"user","content":"Weather in Oslo?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Oslo\",\"unit\":\"c\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"{\"temp\":3}"}],` + tools + `,"max_tokens":8}`
	r = postJSON(t, ts, "/v1/chat/completions", body)
	require.NotNil(t, r.Choices[0].Message.Content)

	for i, v := range grammartest.Ajv(t, checks) {
		require.True(t, v.Parses && v.Valid, "arguments %d: %s: %q", i, v.Errors, checks[i].Text)
	}
	ts.waitIdle(t, 0)
}

// TestStreamToolsAuto: with tool_choice "auto", output that starts like a call is
// held back and sent as calls when it parses — and as content when it does not (it
// is never dropped); prose streams as content at once; <|python_tag|> starts a call.
func TestStreamToolsAuto(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true, fake: 1})
	spec := &toolSpec{choice: "auto", parallel: true, tools: []chattemplate.Tool{{Name: "weather"}}}
	run := func(pythonTag bool, pieces ...string) (content string, calls []toolCallDelta, finish string) {
		g := &genRequest{ep: epChat, tools: spec, model: "m"}
		r := &genRun{s: ts.Server, g: g, l: &reqLog{id: "x"}, choices: make([]choice, 1)}
		sw := &sseWriter{}
		r.chunkPrefix(sw)
		if pythonTag {
			r.choices[0].started, r.choices[0].pythonTag = true, true
		}
		for i, p := range pieces {
			ev := engine.Event{Index: 0, Text: p, HasToken: true}
			if i == len(pieces)-1 {
				ev.Finish = engine.FinishStop
			}
			r.streamEvent(sw, &ev)
		}
		for _, line := range strings.Split(string(sw.buf), "\n") {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				continue
			}
			var ch struct {
				Choices []struct {
					Delta struct {
						Content   *string         `json:"content"`
						ToolCalls []toolCallDelta `json:"tool_calls"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
			}
			require.NoError(t, json.Unmarshal([]byte(data), &ch), data)
			for _, c := range ch.Choices {
				if c.Delta.Content != nil {
					content += *c.Delta.Content
				}
				calls = append(calls, c.Delta.ToolCalls...)
				if c.FinishReason != nil {
					finish = *c.FinishReason
				}
			}
		}
		return
	}
	content, calls, finish := run(false, "Once", " upon", " a time")
	require.Equal(t, "Once upon a time", content)
	require.Empty(t, calls)
	require.Equal(t, "stop", finish)

	content, calls, finish = run(false, ` {"name": "weather", "param`, `eters": {"city": "Oslo"}}`)
	require.Empty(t, content)
	require.Len(t, calls, 1)
	require.Equal(t, "weather", calls[0].Function.Name)
	require.JSONEq(t, `{"city":"Oslo"}`, calls[0].Function.Arguments)
	require.Equal(t, "tool_calls", finish)

	// Starts like a call, is not one: returned whole as content.
	content, calls, finish = run(false, `{"name": "weather", `, `"parameters": {"city": "Os`)
	require.Equal(t, `{"name": "weather", "parameters": {"city": "Os`, content)
	require.Empty(t, calls)
	require.Equal(t, "stop", finish)

	content, calls, _ = run(false, `{"name": "unknown_tool", "parameters": {}}`)
	require.Equal(t, `{"name": "unknown_tool", "parameters": {}}`, content, "calls to tools not offered are content")
	require.Empty(t, calls)

	content, calls, finish = run(true, "", `{"name": "weather", "parameters": {"city": "Rome"}}`)
	require.Empty(t, content)
	require.Len(t, calls, 1)
	require.Equal(t, "tool_calls", finish)
}
