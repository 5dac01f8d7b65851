package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// decodeJSON reads body as exactly one JSON object into v, noting in ig the fields v
// does not declare under exactly that name (they are ignored; body's bytes of those
// that differ from a field's name only in case are overwritten, see checkKeys), and
// turns encoding/json's errors into messages that name the field.
func decodeJSON(body []byte, v any, ig *ignored) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return badParam("", "the request body is empty: send a JSON object")
	}
	if json.Valid(body) {
		checkKeys(body, 0, reflect.TypeOf(v), "", ig)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && strings.Contains(syn.Error(), "after top-level value") {
			return badParam("", "malformed JSON: unexpected data after the request object")
		}
		return jsonError(err)
	}
	return nil
}

func jsonError(err error) *apiError {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && strings.Contains(syn.Error(), "unexpected end of JSON input")):
		return badParam("", "malformed JSON: the body ends inside the request object")
	case errors.As(err, &syn):
		return badParam("", "malformed JSON at byte offset %d: %s", syn.Offset, clip(strings.TrimPrefix(syn.Error(), "json: ")))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badParam("", "the request body must be a JSON object, got %s", describeValue(typ.Value))
		}
		field := clip(strings.ReplaceAll(strings.ReplaceAll(typ.Field, "commonBody.", ""), "structuredFields.", "")) // the embedded structs are not part of the API
		return badParam(field, "%q must be %s, got %s", field, describeType(typ.Type), describeValue(typ.Value))
	}
	return badParam("", "malformed JSON: %s", clip(err.Error()))
}

// describeType names the JSON kind a Go field type takes.
func describeType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// describeValue renders UnmarshalTypeError.Value ("string", "number 1.5", ...).
func describeValue(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "bool":
		return "a boolean"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return clip(strings.TrimPrefix(v, "number ")) + " (out of range or not an integer)"
	}
	return clip(v)
}

// isNull reports whether a raw field is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// firstByte is the first non-space byte of raw (0 if none).
func firstByte(raw json.RawMessage) byte {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return 0
	}
	return t[0]
}

// kindOf names the JSON kind of raw, for messages.
func kindOf(raw json.RawMessage) string {
	switch firstByte(raw) {
	case '"':
		return "a string"
	case '[':
		return "an array"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n', 0:
		return "null"
	}
	return "a number"
}

// parseStop reads "stop": a string or a list of strings.
func parseStop(raw json.RawMessage) ([]string, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	var stops []string
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badParam("stop", "\"stop\" must be a string or an array of strings: %v", err)
		}
		stops = []string{s}
	case '[':
		if err := json.Unmarshal(raw, &stops); err != nil {
			return nil, badParam("stop", "\"stop\" must be a string or an array of strings")
		}
	default:
		return nil, badParam("stop", "\"stop\" must be a string or an array of strings, got %s", kindOf(raw))
	}
	if len(stops) > maxStops {
		return nil, badParam("stop", "at most %d stop strings are allowed, got %d", maxStops, len(stops))
	}
	for i, s := range stops {
		if s == "" {
			return nil, badParam("stop", "stop string %d is empty", i)
		}
		if len(s) > maxStopBytes {
			return nil, badParam("stop", "stop string %d is %d bytes; the limit is %d", i, len(s), maxStopBytes)
		}
	}
	return stops, nil
}

// promptInput is a completion prompt: text, or token ids given by the client.
type promptInput struct {
	text  string
	ids   []int32
	isIDs bool
}

// parsePrompt reads "prompt": a string, a list of token ids, or a one-element list of
// either. Lists of several prompts (a batch) are refused: send one request per prompt.
// Arrays are scanned, not decoded: a body of millions of ids costs no more than its
// bytes.
func (d *decoder) parsePrompt(raw json.RawMessage) (promptInput, *apiError) {
	const shape = "\"prompt\" must be a string, an array of token ids, or an array holding one of those"
	switch firstByte(raw) {
	case 0, 'n':
		return promptInput{}, badParam("prompt", "\"prompt\" is required")
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return promptInput{}, badParam("prompt", "%s: %v", shape, err)
		}
		return promptInput{text: s}, nil
	case '[':
	default:
		return promptInput{}, badParam("prompt", "%s, got %s", shape, kindOf(raw))
	}
	b := []byte(raw)
	i := skipWS(b, skipWS(b, 0)+1)
	if i >= len(b) || b[i] == ']' {
		return promptInput{}, badParam("prompt", "\"prompt\" is an empty array")
	}
	if b[i] != '"' && b[i] != '[' {
		return d.parseIDs(b)
	}
	end := skipValue(b, i)
	n := 1
	for j := skipWS(b, end); j < len(b) && b[j] == ','; n++ {
		j = skipWS(b, skipValue(b, skipWS(b, j+1)))
	}
	if n > 1 {
		return promptInput{}, unsupported("prompt", fmt.Sprintf("a batch of %d prompts in one request; send one request per prompt", n))
	}
	if b[i] == '"' {
		return d.parsePrompt(b[i:end])
	}
	return d.parseIDs(b[i:end])
}
