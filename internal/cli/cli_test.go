package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vireo-ai/vireo/internal/testpty"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

func TestEscapeTerminal(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcödé, 東京 🚀\n\ttab": "plain text, ünïcödé, 東京 🚀\n\ttab",
		"bad \xff byte":           `bad \xff byte`,
		"cut \xe2\x82 euro":       `cut \xe2\x82 euro`,
		"\x1b[2J\x1b]0;pwned\x07": `\x1b[2J\x1b]0;pwned\x07`,
		"over\rwrite\bdel\x7f":    `over\x0dwrite\x08del\x7f`,
		"c1 \u009b control":       `c1 \u009b control`,
	} {
		got := EscapeTerminal(in)
		require.Equal(t, want, got, "%q", in)
		require.True(t, utf8.ValidString(got))
	}
}

// TestTextWriter: generated text reaches a pipe byte for byte and a terminal escaped.
func TestTextWriter(t *testing.T) {
	const text = "ok \xff\x1b[31m red"
	var pipe strings.Builder
	_, err := NewTextWriter(&pipe).WriteString(text)
	require.NoError(t, err)
	require.Equal(t, text, pipe.String())

	p := testpty.New(t)
	require.True(t, IsTerminal(p.TTY))
	_, err = NewTextWriter(p.TTY).WriteString(text)
	require.NoError(t, err)
	require.Equal(t, `ok \xff\x1b[31m red`, p.Output())
}

func TestWeightsFlag(t *testing.T) {
	parse := func(args ...string) (*Weights, error) {
		w := NewWeights()
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		w.Register(fs)
		return w, fs.Parse(args)
	}
	w, err := parse()
	require.NoError(t, err)
	require.Equal(t, model.WeightsAuto, w.T, "the default is the checkpoint's own precision")
	for args, want := range map[string]model.WeightType{
		"--quantization int8": model.WeightsInt8, "--weights int8": model.WeightsInt8, "-weights=f32": model.WeightsF32,
		"--quantization none": model.WeightsAuto, "--quantization AUTO": model.WeightsAuto,
	} {
		w, err := parse(strings.Fields(args)...)
		require.NoError(t, err, args)
		require.Equal(t, want, w.T, args)
	}
	_, err = parse("--quantization", "int4")
	require.EqualError(t, err, `invalid value "int4" for flag -quantization: must be auto, int8, q8_0 or f32`)
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	n := fs.Int("n", 0, "")
	pos, err := ParseInterspersed(fs, []string{"a", "-n", "3", "b", "--", "-c", "d"})
	require.NoError(t, err)
	require.Equal(t, 3, *n)
	require.Equal(t, []string{"a", "b", "-c", "d"}, pos)
}

func TestLoadErrorNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.bin")
	require.NoError(t, os.WriteFile(p, make([]byte, 64), 0o644))
	err := fmt.Errorf("%s: %w", p, &loader.NoTokenizerError{Tried: []string{"tok512.bin", "tokenizer.bin"}})
	got := LoadError(err, "-tokenizer")
	require.EqualError(t, got, p+": no tokenizer file for this llama2.c checkpoint: put tok512.bin or tokenizer.bin beside the model, or give its path with -tokenizer FILE")
	require.ErrorIs(t, got, loader.ErrNoTokenizer)
	other := errors.New("x")
	require.Equal(t, other, LoadError(other, "-tokenizer"))
}

// TestLoadProgress: log lines when not on a terminal (a start line, then a line
// at most every 2 s saying what is being done), a bar on a terminal.
func TestLoadProgress(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	var buf strings.Builder
	lp := NewLoadProgress(&buf, zap.New(core), "synthetic:tiny")
	lp.Start()
	lp.last = lp.last.Add(-3e9) // as if 3 s had passed
	lp.Step(model.LoadStep{Tensor: "blk.0.ffn_up.weight", Action: "quantized", Done: 10, Total: 40})
	lp.Step(model.LoadStep{Tensor: "blk.1.ffn_up.weight", Action: "quantized", Done: 20, Total: 40}) // within 2 s: quiet
	lp.Done()
	require.Empty(t, buf.String(), "no bar drawn on a pipe")
	entries := logs.All()
	require.Len(t, entries, 2)
	require.Equal(t, "loading model", entries[1].Message)
	f := entries[1].ContextMap()
	require.Equal(t, "25", f["percent"])
	require.Equal(t, "quantizing to int8", f["doing"])
	require.Equal(t, "blk.0.ffn_up.weight", f["tensor"])

	p := testpty.New(t)
	lp = NewLoadProgress(p.TTY, nil, "m.gguf")
	lp.Start()
	lp.Step(model.LoadStep{Tensor: "token_embd.weight", Action: "generated", Done: 40, Total: 40})
	lp.Done()
	out := p.Output()
	require.Contains(t, out, "loading m.gguf ████████████████████████ 100% generating random weights token_embd.weight")
	require.True(t, strings.HasSuffix(out, "\r\x1b[K"), "the bar is cleared at the end: %q", out)
}

// TestDoingNamesEveryAction: every action model.LoadStep documents has its own words in
// the progress line (an unknown one would be shown raw).
func TestDoingNamesEveryAction(t *testing.T) {
	for _, a := range []string{"mapped", "copied", "converted", "dequantized", "quantized", "uploaded", "generated"} {
		require.NotEqual(t, a, doing(a), a)
	}
}
