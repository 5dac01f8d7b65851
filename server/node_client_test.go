package server

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/testref"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// toolsTemplate is a small chat template that reads tools, calls and tool results.
const toolsTemplate = `{% if tools %}Tools:{% for t in tools %} {{ t.function.name }}{{ t.function.parameters|tojson }}{% endfor %}
{% endif %}{% for m in messages %}{{ m.role }}: {% if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.name }}{{ c.function.arguments|tojson }}{% endfor %}{% else %}{{ m.content }}{% endif %}
{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}`

// TestNodeOpenAIClient: the official openai npm package (pinned in
// testdata/node/package.json) runs a completion, a chat completion and a streamed chat
// completion against the server. It needs Node.js and the package installed:
//
//	npm ci --prefix server/testdata/node
func TestNodeOpenAIClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testref.Missing(t, "Node.js (for the openai npm client)")
	}
	dir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		testref.Missing(t, "the openai npm client (server/testdata/node)")
	}
	g := loadGolden(t)
	ts := newTestServer(t, serverOpts{cfg: Config{APIKeys: []string{"sk-node"}}, quiet: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "script.mjs", ts.url)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())

	type u struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	type res struct {
		Text         string `json:"text"`
		Role         string `json:"role"`
		FinishReason string `json:"finish_reason"`
		Chunks       int    `json:"chunks"`
		Usage        *u     `json:"usage"`
	}
	var out struct {
		Completion       res `json:"completion"`
		Chat             res `json:"chat"`
		Stream           res `json:"stream"`
		UnsupportedError *struct {
			Status  int    `json:"status"`
			Param   string `json:"param"`
			Message string `json:"message"`
		} `json:"unsupported_error"`
	}
	require.NoError(t, json.Unmarshal(outb, &out), "node output: %s", outb)

	c := g.Cases[0]
	require.Equal(t, strings.ReplaceAll(c.GreedyText, "<0x0A>", "\n"), out.Completion.Text)
	require.Equal(t, "length", out.Completion.FinishReason)
	require.Equal(t, &u{len(c.PromptIDs), len(c.GreedyIDs), len(c.PromptIDs) + len(c.GreedyIDs)}, out.Completion.Usage)

	require.NotEmpty(t, out.Chat.Text)
	require.Equal(t, "assistant", out.Chat.Role)
	require.Equal(t, "length", out.Chat.FinishReason)
	require.Equal(t, out.Chat.Text, out.Stream.Text, "streamed text equals the plain response for the same seed")
	require.Equal(t, "length", out.Stream.FinishReason)
	require.Equal(t, out.Chat.Usage, out.Stream.Usage)
	require.Greater(t, out.Stream.Chunks, 10)

	require.NotNil(t, out.UnsupportedError)
	require.Equal(t, 400, out.UnsupportedError.Status)
	require.Equal(t, "prediction", out.UnsupportedError.Param)
	require.Contains(t, out.UnsupportedError.Message, "not supported")
	ts.waitIdle(t, 5*time.Second)
}

// TestNodeOpenAIStructured: the official openai npm client against the server for
// structured outputs and tools — chat.completions.parse with a json_schema, tools with
// tool_choice "required" and a named function (arguments validated with ajv against
// the tool's parameters), streaming tool calls (deltas by hand and the SDK's stream
// helper), the assistant/tool round trip, and a 400 naming an unsupported schema
// keyword.
func TestNodeOpenAIStructured(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testref.Missing(t, "Node.js (for the openai npm client)")
	}
	dir := filepath.Join("testdata", "node")
	for _, pkg := range []string{"openai", "ajv"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			testref.Missing(t, "the openai npm client and ajv (server/testdata/node)")
		}
	}
	// A compact chat template that renders tools (stories260K's context is 512
	// tokens): the tool-aware path of chattemplate.RenderChatTools.
	l := openStories(t)
	l.ChatTemplate = toolsTemplate
	ts := newTestServer(t, serverOpts{cfg: Config{APIKeys: []string{"sk-node"}, ChatPrompt: func(msgs []chattemplate.Message, tools []chattemplate.Tool, limit int) ([]int32, error) {
		ids, _, err := l.ChatPromptTools(msgs, tools, true, limit)
		return ids, err
	}}, quiet: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "structured.mjs", ts.url)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())

	type call struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	type calls struct {
		FinishReason string   `json:"finish_reason"`
		Content      *string  `json:"content"`
		ToolCalls    []call   `json:"tool_calls"`
		Errors       []string `json:"errors"`
		Chunks       int      `json:"chunks"`
	}
	var out struct {
		Parse struct {
			Parsed       map[string]any `json:"parsed"`
			Content      string         `json:"content"`
			FinishReason string         `json:"finish_reason"`
			Errors       string         `json:"errors"`
		} `json:"parse"`
		Required  calls `json:"required"`
		Named     calls `json:"named"`
		Stream    calls `json:"stream"`
		Helper    calls `json:"helper"`
		RoundTrip struct {
			FinishReason string `json:"finish_reason"`
			Content      string `json:"content"`
		} `json:"round_trip"`
		Refused *struct {
			Status  int    `json:"status"`
			Param   string `json:"param"`
			Message string `json:"message"`
		} `json:"refused"`
	}
	require.NoError(t, json.Unmarshal(outb, &out), "node output: %s", outb)
	t.Logf("%s", outb)

	require.Equal(t, "stop", out.Parse.FinishReason)
	require.NotNil(t, out.Parse.Parsed, out.Parse.Content)
	require.Empty(t, out.Parse.Errors, "ajv: %s", out.Parse.Content)

	for name, c := range map[string]calls{"required": out.Required, "named": out.Named, "stream": out.Stream, "helper": out.Helper} {
		require.Equal(t, "tool_calls", c.FinishReason, name)
		require.NotEmpty(t, c.ToolCalls, name)
		require.Len(t, c.Errors, len(c.ToolCalls), name)
		for i, tc := range c.ToolCalls {
			require.Empty(t, c.Errors[i], "%s call %d: %s(%s)", name, i, tc.Function.Name, tc.Function.Arguments)
			require.Regexp(t, `^call_[A-Za-z0-9]{24}$`, tc.ID, name)
			require.Equal(t, "function", tc.Type, name)
		}
	}
	require.Nil(t, out.Required.Content)
	require.Len(t, out.Named.ToolCalls, 1, "parallel_tool_calls false")
	require.Equal(t, "time", out.Named.ToolCalls[0].Function.Name)
	require.Greater(t, out.Stream.Chunks, 3, "arguments arrive in pieces")
	require.Contains(t, []string{"stop", "length"}, out.RoundTrip.FinishReason)

	require.NotNil(t, out.Refused)
	require.Equal(t, 400, out.Refused.Status)
	require.Equal(t, "response_format.json_schema.schema", out.Refused.Param)
	require.Contains(t, out.Refused.Message, "propertyNames")
	ts.waitIdle(t, 5*time.Second)
}
