package server

import (
	"bytes"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/vireo-ai/vireo/runtime/grammar"
)

// Structured outputs: OpenAI's response_format (json_object, json_schema) and vLLM's
// guided_json / guided_regex / guided_choice / structured_outputs, on both endpoints.
// Each compiles to a grammar (runtime/grammar) the engine masks the logits with; a
// schema keyword the compiler cannot enforce is a 400 naming it.

// outputFormat is the constraint a request asks for, before compilation.
type outputFormat struct {
	param  string // the request field it came from, for errors
	kind   string // "json_object", "json_schema", "regex", "choice"
	schema []byte
	regex  string
	choice []string
	opt    grammar.Options
}

// key identifies a compiled grammar in the cache.
func (f *outputFormat) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%v|", f.kind, f.opt.NoWhitespace)
	switch f.kind {
	case "json_schema":
		var c bytes.Buffer
		if json.Compact(&c, f.schema) == nil {
			b.Write(c.Bytes())
		} else {
			b.Write(f.schema)
		}
	case "regex":
		b.WriteString(f.regex)
	case "choice":
		j, _ := json.Marshal(f.choice)
		b.Write(j)
	}
	return b.String()
}

// structuredFields are the vLLM extension fields both endpoints accept.
type structuredFields struct {
	ResponseFormat          json.RawMessage `json:"response_format"`
	GuidedJSON              json.RawMessage `json:"guided_json"`
	GuidedRegex             json.RawMessage `json:"guided_regex"`
	GuidedChoice            json.RawMessage `json:"guided_choice"`
	GuidedGrammar           json.RawMessage `json:"guided_grammar"`
	GuidedWhitespacePattern json.RawMessage `json:"guided_whitespace_pattern"`
	GuidedDecodingBackend   json.RawMessage `json:"guided_decoding_backend"` // accepted, ignored: one backend here
	StructuredOutputs       json.RawMessage `json:"structured_outputs"`
}

// parse reads the structured-output fields; nil when none asks for a constraint.
func (sf *structuredFields) parse(ig *ignored) (*outputFormat, *apiError) {
	var found []*outputFormat
	add := func(f *outputFormat) { found = append(found, f) }
	if !isNull(sf.ResponseFormat) {
		f, e := parseResponseFormat(sf.ResponseFormat, ig)
		if e != nil {
			return nil, e
		}
		if f != nil {
			add(f)
		}
	}
	if !isNull(sf.GuidedJSON) {
		f, e := schemaField("guided_json", sf.GuidedJSON)
		if e != nil {
			return nil, e
		}
		add(f)
	}
	if !isNull(sf.GuidedRegex) {
		var re string
		if json.Unmarshal(sf.GuidedRegex, &re) != nil {
			return nil, badParam("guided_regex", "\"guided_regex\" must be a string")
		}
		add(&outputFormat{param: "guided_regex", kind: "regex", regex: re})
	}
	if !isNull(sf.GuidedChoice) {
		f, e := choiceField("guided_choice", sf.GuidedChoice)
		if e != nil {
			return nil, e
		}
		add(f)
	}
	if !isNull(sf.GuidedGrammar) {
		return nil, unsupported("guided_grammar", "context-free grammars (EBNF/GBNF) are not supported; use guided_json, guided_regex or guided_choice")
	}
	if !isNull(sf.GuidedWhitespacePattern) {
		return nil, unsupported("guided_whitespace_pattern", "custom whitespace patterns are not supported (white space between JSON tokens is at most one space, or a newline and up to 16 spaces)")
	}
	if !isNull(sf.GuidedDecodingBackend) {
		var s string
		if json.Unmarshal(sf.GuidedDecodingBackend, &s) != nil {
			return nil, badParam("guided_decoding_backend", "\"guided_decoding_backend\" must be a string")
		}
	}
	if !isNull(sf.StructuredOutputs) {
		f, e := parseStructuredOutputs(sf.StructuredOutputs, ig)
		if e != nil {
			return nil, e
		}
		if f != nil {
			add(f)
		}
	}
	switch len(found) {
	case 0:
		return nil, nil
	case 1:
		return found[0], nil
	}
	return nil, badParam(found[1].param, "only one structured-output constraint may be given, but %q and %q both are", found[0].param, found[1].param)
}

