package chattemplate

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/vireo-ai/vireo/internal/jinja"
)

// ToolCall is a call an assistant turn made (OpenAI's tool_calls entry).
type ToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"` // a JSON object's text
}

// Tool is a function the model may call (OpenAI's {"type": "function", "function":
// {...}}).
type Tool struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Parameters  string `json:"parameters,omitempty"` // a JSON Schema's text; "" for none
}

// usesTools matches a template that reads the tools variable.
var usesTools = regexp.MustCompile(`\btools\b`)

// UsesTools reports whether the template renders tool definitions (it reads a
// "tools" variable, as Llama 3.1's, Qwen's and Mistral's templates do).
func (t *Template) UsesTools() bool {
	return t != nil && usesTools.MatchString(t.t.Source())
}

// ToolsSystemMessage is the documented fallback for templates without tool support:
// a system message that lists the tools (as OpenAI's JSON objects, one per line) and
// asks for calls in the Llama 3.x JSON format, the one Vireo reads back.
func ToolsSystemMessage(tools []Tool) string {
	var b strings.Builder
	b.WriteString(`You can call these functions. To call one, reply with only {"name": <function name>, "parameters": <arguments object>}`)
	b.WriteString(` (several calls separated by "; "); otherwise answer normally.`)
	b.WriteString("\n")
	for _, t := range tools {
		j, err := toolJSON(t)
		if err != nil {
			continue
		}
		b.WriteString(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func toolJSON(t Tool) (string, error) {
	type fn struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
	}
	f := fn{Name: t.Name, Description: t.Description}
	if t.Parameters != "" {
		f.Parameters = json.RawMessage(t.Parameters)
	}
	b, err := json.Marshal(struct {
		Type     string `json:"type"`
		Function fn     `json:"function"`
	}{"function", f})
	return string(b), err
}

// toolValue is a tool as templates see it: {"type": "function", "function": {"name",
// "description", "parameters"}}, the schema's key order kept.
func toolValue(t Tool) (any, error) {
	f := jinja.NewDict().Set("name", t.Name)
	if t.Description != "" {
		f.Set("description", t.Description)
	}
	if t.Parameters != "" {
		p, err := jinja.DecodeJSON([]byte(t.Parameters))
		if err != nil {
			return nil, fmt.Errorf("chattemplate: tool %q: parameters: %w", t.Name, err)
		}
		f.Set("parameters", p)
	}
	return jinja.NewDict().Set("type", "function").Set("function", f), nil
}

// callText writes calls in the Llama 3.x JSON format.
func callText(calls []ToolCall) string {
	var parts []string
	for _, c := range calls {
		args := cmp.Or(strings.TrimSpace(c.Arguments), "{}")
		name, _ := json.Marshal(c.Name)
		parts = append(parts, fmt.Sprintf(`{"name": %s, "parameters": %s}`, name, args))
	}
	return strings.Join(parts, "; ")
}

// withToolsFallback rewrites a conversation for a template (or Plain) that knows
// nothing of tools: the tool list joins the system message (one is added when there
// is none), assistant calls become their JSON text, and tool results become user
// turns ("tool" turns for Plain) naming the call they answer.
func withToolsFallback(msgs []Message, tools []Tool, plain bool) []Message {
	out := make([]Message, 0, len(msgs)+1)
	sys := ToolsSystemMessage(tools)
	if len(tools) > 0 {
		if len(msgs) > 0 && msgs[0].Role == "system" {
			m := msgs[0]
			m.Content = strings.TrimRight(m.Content, "\n") + "\n\n" + sys
			out = append(out, m)
			msgs = msgs[1:]
		} else {
			out = append(out, Message{Role: "system", Content: sys})
		}
	}
	for _, m := range msgs {
		switch {
		case len(m.ToolCalls) > 0:
			text := callText(m.ToolCalls)
			if m.Content != "" {
				text = m.Content + "\n" + text
			}
			out = append(out, Message{Role: m.Role, Content: text})
		case m.Role == "tool" || m.Role == "ipython":
			role := "user"
			if plain {
				role = "tool"
			}
			head := "Result of the function call"
			if m.Name != "" {
				head += " " + m.Name
			}
			if m.ToolCallID != "" {
				head += " (" + m.ToolCallID + ")"
			}
			out = append(out, Message{Role: role, Content: head + ":\n" + m.Content})
		default:
			out = append(out, m)
		}
	}
	return out
}

// RenderChatTools is RenderChat with tool definitions. A template that reads
// "tools" gets them (as OpenAI's function objects) and the messages' tool calls,
// tool_call_id and name as transformers passes them (a call's arguments decoded to
// an object); a template that does not — and Plain — gets the documented fallback:
// ToolsSystemMessage in the system message, calls as their JSON text and tool
// results as user turns.
func RenderChatTools(t *Template, msgs []Message, tools []Tool, addGenerationPrompt bool, special map[string]string, extra map[string]any) (string, error) {
	hasCalls := false
	for _, m := range msgs {
		if len(m.ToolCalls) > 0 || m.Role == "tool" || m.Role == "ipython" {
			hasCalls = true
		}
	}
	if t == nil || (!t.UsesTools() && (len(tools) > 0 || hasCalls)) {
		msgs = withToolsFallback(msgs, tools, t == nil)
		tools = nil
	}
	if t == nil {
		return Plain(msgs, addGenerationPrompt), nil
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		d := jinja.NewDict().Set("role", m.Role).Set("content", m.Content)
		if len(m.ToolCalls) > 0 {
			calls := make([]any, len(m.ToolCalls))
			for j, c := range m.ToolCalls {
				var args any = jinja.NewDict()
				if strings.TrimSpace(c.Arguments) != "" {
					a, err := jinja.DecodeJSON([]byte(c.Arguments))
					if err != nil {
						return "", fmt.Errorf("chattemplate: message %d: tool call %q: arguments: %w", i, c.Name, err)
					}
					args = a
				}
				call := jinja.NewDict()
				if c.ID != "" {
					call.Set("id", c.ID)
				}
				calls[j] = call.Set("type", "function").Set("function", jinja.NewDict().Set("name", c.Name).Set("arguments", args))
			}
			d.Set("tool_calls", calls)
		}
		if m.ToolCallID != "" {
			d.Set("tool_call_id", m.ToolCallID)
		}
		if m.Name != "" {
			d.Set("name", m.Name)
		}
		list[i] = d
	}
	ctx := map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
	}
	if len(tools) > 0 {
		tl := make([]any, len(tools))
		for i, tool := range tools {
			v, err := toolValue(tool)
			if err != nil {
				return "", err
			}
			tl[i] = v
		}
		ctx["tools"] = tl
	}
	for k, v := range special {
		ctx[k] = v
	}
	maps.Copy(ctx, extra)
	return t.t.Render(ctx)
}
