package benchcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/bench"
	"github.com/vireo-ai/vireo/internal/shared"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// TestAllRequestsFail: a server that is down gives a non-zero exit, and the result is
// still written with every failure recorded.
func TestAllRequestsFail(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	l.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "load.json")
	log, err := runCLI(t, "load", "--url", url, "--num-prompts", "3", "--warmup", "0", "--out", out, "--report-dir", dir)
	require.ErrorIs(t, err, errAllFailed)
	require.Contains(t, log, "3 failed: connection_refused")
	var res bench.LoadResult
	require.NoError(t, bench.ReadJSON(out, &res))
	require.Equal(t, 3, res.Runs[0].Summary.Errors["connection_refused"])
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "3 of 3 requests failed")
	require.Contains(t, string(md), "bench load --url "+url)
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"load"},
		{"load", "--url", "http://x", "--engine", "--model-path", "synthetic:tiny"},
		{"load", "--engine"},
		{"load", "--url", "http://x", "--serve"},
		{"load", "--url", "http://x", "--concurrency", "0"},
		{"load", "--url", "http://x", "--request-rate", "-1"},
		{"report"},
		{"weight-configs"},
		{"quality", "--texts", "nocategory"},
		{"load", "--url", "http://x", "stray"},
	} {
		_, err := runCLI(t, args...)
		require.Error(t, err, "%v", args)
	}
}

func TestCommandLine(t *testing.T) {
	require.Equal(t, `bench load --url http://h:1 --prompts-file 'my prompts.txt' --title 'it'\''s'`,
		commandLine([]string{"load", "--url", "http://h:1", "--prompts-file", "my prompts.txt", "--title", "it's"}))
}

// TestEndToEnd runs every command small on stories260K and synthetic:tiny and writes
// the report from their JSON.
func TestEndToEnd(t *testing.T) {
	root := filepath.Dir(filepath.Dir(shared.Path(t, "models", "stories260K", "stories260K.bin")))
	model := filepath.Join(root, "stories260K", "stories260K.bin")
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	steps := [][]string{
		{"load", "--engine", "--serve", "--model-path", model, "--threads", "1", "--concurrency", "1,2", "--num-prompts", "4", "--input-len", "16", "--output-len", "8", "--out", p("load.json")},
		{"quality", "--model-path", model, "--shared", filepath.Dir(root), "--tokens", "256", "--context", "128", "--golden", "none", "--resamples", "100", "--out", p("quality.json")},
		{"ttft-configs", "--threads", "1", "--long-len", "100", "--shorts", "3", "--short-len", "8", "--output-len", "3", "--interval", "2ms", "--repeats", "1", "--lanes", "2", "--out", p("ttft.json")},
		{"weight-configs", "--model-path", model, "--threads", "1", "--formats", "f32,int8", "--num-prompts", "3", "--input-len", "8", "--output-len", "4", "--out", p("weights.json")},
		{"report", "--load", p("load.json"), "--quality", p("quality.json"), "--ttft", p("ttft.json"), "--weights", p("weights.json"), "--out-dir", p("out"), "--name", "r", "--title", "end to end"},
	}
	for _, s := range steps {
		log, err := runCLI(t, s...)
		require.NoError(t, err, "%v\n%s", s, log)
	}
	data, err := os.ReadFile(p("out/r.json"))
	require.NoError(t, err)
	var r bench.Report
	require.NoError(t, json.Unmarshal(data, &r))
	require.Len(t, r.Commands, 4)
	require.Contains(t, r.Command, "bench report --load")
	require.Len(t, r.Load.Runs, 2)
	require.Contains(t, r.Load.Target, "in-process server over HTTP/SSE")
	require.Zero(t, r.Load.Runs[1].Summary.Failed)
	require.Equal(t, 128, r.Quality.Config.Context)
	require.Equal(t, 256, r.Quality.Texts[0].Tokens)
	md, err := os.ReadFile(p("out/r.md"))
	require.NoError(t, err)
	for _, want := range []string{"# end to end", "bench quality --model-path", "### Multi-stream prefill", "### int8 weights",
		"### Pruning: low-rank factorization and 2:4 sparsity\n\nNot measured in this report (run `bench compress`", "### int8 activations", "## Risks and mitigations", "![", "f32 stands in for the 16-bit baseline"} {
		require.Contains(t, string(md), want)
	}
	for _, c := range r.Charts {
		_, err := os.Stat(p("out/" + c.File))
		require.NoError(t, err)
	}
	// Every measurement records its machine and the load average around it.
	for _, h := range []bench.Host{r.Load.Host, r.Quality.Host, r.TTFT.Host, r.Weights.Host} {
		require.Len(t, h.LoadAvg, 2)
		require.Contains(t, h.Machine(), "load average")
	}
	require.Contains(t, string(md), "Measured on "+r.Load.Host.Machine())

	// --from redraws a report from its own JSON: same measurements, same date, a note.
	log, err := runCLI(t, "report", "--from", p("out/r.json"), "--out-dir", p("redrawn"), "--name", "r")
	require.NoError(t, err, log)
	data, err = os.ReadFile(p("redrawn/r.json"))
	require.NoError(t, err)
	var r2 bench.Report
	require.NoError(t, json.Unmarshal(data, &r2))
	require.Equal(t, r.Title, r2.Title)
	require.True(t, r.Created.Equal(r2.Created))
	require.Equal(t, r.Summary, r2.Summary)
	require.Len(t, r2.Notes, 1)
	require.Regexp(t, `^Redrawn \d{4}-\d\d-\d\d from r.json by bench \S+ .*; the measurements are those of .*, unchanged`, r2.Notes[0])
	require.Equal(t, append(r.Commands, r.Command), r2.Commands)
	_, err = runCLI(t, "report", "--from", p("out/r.json"), "--load", p("load.json"))
	require.ErrorContains(t, err, "--from takes the measurements from the report")
}

