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
)

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
