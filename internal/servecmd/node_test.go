package servecmd

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

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/internal/testref"
)

// toolsTemplate is a small chat template that reads tools, calls and tool results.
const toolsTemplate = `{% if tools %}Tools:{% for t in tools %} {{ t.function.name }}{{ t.function.parameters|tojson }}{% endfor %}
{% endif %}{% for m in messages %}{{ m.role }}: {% if m.tool_calls %}{% for c in m.tool_calls %}{{ c.function.name }}{{ c.function.arguments|tojson }}{% endfor %}{% else %}{{ m.content }}{% endif %}
{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}`

// TestNodeOpenAIStructured: the official openai npm client against the serve command
// (cmd/serve's code, run in-process with stories260K, an API key and --chat-template
// giving it a compact template that renders tools; stories260K's context is 512 tokens) for
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
	dir := filepath.Join("..", "..", "server", "testdata", "node")
	for _, pkg := range []string{"openai", "ajv"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			testref.Missing(t, "the openai npm client and ajv (server/testdata/node)")
		}
	}
	tpl := filepath.Join(t.TempDir(), "tools.jinja")
	require.NoError(t, os.WriteFile(tpl, []byte(toolsTemplate), 0o644))
	addr, _ := startServe(t, shared.Path(t, "models", "stories260K", "stories260K.bin"), "--weights", "f32",
		"--api-key", "sk-node", "--chat-template", tpl)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "structured.mjs", "http://"+addr)
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
}

// TestReadChatTemplate: --chat-template takes a file's path or the template itself (vLLM's
// rule), and a template that does not parse, or a file that cannot be read, is an error
// naming the flag.
func TestReadChatTemplate(t *testing.T) {
	inline := "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
	got, err := readChatTemplate(inline)
	require.NoError(t, err)
	require.Equal(t, inline, got)
	file := filepath.Join(t.TempDir(), "t.jinja")
	require.NoError(t, os.WriteFile(file, []byte(toolsTemplate), 0o644))
	got, err = readChatTemplate(file)
	require.NoError(t, err)
	require.Equal(t, toolsTemplate, got)
	_, err = readChatTemplate("{% for m in messages %}")
	require.ErrorContains(t, err, "--chat-template")
	_, err = readChatTemplate(t.TempDir()) // a directory: unreadable as a file
	require.ErrorContains(t, err, "--chat-template")
	_, err = readChatTemplate("templates/llama3.jinja") // a mistyped path is not a template
	require.ErrorContains(t, err, "no such file, and not a template")
}
