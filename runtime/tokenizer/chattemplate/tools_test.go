package chattemplate

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/jinja"
)

// decodeConversation turns a JSON conversation of the reference suite (OpenAI-shaped
// messages, tools in extra) into RenderChatTools' arguments.
func decodeConversation(t *testing.T, c conversation) ([]Message, []Tool, map[string]any) {
	var raw []struct {
		Role      string `json:"role"`
		Content   string `json:"content"`
		ToolCalls []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	}
	require.NoError(t, json.Unmarshal([]byte(c.messages), &raw))
	var msgs []Message
	for _, m := range raw {
		msg := Message{Role: m.Role, Content: m.Content}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: string(tc.Function.Arguments)})
		}
		msgs = append(msgs, msg)
	}
	var extra map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(c.extra), &extra))
	var tools []Tool
	var list []struct {
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	require.NoError(t, json.Unmarshal(extra["tools"], &list))
	for _, f := range list {
		tools = append(tools, Tool{Name: f.Function.Name, Description: f.Function.Description, Parameters: string(f.Function.Parameters)})
	}
	rest := map[string]any{}
	for k, v := range extra {
		if k == "tools" {
			continue
		}
		x, err := jinja.DecodeJSON(v)
		require.NoError(t, err)
		rest[k] = x
	}
	return msgs, tools, rest
}

// TestRenderChatToolsMatchesReference: RenderChatTools gives a tool-aware template
// the very variables the reference suite passes as JSON (checked there against
// @huggingface/jinja), so it renders the same text.
func TestRenderChatToolsMatchesReference(t *testing.T) {
	fixtures := loadFixtures(t)
	compared := 0
	for _, name := range []string{"llama3.1", "qwen2.5"} {
		tmpl, err := Parse(fixtures[name])
		require.NoError(t, err)
		require.True(t, tmpl.UsesTools(), name)
		for _, c := range toolConversations {
			msgs, tools, extra := decodeConversation(t, c)
			got, err := RenderChatTools(tmpl, msgs, tools, true, map[string]string{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, extra)
			m, derr := jinja.DecodeJSON([]byte(c.messages))
			require.NoError(t, derr)
			ctx := map[string]any{"messages": m, "add_generation_prompt": true, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
			var ex map[string]json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(c.extra), &ex))
			for k, v := range ex {
				x, err := jinja.DecodeJSON(v)
				require.NoError(t, err)
				ctx[k] = x
			}
			want, werr := tmpl.t.Render(ctx)
			if werr != nil {
				require.Error(t, err, "%s/%s", name, c.name)
				continue
			}
			require.NoError(t, err, "%s/%s", name, c.name)
			require.Equal(t, want, got, "%s/%s", name, c.name)
			require.Contains(t, got, "get_weather")
			compared++
		}
	}
	require.GreaterOrEqual(t, compared, 5)
}

// TestToolsFallback: a template without tool support, and Plain, get the documented
// system message listing the tools, calls as their JSON text and results as turns
// naming the call.
func TestToolsFallback(t *testing.T) {
	tools := []Tool{{Name: "get_weather", Description: "Weather", Parameters: `{"type":"object","properties":{"city":{"type":"string"}}}`}}
	msgs := []Message{
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ToolCalls: []ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}},
		{Role: "tool", ToolCallID: "call_1", Name: "get_weather", Content: `{"temp":21}`},
	}
	src, err := os.ReadFile("testdata/templates/zephyr.jinja")
	require.NoError(t, err)
	tmpl, err := Parse(string(src))
	require.NoError(t, err)
	require.False(t, tmpl.UsesTools())
	out, err := RenderChatTools(tmpl, msgs, tools, true, map[string]string{"eos_token": "</s>"}, nil)
	require.NoError(t, err)
	sys := ToolsSystemMessage(tools)
	require.Contains(t, sys, `{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}`)
	require.Contains(t, sys, `{"name": <function name>, "parameters": <arguments object>}`)
	require.True(t, strings.HasPrefix(out, "<|system|>\n"+strings.TrimRight(sys, "\n")), out)
	require.Contains(t, out, `<|assistant|>`+"\n"+`{"name": "get_weather", "parameters": {"city":"Paris"}}`)
	require.Contains(t, out, "<|user|>\nResult of the function call get_weather (call_1):\n{\"temp\":21}")

	plain, err := RenderChatTools(nil, append([]Message{{Role: "system", Content: "Be brief."}}, msgs...), tools, true, nil, nil)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(plain, "system: Be brief.\n\n"+sys), plain)
	require.Contains(t, plain, "tool: Result of the function call get_weather (call_1):\n{\"temp\":21}\n")
	require.True(t, strings.HasSuffix(plain, "assistant: "))

	// Without tools or tool turns, nothing changes.
	a, err := RenderChatTools(tmpl, msgs[:1], nil, true, map[string]string{"eos_token": "</s>"}, nil)
	require.NoError(t, err)
	b, err := RenderChat(tmpl, msgs[:1], true, map[string]string{"eos_token": "</s>"}, nil)
	require.NoError(t, err)
	require.Equal(t, b, a)
	require.NotContains(t, a, "functions")
}