func TestVersion(t *testing.T) {
	var out, errOut strings.Builder
	require.NoError(t, Run(context.Background(), "bench", []string{"--version"}, &out, &errOut))
	require.Regexp(t, `^bench \d+\.\d+\.\d+\S* \(`, out.String())
}

// TestCompressCommand: bench compress writes the curve and bench report turns it into
// the Pruning section, which a redraw keeps.
func TestCompressCommand(t *testing.T) {
	model := shared.Path(t, "models", "stories260K", "stories260K.gguf")
	root := filepath.Dir(filepath.Dir(filepath.Dir(model)))
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	log, err := runCLI(t, "compress", "--model-path", model, "--shared", root, "--settings", "2:4-mag-ffn,lowrank-e0.99-w-attn", "--formats", "int8",
		"--tokens", "256", "--calib-tokens", "512", "--resamples", "50", "--prompt-len", "8", "--decode-len", "2", "--rounds", "2", "--work-dir", p("ck"), "--out", p("c.json"))
	require.NoError(t, err, log)
	require.Contains(t, log, "Recommendation (quality score")
	entries, err := os.ReadDir(p("ck"))
	require.NoError(t, err)
	require.Len(t, entries, 2, "the checkpoints are kept in --work-dir")
	var c bench.CompressResult
	require.NoError(t, bench.ReadJSON(p("c.json"), &c))
	require.Equal(t, 256, c.Config.Calib.Skip, "calibration starts past the scored tokens")
	require.Len(t, c.Arms, 3)
	log, err = runCLI(t, "report", "--compress", p("c.json"), "--out-dir", p("out"), "--name", "c", "--title", "pruning")
	require.NoError(t, err, log)
	md, err := os.ReadFile(p("out/c.md"))
	require.NoError(t, err)
	for _, want := range []string{"bench compress --model-path", "| 2:4-mag-ffn | int8 |", "**Recommendation", "![Decode speed-up per compression setting", "each runs with int8 weights"} {
		require.Contains(t, string(md), want)
	}
	log, err = runCLI(t, "report", "--from", p("out/c.json"), "--out-dir", p("redrawn"), "--name", "c")
	require.NoError(t, err, log)
	md2, err := os.ReadFile(p("redrawn/c.md"))
	require.NoError(t, err)
	require.Contains(t, string(md2), "| 2:4-mag-ffn | int8 |")
	_, err = runCLI(t, "compress", "--settings", "2:4-best")
	require.ErrorContains(t, err, "criterion")
	_, err = runCLI(t, "compress", "--quality", "maybe")
	require.ErrorContains(t, err, "--quality")
}

// TestLoadProfile: bench load --engine --profile writes each run's op profile beside
// the result, and the counts in it are the workload's: at concurrency 1, each of the
// 5 requests (2 warm-up, 3 measured) is one prefill pass of its 16-token prompt
// (17 with BOS: bucket 32 tokens) and 7 decode passes for its 8 output tokens, every
// layer op once per layer per pass; the report lists the top ops.
func TestLoadProfile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "load.json")
	log, err := runCLI(t, "load", "--engine", "--model-path", "synthetic:tiny", "--threads", "1", "--num-prompts", "3",
		"--input-len", "16", "--output-len", "8", "--profile", "--out", out, "--report-dir", dir)
	require.NoError(t, err, log)
	require.Contains(t, log, "share of step time")
	path := filepath.Join(dir, "load.ops.c1.pb.gz")
	data, err := os.ReadFile(path)
	require.NoError(t, err, log)
	prof, err := profile.ParseData(data)
	require.NoError(t, err)
	calls := map[[2]string]int64{}
	for _, s := range prof.Sample {
		calls[[2]string{s.Label["phase"][0], s.Location[0].Line[0].Function.Name}] += s.Value[1]
		// The stack's root is the model, named by its path.
		require.Equal(t, "synthetic:tiny", s.Location[len(s.Location)-1].Line[0].Function.Name)
	}
	const layers = 4 // synthetic:tiny
	for phase, passes := range map[string]int64{"prefill": 5, "decode": 35} {
		require.Equal(t, passes, calls[[2]string{phase, "embed"}], "%s passes: %v", phase, calls)
		require.Equal(t, passes, calls[[2]string{phase, "classifier"}], "%s", phase)
		require.Equal(t, layers*passes, calls[[2]string{phase, "attention"}], "%s", phase)
		require.Equal(t, layers*passes, calls[[2]string{phase, "down_proj"}], "%s", phase)
	}
	var res bench.LoadResult
	require.NoError(t, bench.ReadJSON(out, &res))
	require.NotNil(t, res.Runs[0].Ops)
	require.Equal(t, int64(40), res.Runs[0].Ops.Summary.Steps)
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	require.NoError(t, err)
	require.Contains(t, string(md), "### Op profile, c=1")
	require.Contains(t, string(md), "| op | time ms | share of step time |")

	_, err = runCLI(t, "load", "--url", "http://x", "--profile")
	require.ErrorContains(t, err, "--profile needs --engine")
}
