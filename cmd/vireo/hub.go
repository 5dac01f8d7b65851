package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/hub"
)

// resolveModel turns a model argument into a local path (runtime/hub): a path as is,
// else the Hugging Face cache, else a download. Ctrl-C stops a download (what arrived
// is kept and the next run resumes it).
func resolveModel(arg string, offline bool, log *zap.Logger, stderr io.Writer) (string, error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return hub.Resolve(ctx, arg, hub.CommandConfig(offline, log, stderr))
}

func consoleLogger(w io.Writer, level zapcore.Level) *zap.Logger {
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(w), level))
}

// runPull is `vireo pull MODEL`: download (or update, and verify) a Hub model.
func runPull(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vireo pull", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Bool("quiet", false, "no log lines, only errors and the path")
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: vireo pull [flags] MODEL

Download a model from the Hugging Face Hub into the Hub's cache (shared with transformers,
vLLM and huggingface-cli), resuming interrupted downloads and checking every file's hash,
cached ones included. MODEL is org/name, org/name:QUANT (a GGUF quantization),
org/name/file.gguf, each optionally with @revision. Prints the local path.

Environment: HF_ENDPOINT, HF_TOKEN (or the token file of huggingface-cli login),
HF_HOME / HF_HUB_CACHE.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("pull takes one model name")
	}
	ref, err := hub.ParseRef(fs.Arg(0))
	if err != nil {
		return err
	}
	level := zapcore.InfoLevel
	if *quiet {
		level = zapcore.WarnLevel
	}
	log := consoleLogger(stderr, level)
	defer log.Sync()
	cfg := hub.CommandConfig(false, log, stderr)
	if *quiet {
		cfg.Progress = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	res, err := hub.Pull(ctx, cfg, ref)
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stderr, "pulled %s (commit %s): %s, %s downloaded in %.1fs, %s verified",
			ref, res.Commit[:12], plural(len(res.Files), "file"), humanBytes(res.Downloaded), time.Since(start).Seconds(), plural(res.Verified, "cached file"))
		if len(res.Repaired) > 0 {
			fmt.Fprintf(stderr, ", %s corrupt and replaced", plural(len(res.Repaired), "cached file"))
		}
		fmt.Fprintln(stderr)
	}
	fmt.Fprintln(stdout, res.Path)
	return nil
}

// runList is `vireo list`: the models in the Hugging Face cache, with sizes.
func runList(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vireo list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: vireo list [-json]\n\nList the models in the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else\n~/.cache/huggingface/hub), whichever tool downloaded them. NAME is what -model takes.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (list takes no model)", fs.Arg(0))
	}
	dir := hub.CacheDirFromEnv()
	ms, err := hub.List(dir)
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	if *asJSON {
		if ms == nil {
			ms = []hub.CachedModel{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ms)
	}
	if len(ms) == 0 {
		fmt.Fprintf(stdout, "no models in %s (vireo pull MODEL downloads one)\n", dir)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFORMAT\tSIZE\tREVISION\tMODIFIED")
	var total, incomplete int64
	seenRepo := map[string]bool{}
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Format, humanBytes(m.Size), m.Revision, m.Modified.Format("2006-01-02 15:04"))
		total += m.Size
		if !seenRepo[m.Repo] {
			seenRepo[m.Repo] = true
			incomplete += m.Incomplete
		}
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%s, %s, in %s\n", plural(len(ms), "model"), humanBytes(total), dir)
	if incomplete > 0 {
		fmt.Fprintf(stdout, "%s of interrupted downloads are kept there; pulling those models again resumes them\n", humanBytes(incomplete))
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// humanBytes renders decimal units, as the Hub shows sizes.
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
