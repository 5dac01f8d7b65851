package server

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// Tool calling. Tools are rendered through the model's chat template (Llama 3.1's
// carries its tool format; a template without tool support gets a system message
// listing them, chattemplate.ToolsSystemMessage), and the output is read back in the
// Llama 3.x JSON format — {"name": ..., "parameters": {...}}, optionally after
// <|python_tag|>, several separated by "; " — into OpenAI's tool_calls. With
// tool_choice "required" or a named function the output is forced through a grammar
// (grammar.ToolCalls), so the call always parses and its arguments validate against
// the tool's parameters schema; with "auto" the model decides, and output that starts
// like a call but does not parse is returned as content.

// toolSpec is a request's tools and how they may be used.
type toolSpec struct {
	tools    []chattemplate.Tool
	choice   string // "none", "auto", "required" or "named"
	named    string // the function tool_choice names
	parallel bool
}

// active reports whether the output may hold calls.
func (t *toolSpec) active() bool { return t != nil && t.choice != "none" }

// forced reports whether the output must be calls.
func (t *toolSpec) forced() bool { return t != nil && (t.choice == "required" || t.choice == "named") }

func (t *toolSpec) known(name string) bool {
	for _, tl := range t.tools {
		if tl.Name == name {
			return true
		}
	}
	return false
}

