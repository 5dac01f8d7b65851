package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// TestCompressCommand: `vireo compress IN OUT` with low-rank and 2:4 options writes a
// checkpoint the CLI then generates from (f32 and int8); bad arguments say what is wrong.
func TestCompressCommand(t *testing.T) {
	in := shared.Path(t, "models", "stories260K", "stories260K.gguf")
	calib := shared.Path(t, "eval", "tinystories-train-prefix.txt")
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	lr := filepath.Join(dir, "lr.gguf")
	require.NoError(t, run([]string{"compress", "--energy", "0.98", in, lr, "--lowrank", "ffn_gate,ffn_up", "--whiten", "--calib", calib, "--calib-skip", "8192", "--calib-tokens", "1024", "--type", "f16"}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "wrote "+lr)
	require.Contains(t, stdout.String(), "energy 0.98 of ffn_gate,ffn_up")
	require.Contains(t, stderr.String(), "blk.4.ffn_up.weight")
	sp := filepath.Join(dir, "sp.gguf")
	stdout.Reset()
	stderr.Reset()
	require.NoError(t, run([]string{"compress", in, sp, "--sparsity", "2:4", "--prune", "wanda", "--calib", calib, "--calib-tokens", "1024", "--quiet"}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "block matrices hold 113280 of 226560 weights (50.0%)")
	require.Empty(t, stderr.String())
	for _, m := range []string{lr, sp} {
		for _, w := range []string{"f32", "int8"} {
			stdout.Reset()
			stderr.Reset()
			require.NoError(t, run([]string{"run", m, "Once upon a time", "-weights", w, "-max-tokens", "5", "-ignore-eos", "-quiet"}, &stdout, &stderr), stderr.String())
			require.Contains(t, stderr.String(), "generated 5 tokens")
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"compress", "in.gguf"}, "compress needs IN and OUT, got 1 path(s)"},
		{[]string{"compress", in, sp + "2"}, "nothing to do"},
		{[]string{"compress", in, sp + "2", "--sparsity", "1:4"}, "only 2:4"},
		{[]string{"compress", in, sp + "2", "--sparsity", "2:4", "--prune", "wanda"}, "need calibration text"},
		{[]string{"compress", in, sp + "2", "--param-budget", "0.5", "--type", "q4_0"}, "f32, f16 or bf16"},
		{[]string{"compress", in, sp + "2", "--param-budget", "0.5", "--oversample", "0"}, "--oversample must be positive"},
		{[]string{"compress", in, sp + "2", "--param-budget", "0.5", "--lowrank", "ffn_upp"}, `unknown matrix "ffn_upp"`},
		{[]string{"compress", "/nonexistent/in.gguf", sp + "2", "--sparsity", "2:4"}, "/nonexistent/in.gguf"},
	} {
		err := run(c.args, &stdout, &stderr)
		require.Error(t, err, "%v", c.args)
		require.Contains(t, err.Error(), c.want, "%v", c.args)
	}
}
