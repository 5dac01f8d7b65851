package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine/enginetest"
)

// fuzzDecoder is a decoder over the synthetic byte-level tokenizer (no files needed).
func fuzzDecoder(tb testing.TB) *decoder {
	_, tok, err := enginetest.NewFake("synthetic:tiny", cpu.New(cpu.Options{Threads: 1}), time.Millisecond)
	require.NoError(tb, err)
	return &decoder{tok: tok, vocab: tok.VocabSize(), maxModelLen: 64, models: []string{"m", "alias"}, maxLogprobs: 20, maxWaiting: 8}
}

var decoderSeeds = []string{
	`{"prompt":"hello","max_tokens":4}`,
	`{"model":"m","prompt":[1,2,3],"temperature":0.5,"top_p":0.9,"top_k":-1,"min_p":0.1,"seed":-3,"n":2,"stop":["a","b"],"logprobs":3}`,
	`{"prompt":[[1,2]],"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true,"min_tokens":2,"max_tokens":3}`,
	`{"prompt":["x","y"]}`,
	`{"prompt":"x","max_token":1}`,
	`{"prompt":"x","temperature":"1"}`,
	`{"prompt":"x",}`,
	`[1]`,
	`{"prompt":"x"} []`,
	`{"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5,"logprobs":true,"top_logprobs":2}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]}]}`,
	`{"messages":[{"role":"tool","content":"x"}],"tools":[]}`,
	`{"messages":[{"role":"system","content":null},{"role":"assistant","content":"x","tool_calls":[]}],"response_format":{"type":"text"}}`,
	`{"messages":"x","stop":5}`,
	`{"prompt":"` + strings.Repeat("long ", 30) + `"}`,
	"\xff\xfe",
	`{"prompt":"\ud800"}`,
	`{"prompt":1e400}`,
	`{"prompt":"x","MAX_TOKENS":2,"Stream_Options":{}}`,
	`{"prompt":"x","stream":true,"stream_options":{"INCLUDE_USAGE":true}}`,
	`{"prompt":[1,2e1,-0,3.0]}`,
	`{"prompt":[[1 , 2 ] ],"max_\u0074okens":2}`,
	`{"prompt":[` + strings.Repeat("7,", 100) + `7]}`,
	`{"prompt":[[[[[[1]]]]]]}`,
	`{"prompt":["a" , "b",["c"]]}`,
	`{"messages":[{"role":"user","content":"hi","Name":"x"}]}`,
	`{"prompt":"x","repetition_penalty":1e-60,"n":9}`,
}

// FuzzJSONScan: on any valid JSON the scanner finds the end of the value where
// encoding/json does, and checkKeys never panics.
func FuzzJSONScan(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		start := skipWS(b, 0)
		if end := skipWS(b, skipValue(b, start)); end != len(b) {
			t.Fatalf("skipValue ends at %d of %d in %q", end, len(b), b)
		}
		var ig ignored
		checkKeys(b, 0, reflect.TypeOf(completionBody{}), "", &ig)
		checkKeys(b, 0, reflect.TypeOf([]chatMessage{}), "messages", &ig)
		require.LessOrEqual(t, len(ig.names), maxIgnoredNames)
	})
}

// FuzzDecodeRequest: no body makes the decoder panic; what it accepts is a request the
// engine could run (prompt within the context, max tokens at least 1 and fitting), and
// what it refuses is a 4xx with a message.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	d := fuzzDecoder(f)
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		var g *genRequest
		var e *apiError
		if chat {
			g, e = d.decodeChat(body)
		} else {
			g, e = d.decodeCompletion(body)
		}
		if e != nil {
			if e.Status < 400 || e.Status >= 500 || e.Message == "" || e.Type == "" {
				t.Fatalf("bad error %+v for %q", e, body)
			}
			if _, err := json.Marshal(e.body()); err != nil {
				t.Fatal(err)
			}
			return
		}
		r := &g.eng
		switch {
		case len(r.Prompt) == 0 || len(r.Prompt) >= d.maxModelLen:
			t.Fatalf("accepted a prompt of %d tokens (context %d): %q", len(r.Prompt), d.maxModelLen, body)
		case r.MaxTokens < 1 || len(r.Prompt)+r.MaxTokens > d.maxModelLen:
			t.Fatalf("accepted max tokens %d beside a prompt of %d: %q", r.MaxTokens, len(r.Prompt), body)
		case r.N < 1 || r.N > maxN || r.MinTokens > r.MaxTokens:
			t.Fatalf("accepted n=%d min_tokens=%d: %q", r.N, r.MinTokens, body)
		case r.Sampling.Validate() != nil:
			t.Fatalf("accepted invalid sampling %+v: %v", r.Sampling, r.Sampling.Validate())
		case g.model != "m" && g.model != "alias":
			t.Fatalf("model %q", g.model)
		}
		for _, id := range r.Prompt {
			if id < 0 || int(id) >= d.vocab {
				t.Fatalf("prompt id %d outside the vocabulary", id)
			}
		}
	})
}

// TestAppendJSONString: the hand-written encoder agrees with encoding/json on what a
// string decodes back to, and always produces valid JSON.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "nl\n\r\t", "\x00\x01\x1f\x7f", "héllo wörld ✓ 😀", "\xff\xfeok\xc3", "line\u2028sep\u2029", "<html>&amp;"} {
		b := appendJSONString(nil, s)
		require.True(t, json.Valid(b), "%q -> %s", s, b)
		var back string
		require.NoError(t, json.Unmarshal(b, &back))
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte; so do we.
			ref, _ := json.Marshal(s)
			var r string
			require.NoError(t, json.Unmarshal(ref, &r))
			want = r
		}
		require.Equal(t, want, back, "%q", s)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"a", "\"\\", "\xff", "\u2028", "😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		json.Unmarshal(ref, &want)
		if back != want {
			t.Fatalf("%q: got %q, encoding/json gives %q", s, back, want)
		}
	})
}
