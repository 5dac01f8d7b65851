package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadRequests: every client mistake gets a 4xx with OpenAI's error JSON, a message
// that says what is wrong, and the field at fault in "param".
func TestBadRequests(t *testing.T) {
	ts := newTestServer(t, serverOpts{cfg: Config{MaxBodyBytes: 8 << 10}, quiet: true})
	long := "[" + strings.Repeat("5,", 599) + "5]"
	const C, Chat = "/v1/completions", "/v1/chat/completions"
	msgs := `"messages":[{"role":"user","content":"Hi"}]`
	cases := []struct {
		name   string
		method string // default POST
		path   string
		ctype  string // default application/json
		body   string
		status int
		param  string // "-" for no param
		msg    string // a substring of the message
	}{
		{name: "malformed JSON", path: C, body: `{"prompt":`, status: 400, param: "-", msg: "malformed JSON"},
		{name: "syntax error", path: C, body: `{"prompt":"x",}`, status: 400, param: "-", msg: "malformed JSON at byte offset"},
		{name: "empty body", path: C, body: ``, status: 400, param: "-", msg: "request body is empty"},
		{name: "not an object", path: C, body: `["x"]`, status: 400, param: "-", msg: "must be a JSON object, got an array"},
		{name: "trailing data", path: C, body: `{"prompt":"x"} {}`, status: 400, param: "-", msg: "unexpected data after the request object"},
		{name: "string temperature", path: C, body: `{"prompt":"x","temperature":"hot"}`, status: 400, param: "temperature", msg: `"temperature" must be a number, got a string`},
		{name: "fractional max_tokens", path: C, body: `{"prompt":"x","max_tokens":1.5}`, status: 400, param: "max_tokens", msg: `"max_tokens" must be an integer, got 1.5`},
		{name: "string stream", path: C, body: `{"prompt":"x","stream":"yes"}`, status: 400, param: "stream", msg: `"stream" must be a boolean`},
		{name: "string seed", path: C, body: `{"prompt":"x","seed":"7"}`, status: 400, param: "seed", msg: `"seed" must be an integer`},
		{name: "unknown model", path: C, body: `{"model":"gpt-4","prompt":"x"}`, status: 404, param: "model", msg: `the model "gpt-4" does not exist; this server serves "stories260K"`},
		{name: "missing prompt", path: C, body: `{"max_tokens":3}`, status: 400, param: "prompt", msg: `"prompt" is required`},
		{name: "numeric prompt", path: C, body: `{"prompt":42}`, status: 400, param: "prompt", msg: "must be a string, an array of token ids"},
		{name: "batched prompts", path: C, body: `{"prompt":["a","b"]}`, status: 400, param: "prompt", msg: "a batch of 2 prompts"},
		{name: "token id outside vocab", path: C, body: `{"prompt":[1,600]}`, status: 400, param: "prompt", msg: "prompt token id 600 at position 1 is outside the vocabulary of 512 tokens"},
		{name: "prompt longer than context", path: C, body: `{"prompt":` + long + `}`, status: 400, param: "prompt", msg: "the prompt is 600 tokens, but this model's maximum context length is 512 tokens"},
		{name: "max_tokens beyond context", path: C, body: `{"prompt":"Once upon a time","max_tokens":510}`, status: 400, param: "max_tokens", msg: "maximum context length is 512 tokens, but 515 were requested (5 in the prompt, 510 for the completion)"},
		{name: "zero max_tokens", path: C, body: `{"prompt":"x","max_tokens":0}`, status: 400, param: "max_tokens", msg: `"max_tokens" must be at least 1, got 0`},
		{name: "temperature too high", path: C, body: `{"prompt":"x","temperature":3}`, status: 400, param: "temperature", msg: `"temperature" must be in [0, 2], got 3`},
		{name: "zero top_p", path: C, body: `{"prompt":"x","top_p":0}`, status: 400, param: "top_p", msg: `"top_p" must be in (0, 1], got 0`},
		{name: "negative top_k", path: C, body: `{"prompt":"x","top_k":-5}`, status: 400, param: "top_k", msg: `"top_k" must be >= 0`},
		{name: "min_p above 1", path: C, body: `{"prompt":"x","min_p":1.5}`, status: 400, param: "min_p", msg: `"min_p" must be in [0, 1]`},
		{name: "presence_penalty out of range", path: C, body: `{"prompt":"x","presence_penalty":2.5}`, status: 400, param: "presence_penalty", msg: `"presence_penalty" must be in [-2, 2], got 2.5`},
		{name: "zero repetition_penalty", path: C, body: `{"prompt":"x","repetition_penalty":0}`, status: 400, param: "repetition_penalty", msg: `"repetition_penalty" must be in (0, inf)`},
		{name: "n zero", path: C, body: `{"prompt":"x","n":0}`, status: 400, param: "n", msg: `"n" must be in [1, 128], got 0`},
		{name: "n too large", path: C, body: `{"prompt":"x","n":129}`, status: 400, param: "n", msg: `"n" must be in [1, 128], got 129`},
		{name: "logprobs too large", path: C, body: `{"prompt":"x","logprobs":21}`, status: 400, param: "logprobs", msg: `"logprobs" must be in [0, 20], got 21`},
		{name: "stop wrong type", path: C, body: `{"prompt":"x","stop":7}`, status: 400, param: "stop", msg: `"stop" must be a string or an array of strings, got a number`},
		{name: "empty stop string", path: C, body: `{"prompt":"x","stop":["a",""]}`, status: 400, param: "stop", msg: "stop string 1 is empty"},
		{name: "too many stops", path: C, body: `{"prompt":"x","stop":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, status: 400, param: "stop", msg: "at most 16 stop strings are allowed, got 17"},
		{name: "echo", path: C, body: `{"prompt":"x","echo":true}`, status: 400, param: "echo", msg: `"echo" is not supported`},
		{name: "suffix", path: C, body: `{"prompt":"x","suffix":"end"}`, status: 400, param: "suffix", msg: `"suffix" is not supported`},
		{name: "best_of above n", path: C, body: `{"prompt":"x","best_of":3}`, status: 400, param: "best_of", msg: "best_of=3 with n=1"},
		{name: "logit_bias", path: C, body: `{"prompt":"x","logit_bias":{"50":-100}}`, status: 400, param: "logit_bias", msg: `"logit_bias" is not supported`},
		{name: "stream_options without stream", path: C, body: `{"prompt":"x","stream_options":{"include_usage":true}}`, status: 400, param: "stream_options", msg: `only allowed with "stream": true`},
		{name: "min_tokens above max_tokens", path: C, body: `{"prompt":"x","max_tokens":4,"min_tokens":5}`, status: 400, param: "min_tokens", msg: `"min_tokens" must be in [0, max tokens=4], got 5`},
		{name: "stop token id outside vocab", path: C, body: `{"prompt":"x","stop_token_ids":[9999]}`, status: 400, param: "stop_token_ids", msg: "stop token id 9999 is outside the vocabulary"},
		{name: "chat without messages", path: Chat, body: `{"model":"stories260K"}`, status: 400, param: "messages", msg: `"messages" is required`},
		{name: "chat empty messages", path: Chat, body: `{"messages":[]}`, status: 400, param: "messages", msg: "at least one message"},
		{name: "chat messages not array", path: Chat, body: `{"messages":"hi"}`, status: 400, param: "messages", msg: `"messages" must be an array of messages, got a string`},
		{name: "chat tools not array", path: Chat, body: `{` + msgs + `,"tools":{"type":"function"}}`, status: 400, param: "tools", msg: `"tools" must be an array`},
		{name: "chat custom tool", path: Chat, body: `{` + msgs + `,"tools":[{"type":"custom","function":{"name":"f"}}]}`, status: 400, param: "tools[0].type", msg: `only "function" tools`},
		{name: "chat tool bad name", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"a b"}}]}`, status: 400, param: "tools[0].function.name", msg: "must match"},
		{name: "chat duplicate tools", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}]}`, status: 400, param: "tools[1].function.name", msg: `two tools are named "f"`},
		{name: "chat tool_choice without tools", path: Chat, body: `{` + msgs + `,"tool_choice":"auto"}`, status: 400, param: "tool_choice", msg: `needs "tools"`},
		{name: "chat tool_choice unknown tool", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}`, status: 400, param: "tool_choice", msg: `names "g", which is not among the tools`},
		{name: "chat tool_choice bad", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always"}`, status: 400, param: "tool_choice", msg: `"tool_choice" must be`},
		{name: "chat tool parameters unsupported keyword", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string","format":"hostname"}}}}}],"tool_choice":"required"}`, status: 400, param: "tools[0].function.parameters", msg: `"format" "hostname" is not supported`},
		{name: "chat parallel_tool_calls not bool", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":"yes"}`, status: 400, param: "parallel_tool_calls", msg: "must be a boolean"},
		{name: "chat response_format with forced tool", path: Chat, body: `{` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required","response_format":{"type":"json_object"}}`, status: 400, param: "response_format", msg: "cannot be combined with tool_choice"},
		{name: "chat tool_choice wrong type", path: Chat, body: `{` + msgs + `,"tool_choice":5}`, status: 400, param: "tool_choice", msg: `"tool_choice" must be a string or an object, got a number`},
		{name: "chat parallel_tool_calls wrong type without tools", path: Chat, body: `{` + msgs + `,"parallel_tool_calls":"yes"}`, status: 400, param: "parallel_tool_calls", msg: `"parallel_tool_calls" must be a boolean`},
		{name: "chat user wrong type", path: Chat, body: `{` + msgs + `,"user":7}`, status: 400, param: "user", msg: `"user" must be a string`},
		{name: "chat functions", path: Chat, body: `{` + msgs + `,"functions":[]}`, status: 400, param: "functions", msg: `"functions" is not supported`},
		{name: "chat response_format unknown type", path: Chat, body: `{` + msgs + `,"response_format":{"type":"yaml"}}`, status: 400, param: "response_format.type", msg: `response_format type "yaml"`},
		{name: "chat json_schema without name", path: Chat, body: `{` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"schema":{}}}}`, status: 400, param: "response_format.json_schema.name", msg: "is required"},
		{name: "chat json_schema without schema", path: Chat, body: `{` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, status: 400, param: "response_format.json_schema.schema", msg: "is required"},
		{name: "chat json_schema unsupported keyword", path: Chat, body: `{` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"n":{"type":"number","multipleOf":3}}}}}}`, status: 400, param: "response_format.json_schema.schema", msg: `"multipleOf" is not supported`},
		{name: "chat json_schema unknown keyword", path: Chat, body: `{` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","maxLenght":3}}}}`, status: 400, param: "response_format.json_schema.schema", msg: `"maxLenght"`},
		{name: "chat json_schema unsatisfiable", path: Chat, body: `{` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"integer","minimum":5,"maximum":4}}}}`, status: 400, param: "response_format.json_schema.schema", msg: "no JSON value satisfies"},
		{name: "chat two constraints", path: Chat, body: `{` + msgs + `,"response_format":{"type":"json_object"},"guided_regex":"a+"}`, status: 400, param: "guided_regex", msg: "only one structured-output constraint"},
		{name: "guided_json unsupported keyword", path: C, body: `{"prompt":"x","guided_json":{"type":"array","uniqueItems":true}}`, status: 400, param: "guided_json", msg: `"uniqueItems"`},
		{name: "guided_json as string", path: C, body: `{"prompt":"x","guided_json":"{\"type\":\"object\",\"not\":{}}"}`, status: 400, param: "guided_json", msg: `"not"`},
		{name: "guided_regex lookahead", path: C, body: `{"prompt":"x","guided_regex":"(?=a)b"}`, status: 400, param: "guided_regex", msg: "lookaround"},
		{name: "guided_regex not string", path: C, body: `{"prompt":"x","guided_regex":5}`, status: 400, param: "guided_regex", msg: "must be a string"},
		{name: "guided_choice empty", path: C, body: `{"prompt":"x","guided_choice":[]}`, status: 400, param: "guided_choice", msg: "non-empty array of strings"},
		{name: "guided_grammar", path: C, body: `{"prompt":"x","guided_grammar":"root ::= \"a\""}`, status: 400, param: "guided_grammar", msg: "context-free grammars"},
		{name: "structured_outputs two kinds", path: C, body: `{"prompt":"x","structured_outputs":{"regex":"a","choice":["b"]}}`, status: 400, param: "structured_outputs", msg: "not several"},
		{name: "structured_outputs unknown field", path: C, body: `{"prompt":"x","structured_outputs":{"ebnf":"a"}}`, status: 400, param: "structured_outputs.ebnf", msg: `unknown field "ebnf"`},
		{name: "constraint with ignore_eos", path: C, body: `{"prompt":"x","guided_choice":["a","b"],"ignore_eos":true}`, status: 400, param: "ignore_eos", msg: "cannot be combined"},
		{name: "chat image part", path: Chat, body: `{"messages":[{"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]}`, status: 400, param: "messages[0].content[1].type", msg: `content parts of type "image_url"`},
		{name: "chat audio part", path: Chat, body: `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"","format":"wav"}}]}]}`, status: 400, param: "messages[0].content[0].type", msg: `"input_audio"`},
		{name: "chat tool role without id", path: Chat, body: `{"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"42"}]}`, status: 400, param: "messages[1].tool_call_id", msg: `needs the string "tool_call_id"`},
		{name: "chat function role", path: Chat, body: `{"messages":[{"role":"function","content":"42","name":"f"}]}`, status: 400, param: "messages[0].role", msg: `deprecated functions API`},
		{name: "chat tool_calls on user", path: Chat, body: `{"messages":[{"role":"user","content":"hi","tool_calls":[]}]}`, status: 400, param: "messages[0].tool_calls", msg: `only assistant messages`},
		{name: "chat tool call bad arguments", path: Chat, body: `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, status: 400, param: "messages[1].tool_calls[0].function.arguments", msg: "must be a JSON object's text"},
		{name: "chat bad role", path: Chat, body: `{"messages":[{"role":"wizard","content":"hi"}]}`, status: 400, param: "messages[0].role", msg: `must be one of system, developer, user, assistant, tool; got "wizard"`},
		{name: "chat numeric content", path: Chat, body: `{"messages":[{"role":"user","content":5}]}`, status: 400, param: "messages[0].content", msg: "must be a string or an array of content parts, got a number"},
		{name: "chat top_logprobs without logprobs", path: Chat, body: `{` + msgs + `,"top_logprobs":3}`, status: 400, param: "top_logprobs", msg: `needs "logprobs": true`},
		{name: "chat zero max_completion_tokens", path: Chat, body: `{` + msgs + `,"max_completion_tokens":0}`, status: 400, param: "max_completion_tokens", msg: `"max_completion_tokens" must be at least 1`},
		{name: "chat store wrong type", path: Chat, body: `{` + msgs + `,"store":"yes"}`, status: 400, param: "store", msg: `"store" must be a boolean`},
		{name: "wrong method", method: "GET", path: C, status: 405, param: "-", msg: "GET /v1/completions is not allowed; use POST"},
		{name: "unknown path", path: "/v1/embeddings", body: `{}`, status: 404, param: "-", msg: "no route for POST /v1/embeddings"},
		{name: "multipart body", path: C, ctype: "multipart/form-data; boundary=x", body: "--x\r\n", status: 415, param: "-", msg: `got Content-Type "multipart/form-data; boundary=x"`},
		{name: "form body", path: C, ctype: "application/x-www-form-urlencoded", body: "prompt=x", status: 400, param: "-", msg: `malformed JSON at byte offset 1: invalid character 'p' looking for beginning of value (the body is read as JSON whatever its Content-Type; this one was "application/x-www-form-urlencoded")`},
		{name: "body too large", path: C, body: `{"prompt":"` + strings.Repeat("a", 9000) + `"}`, status: 413, param: "-", msg: "exceeds the limit of 8192 bytes"},
		{name: "unknown model listing", method: "GET", path: "/v1/models/gpt-4", status: 404, param: "model", msg: `"gpt-4" does not exist`},
	}
	require.GreaterOrEqual(t, len(cases), 25)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, ts.url+c.path, strings.NewReader(c.body))
			require.NoError(t, err)
			ct := c.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, c.status, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var e struct {
				Error struct {
					Message *string `json:"message"`
					Type    *string `json:"type"`
					Param   *string `json:"param"`
					Code    any     `json:"code"`
				} `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
			require.NotNil(t, e.Error.Message)
			require.NotNil(t, e.Error.Type)
			require.Contains(t, *e.Error.Message, c.msg)
			if c.param == "-" {
				require.Nil(t, e.Error.Param, "param")
			} else {
				require.NotNil(t, e.Error.Param)
				require.Equal(t, c.param, *e.Error.Param)
			}
		})
	}
	require.Zero(t, ts.metric(t, `vllm:prompt_tokens_total`), "no bad request reached the engine")
}

// TestAccepted: the fields accepted but ignored, and the harmless forms of refused
// ones, do not fail.
func TestAccepted(t *testing.T) {
	ts := newTestServer(t, serverOpts{quiet: true})
	for _, body := range []struct{ path, body string }{
		{"/v1/completions", `{"prompt":"Once","max_tokens":2,"user":"u1","logit_bias":{},"best_of":1,"echo":false,"suffix":null,"top_k":-1,"seed":-5}`},
		{"/v1/completions", `{"prompt":[[1,403]],"max_tokens":2}`},
		{"/v1/completions", `{"prompt":["Once"],"max_tokens":2,"stop":"x","stop_token_ids":[2]}`},
		{"/v1/chat/completions", `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]},{"role":"assistant","content":null,"refusal":null,"tool_calls":[]},{"role":"user","content":"again","name":"bob"}],` +
			`"max_tokens":2,"metadata":{"k":"v"},"service_tier":"auto","store":false,"response_format":{"type":"text"},"modalities":["text"],"tools":null}`},
	} {
		code, resp, _ := ts.post(t, body.path, body.body)
		require.Equal(t, 200, code, "%s: %s", body.body, resp)
	}
}
