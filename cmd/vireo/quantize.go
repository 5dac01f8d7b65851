package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/quantize"
)

// quantizeCmd is `vireo quantize IN OUT --type T`: write IN (a GGUF file, a Hugging Face
// directory or synthetic:<shape>) as a GGUF file of type T. Flags may come before,
// between or after the two paths.
func quantizeCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vireo quantize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	typ := fs.String("type", "", "output type: "+strings.Join(quantize.TargetNames(), ", "))
	pure := fs.Bool("pure", false, "give every quantizable matrix the base type (no mix rules), as llama-quantize --pure")
	f16 := fs.Bool("f16-fallback", false, "keep F16 the matrices whose rows no block of the type fits, where llama.cpp defines no fallback (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) and llama-quantize refuses")
	requant := fs.Bool("allow-requantize", false, "accept block-quantized input tensors (dequantized first: their rounding is paid twice)")
	threads := fs.Int("threads", 0, "goroutines quantizing rows (default GOMAXPROCS)")
	quiet := fs.Bool("quiet", false, "print only the summary")
	offline := fs.Bool("offline", false, "never touch the network: a Hub name for IN comes from the local cache only")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vireo quantize IN OUT --type T [flags]\n\n"+
			"Write IN — a GGUF file (F32, F16 or BF16), a Hugging Face model directory, a Hub name (org/name,\n"+
			"org/name:QUANT, org/name/file.gguf, @revision: from the HF cache, else downloaded) or synthetic:<shape> —\n"+
			"as a GGUF file OUT of type T, choosing each tensor's type as llama-quantize does; metadata and\n"+
			"tokenizer are kept. OUT appears only once complete.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("quantize needs IN and OUT, got %d path(s)", len(pos))
	}
	if *typ == "" {
		return errors.New("quantize: --type is required (" + strings.Join(quantize.TargetNames(), ", ") + ")")
	}
	tg, err := quantize.ParseTarget(*typ)
	if err != nil {
		return fmt.Errorf("quantize: --type: %w", err)
	}
	if *threads < 0 {
		return fmt.Errorf("quantize: --threads must be >= 0, got %d", *threads)
	}
	opt := quantize.Options{Type: tg, Pure: *pure, F16Fallback: *f16, AllowRequantize: *requant, Threads: *threads}
	if !*quiet {
		opt.Progress = func(i, n int, t quantize.TensorReport) {
			fmt.Fprintf(stderr, "[%*d/%d] %-32s %-14s %-5s -> %-5s %10d bytes\n", len(fmt.Sprint(n)), i+1, n, t.Name, fmt.Sprint(t.Shape), t.From, t.To, t.Bytes)
		}
	}
	start := time.Now()
	in, err := resolveModel(pos[0], *offline, consoleLogger(stderr, zapcore.WarnLevel), stderr)
	if err != nil {
		return err
	}
	rep, err := quantize.Run(in, pos[1], opt)
	if err != nil {
		return err
	}
	counts := map[ggml.Type]int{}
	for _, t := range rep.Tensors {
		counts[t.To]++
	}
	var parts []string
	for typ, n := range counts {
		parts = append(parts, fmt.Sprintf("%s %d", typ, n))
	}
	sort.Strings(parts)
	fmt.Fprintf(stdout, "wrote %s: %s, %.2f MiB, %d tensors (%s) in %.1f s\n", pos[1], tg.Name, float64(rep.Bytes)/(1<<20),
		len(rep.Tensors), strings.Join(parts, ", "), time.Since(start).Seconds())
	return nil
}