// parseTools reads tools, tool_choice and parallel_tool_calls.
func parseTools(rawTools, rawChoice, rawParallel json.RawMessage, ig *ignored) (*toolSpec, *apiError) {
	spec := &toolSpec{choice: "none", parallel: true}
	if !isNull(rawTools) {
		var list []json.RawMessage
		if firstByte(rawTools) != '[' || json.Unmarshal(rawTools, &list) != nil {
			return nil, badParam("tools", "\"tools\" must be an array of {\"type\": \"function\", \"function\": {...}} objects")
		}
		for i, raw := range list {
			at := fmt.Sprintf("tools[%d]", i)
			var t struct {
				Type     string          `json:"type"`
				Function json.RawMessage `json:"function"`
			}
			if firstByte(raw) != '{' {
				return nil, badParam(at, "%s must be an object", at)
			}
			if e := decodeField(raw, &t, at, ig); e != nil {
				return nil, e
			}
			if t.Type != "function" {
				return nil, unsupported(at+".type", fmt.Sprintf("tools of type %q; only \"function\" tools are supported", t.Type))
			}
			var f struct {
				Name        string          `json:"name"`
				Description *string         `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
				Strict      *bool           `json:"strict"`
			}
			if firstByte(t.Function) != '{' {
				return nil, badParam(at+".function", "%s.function must be an object with a \"name\"", at)
			}
			if e := decodeField(t.Function, &f, at+".function", ig); e != nil {
				return nil, e
			}
			if !grammar.ToolNamePattern.MatchString(f.Name) {
				return nil, badParam(at+".function.name", "%s.function.name must match %s, got %q", at, grammar.ToolNamePattern, f.Name)
			}
			if spec.known(f.Name) {
				return nil, badParam(at+".function.name", "two tools are named %q", f.Name)
			}
			tool := chattemplate.Tool{Name: f.Name}
			if f.Description != nil {
				tool.Description = *f.Description
			}
			if !isNull(f.Parameters) {
				if firstByte(f.Parameters) != '{' {
					return nil, badParam(at+".function.parameters", "%s.function.parameters must be a JSON Schema object", at)
				}
				var c bytes.Buffer
				if err := json.Compact(&c, f.Parameters); err != nil {
					return nil, badParam(at+".function.parameters", "%s.function.parameters: %v", at, err)
				}
				tool.Parameters = c.String()
			}
			spec.tools = append(spec.tools, tool)
		}
		if len(spec.tools) > 0 {
			spec.choice = "auto"
		}
	}
	if !isNull(rawChoice) {
		switch firstByte(rawChoice) {
		case '"':
			var s string
			_ = json.Unmarshal(rawChoice, &s)
			switch s {
			case "none", "auto", "required":
				spec.choice = s
			default:
				return nil, badParam("tool_choice", "\"tool_choice\" must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}, got %q", s)
			}
		case '{':
			var c struct {
				Type     string `json:"type"`
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			checkKeys(rawChoice, 0, reflect.TypeOf(&c), "tool_choice", ig)
			if json.Unmarshal(rawChoice, &c) != nil || c.Type != "function" || c.Function.Name == "" {
				return nil, badParam("tool_choice", "a named \"tool_choice\" is {\"type\": \"function\", \"function\": {\"name\": ...}}")
			}
			spec.choice, spec.named = "named", c.Function.Name
		default:
			return nil, badParam("tool_choice", "\"tool_choice\" must be a string or an object, got %s", kindOf(rawChoice))
		}
		if spec.choice != "none" && len(spec.tools) == 0 {
			return nil, badParam("tool_choice", "\"tool_choice\" %q needs \"tools\"", spec.choice)
		}
		if spec.choice == "named" && !spec.known(spec.named) {
			return nil, badParam("tool_choice", "\"tool_choice\" names %q, which is not among the tools", spec.named)
		}
	}
	if !isNull(rawParallel) {
		var p bool
		if json.Unmarshal(rawParallel, &p) != nil {
			return nil, badParam("parallel_tool_calls", "\"parallel_tool_calls\" must be a boolean")
		}
		spec.parallel = p
	}
	if len(spec.tools) == 0 {
		return nil, nil
	}
	return spec, nil
}

// toolGrammar compiles the constraint for forced calls, or for "auto" with a
// response format (a call or an instance of the schema).
func (d *decoder) toolGrammar(spec *toolSpec, format *outputFormat) (*grammar.Grammar, *apiError) {
	tools := spec.tools
	if spec.choice == "named" {
		for _, t := range spec.tools {
			if t.Name == spec.named {
				tools = []chattemplate.Tool{t}
			}
		}
	}
	opt := grammar.ToolCallOptions{Parallel: spec.parallel && spec.choice != "named"}
	var key strings.Builder
	fmt.Fprintf(&key, "tools|%v|", opt.Parallel)
	var gt []grammar.Tool
	for _, t := range tools {
		g := grammar.Tool{Name: t.Name}
		if t.Parameters != "" {
			g.Parameters = []byte(t.Parameters)
		}
		gt = append(gt, g)
		fmt.Fprintf(&key, "%q:%s|", t.Name, t.Parameters)
	}
	param := "tools"
	if format != nil {
		if spec.forced() {
			return nil, badParam(format.param, "%q cannot be combined with tool_choice %q: the output must be a tool call", format.param, spec.choice)
		}
		switch format.kind {
		case "json_schema":
			opt.Or = format.schema
		case "json_object":
			opt.Or = []byte(`{"type":"object"}`)
		default:
			return nil, unsupported(format.param, "a regex or choice constraint together with tools; use a JSON Schema")
		}
		opt.NoWhitespace = format.opt.NoWhitespace
		fmt.Fprintf(&key, "or:%s|%v", opt.Or, opt.NoWhitespace)
		param = format.param
	}
	g, err := d.grammars.get(key.String(), func() (*grammar.Grammar, error) { return grammar.ToolCalls(gt, opt) })
	if err != nil {
		var te *grammar.ToolSchemaError
		if ok := asToolErr(err, &te); ok {
			for i, t := range spec.tools {
				if t.Name == te.Tool {
					return nil, compileError(fmt.Sprintf("tools[%d].function.parameters", i), err)
				}
			}
		}
		return nil, compileError(param, err)
	}
	return g, nil
}

func asToolErr(err error, te **grammar.ToolSchemaError) bool {
	e, ok := err.(*grammar.ToolSchemaError)
	if ok {
		*te = e
	}
	return ok
}

// toolCallOut is one call in a response (OpenAI's shape).
type toolCallOut struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// newCallID makes an id like OpenAI's ("call_" and 24 letters and digits).
func newCallID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [24]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "call_" + string(b[:])
}

// parseCalls reads an output as tool calls of known tools (nil when it is not such
// calls). pythonTag: the output began with <|python_tag|>.
func (t *toolSpec) parseCalls(text string, pythonTag bool) []toolCallOut {
	s := strings.TrimSpace(text)
	if s == "" {
		return nil
	}
	calls, err := grammar.ParseToolCalls(s)
	if err != nil && pythonTag {
		calls = parsePythonCalls(s)
	}
	if len(calls) == 0 {
		return nil
	}
	var out []toolCallOut
	for _, c := range calls {
		if !t.known(c.Name) {
			return nil
		}
		out = append(out, toolCallOut{ID: newCallID(), Type: "function", Function: functionCall{Name: c.Name, Arguments: c.Arguments}})
	}
	if !t.parallel && len(out) > 1 {
		return nil
	}
	return out
}

// pythonCall is Llama 3.1's built-in tool syntax after <|python_tag|>:
// name.call(key="value", n=1).
var pythonCall = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\.call\((.*)\)$`)

// parsePythonCalls reads name.call(k=v, ...) with string, number, True/False/None
// arguments; nil when the text is not that.
func parsePythonCalls(s string) []grammar.ParsedCall {
	m := pythonCall.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil
	}
	args := map[string]any{}
	var order []string
	rest := strings.TrimSpace(m[2])
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimSpace(rest[eq+1:])
		var val any
		switch {
		case rest == "":
			return nil
		case rest[0] == '"' || rest[0] == '\'':
			q := rest[0]
			end := 1
			for end < len(rest) && rest[end] != q {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				return nil
			}
			raw := rest[1:end]
			if q == '\'' {
				raw = strings.ReplaceAll(raw, `"`, `\"`)
			}
			str, err := strconv.Unquote(`"` + raw + `"`)
			if err != nil {
				return nil
			}
			val, rest = str, strings.TrimSpace(rest[end+1:])
		default:
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			lit := strings.TrimSpace(rest[:end])
			switch lit {
			case "True":
				val = true
			case "False":
				val = false
			case "None":
				val = nil
			default:
				f, err := strconv.ParseFloat(lit, 64)
				if err != nil {
					return nil
				}
				val = json.Number(strconv.FormatFloat(f, 'g', -1, 64))
			}
			rest = strings.TrimSpace(rest[end:])
		}
		if _, dup := args[key]; !dup {
			order = append(order, key)
		}
		args[key] = val
		if rest != "" {
			if rest[0] != ',' {
				return nil
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			b.WriteString(", ")
		}
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(args[k])
		b.Write(kj)
		b.WriteString(": ")
		b.Write(vj)
	}
	b.WriteByte('}')
	return []grammar.ParsedCall{{Name: m[1], Arguments: b.String()}}
}

// callStream reads forced tool calls as their text arrives, for streaming: it says
// when a call's name is known and hands out its arguments' text as it grows. The
// grammar guarantees the shape: {"name": "<name>", "parameters": <object>} with white
// space between tokens, calls separated by "; ".
type callStream struct {
	buf   []byte
	pos   int // scanned up to
	state int // 0 before a call's name, 1 in its arguments, 2 after them
	start int // where the current call starts
	depth int // in the arguments: nesting
	inStr bool
	esc   bool
	calls int // calls started
}

// callDelta is what new text added: a call started (with its name) or arguments.
type callDelta struct {
	index int
	name  string // set when the call starts
	args  string
}

// add consumes text and returns the deltas it completes.
func (cs *callStream) add(text string) []callDelta {
	cs.buf = append(cs.buf, text...)
	var out []callDelta
	for {
		switch cs.state {
		case 0:
			// Wait for `"parameters"` and the first byte of its value; the name is
			// read from the text before it.
			i := bytes.Index(cs.buf[cs.start:], []byte(`"parameters"`))
			if i < 0 {
				return out
			}
			j := cs.start + i + len(`"parameters"`)
			for j < len(cs.buf) && (cs.buf[j] == ' ' || cs.buf[j] == '\n' || cs.buf[j] == ':') {
				j++
			}
			if j >= len(cs.buf) {
				return out
			}
			name := readName(cs.buf[cs.start : cs.start+i])
			out = append(out, callDelta{index: cs.calls, name: name})
			cs.calls++
			cs.state, cs.pos, cs.depth, cs.inStr, cs.esc = 1, j, 0, false, false
		case 1:
			from := cs.pos
			done := false
			for ; cs.pos < len(cs.buf) && !done; cs.pos++ {
				c := cs.buf[cs.pos]
				switch {
				case cs.inStr:
					switch {
					case cs.esc:
						cs.esc = false
					case c == '\\':
						cs.esc = true
					case c == '"':
						cs.inStr = false
					}
				case c == '"':
					cs.inStr = true
				case c == '{' || c == '[':
					cs.depth++
				case c == '}' || c == ']':
					cs.depth--
					if cs.depth == 0 {
						done = true
					}
				}
			}
			if cs.pos > from {
				out = append(out, callDelta{index: cs.calls - 1, args: string(cs.buf[from:cs.pos])})
			}
			if !done {
				return out
			}
			cs.state = 2
		case 2:
			// After the arguments: the call's "}", then maybe "; " and the next call.
			k := bytes.IndexByte(cs.buf[cs.pos:], ';')
			if k < 0 {
				return out
			}
			cs.start = cs.pos + k + 1
			cs.state = 0
		}
	}
}

// readName finds the call's name in the text before "parameters".
func readName(b []byte) string {
	i := bytes.Index(b, []byte(`"name"`))
	if i < 0 {
		return ""
	}
	rest := b[i+len(`"name"`):]
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(rest[q:]))
	var name string
	if dec.Decode(&name) != nil {
		return ""
	}
	return name
}
