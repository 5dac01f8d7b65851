package chattemplate

import (
	"fmt"
	"strings"

	"github.com/vireo-ai/vireo/internal/jinja"
)

// Message is one chat turn. Content is plain text; multi-part content (lists of
// text/image parts some APIs send) is rejected by DecodeMessages. Assistant turns may
// carry the tool calls they made, tool turns the call they answer (see
// RenderChatTools).
type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	Name       string     `json:"name,omitempty"` // a tool turn's function, when known
}

// Template is a parsed chat template. It is safe for concurrent use.
type Template struct{ t *jinja.Template }

// Parse parses a chat template as transformers compiles them: trim_blocks and
// lstrip_blocks on (jinja.HFOptions). Syntax errors are *jinja.SyntaxError values
// naming line:col and what was expected.
func Parse(src string) (*Template, error) {
	t, err := jinja.ParseOptions(src, jinja.HFOptions)
	if err != nil {
		return nil, err
	}
	return &Template{t: t}, nil
}

// RenderChat renders a chat the way transformers' apply_chat_template does: the
// template gets the variables messages (list of {role, content}),
// add_generation_prompt, each entry of special (bos_token, eos_token, ...) and each
// entry of extra (tools, date_string, jinja.NowKey, ...). Later sources win on name
// clashes: special over the base variables, extra over both. A nil template renders
// Plain.
func RenderChat(t *Template, msgs []Message, addGenerationPrompt bool, special map[string]string, extra map[string]any) (string, error) {
	return RenderChatTools(t, msgs, nil, addGenerationPrompt, special, extra)
}

// Plain is the fallback for models without a chat template: each message as a
// "role: content\n" line, then "assistant: " when addGenerationPrompt is set.
// For example [{user, "Hi"}] with a generation prompt gives
// "user: Hi\nassistant: ".
func Plain(msgs []Message, addGenerationPrompt bool) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Role)
		b.WriteString(": ")
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	if addGenerationPrompt {
		b.WriteString("assistant: ")
	}
	return b.String()
}

// DecodeMessages reads a JSON array of {"role": ..., "content": ...} objects
// (an OpenAI-style messages list). Content must be a string (null is read as
// ""); list-of-parts content is rejected with an error naming the message.
func DecodeMessages(data []byte) ([]Message, error) {
	v, err := jinja.DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("chattemplate: messages must be a JSON array, got %s", jinja.TypeName(v))
	}
	out := make([]Message, len(list))
	for i, it := range list {
		d, ok := it.(*jinja.Dict)
		if !ok {
			return nil, fmt.Errorf("chattemplate: message %d must be an object, got %s", i, jinja.TypeName(it))
		}
		r, _ := d.Get("role")
		role, _ := r.(string)
		if role == "" {
			return nil, fmt.Errorf("chattemplate: message %d has no string \"role\"", i)
		}
		c, _ := d.Get("content")
		switch c := c.(type) {
		case string:
			out[i] = Message{Role: role, Content: c}
		case nil:
			out[i] = Message{Role: role}
		default:
			return nil, fmt.Errorf("chattemplate: message %d (%s): content must be a string, got %s (multi-part content is not supported)", i, role, jinja.TypeName(c))
		}
	}
	return out, nil
}
