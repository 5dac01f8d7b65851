package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// TestQuantizeCommand: `vireo quantize IN OUT --type T` (flags before, between or after
// the paths) writes llama.cpp's file, and the result generates; bad arguments say what
// is wrong.
func TestQuantizeCommand(t *testing.T) {
	dir := shared.Path(t, "golden", "gguf-quants", "models")
	out := filepath.Join(t.TempDir(), "q.gguf")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run([]string{"quantize", filepath.Join(dir, "synth256-F32.gguf"), "--threads", "2", out, "--type", "Q4_K_M"}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "q4_k_m")
	require.Contains(t, stdout.String(), "F32 5, Q4_K 13, Q6_K 3")
	require.Contains(t, stderr.String(), "blk.1.ffn_down.weight")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(dir, "synth256-Q4_K_M.gguf"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "llama-quantize's file")

	stdout.Reset()
	stderr.Reset()
	require.NoError(t, run([]string{"-model", out, "-max-tokens", "3", "-ignore-eos", "-quiet"}, &stdout, &stderr), stderr.String())
	require.Contains(t, stderr.String(), "generated 3 tokens")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"quantize", "in.gguf"}, "quantize needs IN and OUT, got 1 path(s)"},
		{[]string{"quantize", "a", "b", "c", "--type", "q4_0"}, "got 3 path(s)"},
		{[]string{"quantize", "a", "b"}, "--type is required"},
		{[]string{"quantize", "a", "b", "--type", "q4_k"}, `unknown type "q4_k"`},
		{[]string{"quantize", "a", "b", "--type", "q4_0", "--threads", "-1"}, "--threads must be >= 0"},
		{[]string{"quantize", "/nonexistent/in.gguf", out, "--type", "q4_0"}, "/nonexistent/in.gguf"},
	} {
		err := run(c.args, &stdout, &stderr)
		require.Error(t, err, "%v", c.args)
		require.Contains(t, err.Error(), c.want, "%v", c.args)
	}
}
