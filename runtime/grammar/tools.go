package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Tool is a function a model may call: its name and the JSON Schema of its arguments
// (nil: it takes none).
type Tool struct {
	Name       string
	Parameters []byte
}

// ToolCallSeparator separates parallel calls in the Llama 3 JSON tool-call format (as
// vLLM's llama3_json parser reads them).
const ToolCallSeparator = "; "

// ToolNamePattern is what a tool name may be (OpenAI's rule).
var ToolNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// ToolCallOptions shape a tool-call grammar.
type ToolCallOptions struct {
	Options
	// Parallel allows several calls, separated by ToolCallSeparator.
	Parallel bool
	// Or, when set, is a JSON Schema whose instances are allowed instead of calls
	// (tool_choice "auto" with a response_format).
	Or []byte
}

// ToolCalls compiles the Llama 3.x JSON tool-call format: one call (or, with
// Parallel, one or more) of the form {"name": "<tool>", "parameters": <arguments>},
// the arguments valid against the tool's parameters schema. Each tool's schema is
// compiled with itself as the root of its $refs. A schema error names the tool.
func ToolCalls(tools []Tool, opt ToolCallOptions) (*Grammar, error) {
	if len(tools) == 0 {
		return nil, fmt.Errorf("grammar: no tools")
	}
	roots := make([]*jv, len(tools))
	for i, t := range tools {
		if !ToolNamePattern.MatchString(t.Name) {
			return nil, fmt.Errorf("grammar: tool name %q must match %s", t.Name, ToolNamePattern)
		}
		if t.Parameters == nil {
			continue
		}
		r, err := parseJV(t.Parameters)
		if err != nil {
			return nil, &ToolSchemaError{Tool: t.Name, Err: &SchemaError{Path: "#", Msg: err.Error()}}
		}
		roots[i] = r
	}
	var or *jv
	if opt.Or != nil {
		r, err := parseJV(opt.Or)
		if err != nil {
			return nil, &SchemaError{Path: "#", Msg: err.Error()}
		}
		or = r
	}
	c := newCompiler(opt.Options)
	current := ""
	g, err := c.run(func() frag {
		a := c.a
		var calls []frag
		for i, t := range tools {
			current = t.Name
			var args frag
			if roots[i] == nil {
				args = a.seq(a.lit("{"), c.ws(), a.lit("}"))
			} else {
				c.setRoot(roots[i])
				args = c.value(roots[i], "#")
			}
			calls = append(calls, a.seq(a.lit("{"), c.ws(), a.lit(`"name"`), c.ws(), a.lit(":"), c.ws(), a.lit(quote(t.Name)),
				c.ws(), a.lit(","), c.ws(), a.lit(`"parameters"`), c.ws(), a.lit(":"), c.ws(), args, c.ws(), a.lit("}")))
		}
		current = ""
		call := func() frag { return a.alt(calls...) }
		var body frag
		if opt.Parallel {
			// One copy of the calls: a loop back through the separator.
			one := call()
			sep := a.lit(ToolCallSeparator)
			a.link(one.e, sep.s)
			a.link(sep.e, one.s)
			body = one
		} else {
			body = call()
		}
		if or != nil {
			current = "response_format"
			c.setRoot(or)
			body = a.alt(body, c.value(or, "#"))
			current = ""
		}
		return body
	}, "tool calls")
	if err != nil {
		if se, ok := err.(*SchemaError); ok && current != "" && current != "response_format" {
			return nil, &ToolSchemaError{Tool: current, Err: se}
		}
		return nil, err
	}
	return g, nil
}

// ToolSchemaError is a tool's parameters schema the compiler refuses.
type ToolSchemaError struct {
	Tool string
	Err  *SchemaError
}

func (e *ToolSchemaError) Error() string { return fmt.Sprintf("tool %q: %v", e.Tool, e.Err) }

func (e *ToolSchemaError) Unwrap() error { return e.Err }

// ParsedCall is one call read back from text in the Llama 3 JSON format.
type ParsedCall struct {
	Name      string
	Arguments string // the arguments as the model wrote them (a JSON object's text)
}

// ParseToolCalls reads text as one or more calls in the Llama 3.x JSON format —
// {"name": ..., "parameters": {...}} (or "arguments", as some fine-tunes write),
// separated by ";" and white space — and fails unless the whole text is such calls.
func ParseToolCalls(text string) ([]ParsedCall, error) {
	var calls []ParsedCall
	rest := strings.TrimSpace(text)
	for {
		dec := json.NewDecoder(strings.NewReader(rest))
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			return nil, fmt.Errorf("not a tool call: %v", err)
		}
		var name string
		if err := json.Unmarshal(obj["name"], &name); err != nil || name == "" {
			return nil, fmt.Errorf("not a tool call: no string \"name\"")
		}
		args, ok := obj["parameters"]
		if !ok {
			args, ok = obj["arguments"]
		}
		if !ok {
			args = json.RawMessage("{}")
		}
		if t := bytes.TrimSpace(args); len(t) == 0 || t[0] != '{' {
			return nil, fmt.Errorf("not a tool call: the parameters of %q are not an object", name)
		}
		for k := range obj {
			if k != "name" && k != "parameters" && k != "arguments" {
				return nil, fmt.Errorf("not a tool call: unexpected key %q", k)
			}
		}
		calls = append(calls, ParsedCall{Name: name, Arguments: string(bytes.TrimSpace(args))})
		rest = strings.TrimSpace(rest[dec.InputOffset():])
		if rest == "" {
			return calls, nil
		}
		if rest[0] != ';' {
			return nil, fmt.Errorf("not a tool call: text after the call")
		}
		rest = strings.TrimSpace(rest[1:])
	}
}