func parseResponseFormat(raw json.RawMessage, ig *ignored) (*outputFormat, *apiError) {
	var rf struct {
		Type       string          `json:"type"`
		JSONSchema json.RawMessage `json:"json_schema"`
	}
	if firstByte(raw) != '{' {
		return nil, badParam("response_format", "\"response_format\" must be an object, got %s", kindOf(raw))
	}
	if e := decodeField(raw, &rf, "response_format", ig); e != nil {
		return nil, e
	}
	switch rf.Type {
	case "text":
		if !isNull(rf.JSONSchema) {
			return nil, badParam("response_format.json_schema", "\"json_schema\" is only allowed with \"type\": \"json_schema\"")
		}
		return nil, nil
	case "json_object":
		if !isNull(rf.JSONSchema) {
			return nil, badParam("response_format.json_schema", "\"json_schema\" is only allowed with \"type\": \"json_schema\"")
		}
		return &outputFormat{param: "response_format", kind: "json_object"}, nil
	case "json_schema":
		var js struct {
			Name        *string         `json:"name"`
			Description *string         `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		}
		if firstByte(rf.JSONSchema) != '{' {
			return nil, badParam("response_format.json_schema", "\"response_format.json_schema\" must be an object with \"name\" and \"schema\"")
		}
		if e := decodeField(rf.JSONSchema, &js, "response_format.json_schema", ig); e != nil {
			return nil, e
		}
		if js.Name == nil || !grammar.ToolNamePattern.MatchString(*js.Name) {
			return nil, badParam("response_format.json_schema.name", "\"response_format.json_schema.name\" is required and must match %s", grammar.ToolNamePattern)
		}
		if isNull(js.Schema) {
			return nil, badParam("response_format.json_schema.schema", "\"response_format.json_schema.schema\" is required")
		}
		if b := firstByte(js.Schema); b != '{' && b != 't' && b != 'f' {
			return nil, badParam("response_format.json_schema.schema", "\"response_format.json_schema.schema\" must be a JSON Schema (an object)")
		}
		// strict or not, the output follows the schema exactly (what the compiler
		// cannot enforce is refused either way).
		return &outputFormat{param: "response_format.json_schema.schema", kind: "json_schema", schema: js.Schema}, nil
	case "":
		return nil, badParam("response_format.type", "\"response_format\" needs a \"type\": \"text\", \"json_object\" or \"json_schema\"")
	}
	return nil, unsupported("response_format.type", fmt.Sprintf("response_format type %q; supported: text, json_object, json_schema", rf.Type))
}

// schemaField reads a schema given as an object or as a string holding one.
func schemaField(param string, raw json.RawMessage) (*outputFormat, *apiError) {
	schema := []byte(raw)
	if firstByte(raw) == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, badParam(param, "%q must be a JSON Schema (an object, or a string holding one)", param)
		}
		schema = []byte(s)
	}
	if !json.Valid(schema) {
		return nil, badParam(param, "%q is not valid JSON", param)
	}
	if b := firstByte(schema); b != '{' && b != 't' && b != 'f' {
		return nil, badParam(param, "%q must be a JSON Schema (an object)", param)
	}
	return &outputFormat{param: param, kind: "json_schema", schema: schema}, nil
}

func choiceField(param string, raw json.RawMessage) (*outputFormat, *apiError) {
	var choice []string
	if json.Unmarshal(raw, &choice) != nil || len(choice) == 0 {
		return nil, badParam(param, "%q must be a non-empty array of strings", param)
	}
	for _, c := range choice {
		if c == "" {
			return nil, badParam(param, "%q has an empty choice", param)
		}
	}
	return &outputFormat{param: param, kind: "choice", choice: choice}, nil
}

func parseStructuredOutputs(raw json.RawMessage, ig *ignored) (*outputFormat, *apiError) {
	var so struct {
		JSON                        json.RawMessage `json:"json"`
		Regex                       *string         `json:"regex"`
		Choice                      json.RawMessage `json:"choice"`
		Grammar                     json.RawMessage `json:"grammar"`
		JSONObject                  *bool           `json:"json_object"`
		StructuralTag               json.RawMessage `json:"structural_tag"`
		WhitespacePattern           json.RawMessage `json:"whitespace_pattern"`
		DisableFallback             *bool           `json:"disable_fallback"`
		DisableAnyWhitespace        *bool           `json:"disable_any_whitespace"`
		DisableAdditionalProperties *bool           `json:"disable_additional_properties"`
	}
	if firstByte(raw) != '{' {
		return nil, badParam("structured_outputs", "\"structured_outputs\" must be an object, got %s", kindOf(raw))
	}
	// Here an unknown key is refused, not ignored: it would be a constraint (vLLM's
	// StructuredOutputsParams takes no others) dropped without a word.
	var unknown ignored
	if e := decodeField(raw, &so, "structured_outputs", &unknown); e != nil {
		return nil, e
	}
	if len(unknown.names) > 0 {
		name := unknown.names[0]
		return nil, badParam(name, "unknown field %q in \"structured_outputs\": a constraint this server does not know is refused, not ignored", strings.TrimPrefix(name, "structured_outputs."))
	}
	switch {
	case !isNull(so.Grammar):
		return nil, unsupported("structured_outputs.grammar", "context-free grammars (EBNF/GBNF) are not supported")
	case !isNull(so.StructuralTag):
		return nil, unsupported("structured_outputs.structural_tag", "structural tags are not supported")
	case !isNull(so.WhitespacePattern):
		return nil, unsupported("structured_outputs.whitespace_pattern", "custom whitespace patterns are not supported")
	}
	var found []*outputFormat
	if !isNull(so.JSON) {
		f, e := schemaField("structured_outputs.json", so.JSON)
		if e != nil {
			return nil, e
		}
		found = append(found, f)
	}
	if so.Regex != nil {
		found = append(found, &outputFormat{param: "structured_outputs.regex", kind: "regex", regex: *so.Regex})
	}
	if !isNull(so.Choice) {
		f, e := choiceField("structured_outputs.choice", so.Choice)
		if e != nil {
			return nil, e
		}
		found = append(found, f)
	}
	if so.JSONObject != nil && *so.JSONObject {
		found = append(found, &outputFormat{param: "structured_outputs.json_object", kind: "json_object"})
	}
	switch len(found) {
	case 0:
		return nil, badParam("structured_outputs", "\"structured_outputs\" needs one of \"json\", \"regex\", \"choice\", \"json_object\"")
	case 1:
	default:
		return nil, badParam("structured_outputs", "\"structured_outputs\" takes one of \"json\", \"regex\", \"choice\", \"json_object\", not several")
	}
	f := found[0]
	f.opt.NoWhitespace = so.DisableAnyWhitespace != nil && *so.DisableAnyWhitespace
	// disable_additional_properties: properties beyond the declared ones are never
	// generated unless the schema asks for them, so true changes nothing.
	return f, nil
}

// compileError turns a grammar compilation failure into a 400 naming the field and,
// for schemas, the keyword.
func compileError(param string, err error) *apiError {
	var se *grammar.SchemaError
	var te *grammar.ToolSchemaError
	var re *grammar.RegexError
	switch {
	case errors.As(err, &te):
		return badParam(param, "tool %q: its parameters schema: %s", te.Tool, te.Err.Error())
	case errors.As(err, &se):
		e := badParam(param, "%q: %s", param, se.Error())
		if se.Keyword != "" {
			e.Code = "unsupported_schema_keyword"
		}
		return e
	case errors.As(err, &re):
		return badParam(param, "%q: %s", param, re.Error())
	}
	return badParam(param, "%q: %v", param, err)
}

// grammarCache keeps compiled constraints by their source (a schema compiled once is
// bound to the vocabulary once: the tables are what costs).
type grammarCache struct {
	mu    sync.Mutex
	max   int
	ll    *list.List // of *cacheEntry, most recent first
	items map[string]*list.Element
}

type cacheEntry struct {
	key string
	g   *grammar.Grammar
}

func newGrammarCache(max int) *grammarCache {
	return &grammarCache{max: max, ll: list.New(), items: map[string]*list.Element{}}
}

// get returns the grammar for key, compiling it with mk on a miss.
func (c *grammarCache) get(key string, mk func() (*grammar.Grammar, error)) (*grammar.Grammar, error) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*cacheEntry).g, nil
	}
	c.mu.Unlock()
	g, err := mk()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok { // compiled meanwhile by another request
		return el.Value.(*cacheEntry).g, nil
	}
	c.items[key] = c.ll.PushFront(&cacheEntry{key, g})
	for c.ll.Len() > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
	return g, nil
}

// maxCachedGrammars bounds the cache (a grammar bound to a 128k vocabulary holds its
// tables: from kilobytes to tens of megabytes for large schemas).
const maxCachedGrammars = 16

// compile returns the grammar of f (cached).
func (d *decoder) compile(f *outputFormat) (*grammar.Grammar, *apiError) {
	g, err := d.grammars.get(f.key(), func() (*grammar.Grammar, error) {
		switch f.kind {
		case "json_object":
			return grammar.JSONObject(f.opt)
		case "json_schema":
			return grammar.JSONSchema(f.schema, f.opt)
		case "regex":
			return grammar.Regex(f.regex, f.opt)
		case "choice":
			return grammar.Choice(f.choice, f.opt)
		}
		return nil, fmt.Errorf("unknown constraint kind %q", f.kind)
	})
	if err != nil {
		return nil, compileError(f.param, err)
	}
	return g, nil
}

// decodeField reads raw (valid JSON, a part of the request body) into v as request
// bodies are read: keys v has no field for under exactly that name are ignored and
// noted in ig (see checkKeys, which runs first); param names the field raw came from.
func decodeField(raw json.RawMessage, v any, param string, ig *ignored) *apiError {
	checkKeys(raw, 0, reflect.TypeOf(v), param, ig)
	if err := json.Unmarshal(raw, v); err != nil {
		e := jsonError(err)
		switch {
		case e.Param == "":
			e.Param = param
		default:
			e.Param = param + "." + e.Param
		}
		return e
	}
	return nil
}
