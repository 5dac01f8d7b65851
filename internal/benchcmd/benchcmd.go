// Package benchcmd is the benchmark command, shared by the bench binary (cmd/bench)
// and `vireo bench`: load against a server or an in-process engine, a quality audit of
// the optimizations against the float reference, the prefill-stream and weight-format
// experiments, and a report (Markdown, JSON, SVG) from any of them.
//
//	bench load --url http://localhost:8000 --model stories260K --concurrency 1,4,16 --out load.json
//	bench load --engine --serve --model-path ../shared/models/stories260K/stories260K.bin --out load.json
//	bench quality --model-path ../shared/models/stories260K/stories260K.bin --out quality.json
//	bench ttft-configs --model-path synthetic:tiny --out ttft.json
//	bench weight-configs --model-path ../shared/models/stories260K/stories260K.bin --out weights.json
//	bench spec --arms off,ngram:3,draft:3 --concurrency 1,16 --out spec.json --report spec.md
//	bench report --load load.json --quality quality.json --ttft ttft.json --weights weights.json --out-dir out
//
// See bench/README.md for the commands behind the committed results.
package benchcmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vireo-ai/vireo/bench"
	"github.com/vireo-ai/vireo/internal/cli"
	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/internal/version"
	"github.com/vireo-ai/vireo/runtime/compress"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/server"
)

// errAllFailed makes the exit status non-zero after the results are written.
var errAllFailed = errors.New("every request failed (the results were still written)")

// Main runs the command as the program prog ("bench", "vireo bench") on args (the
// arguments after its name), and exits 1 on error.
func Main(prog string, args []string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := Run(ctx, prog, args, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(1)
	}
}

// Run runs one bench command line.
func Run(ctx context.Context, prog string, args []string, stdout, stderr io.Writer) error {
	if version.Requested(args) {
		fmt.Fprintln(stdout, version.Line(prog))
		return nil
	}
	return run(ctx, args, stdout, stderr)
}

const usage = `Usage: bench <command> [flags]

Commands:
  load            load a server (--url) or an in-process engine (--engine): TTFT, ITL, TPOT,
                  E2E percentiles, throughput, goodput; sweeps --concurrency or --request-rate
  quality         perplexity, next-token accuracy and top-1 agreement with the f32 reference
                  per eval text, for each optimization, with bootstrap confidence intervals
  ttft-configs    the mixed workload (one long prompt among short ones) on an in-process
                  engine in three prefill configurations
  weight-configs  decode speed and weight size per weight format (f32, int8, int8+f32emb, q8_0, a GGUF file)
  spec            speculative decoding: acceptance and decode speed-up of prompt lookup and a
                  draft model against no speculation, per workload and concurrency
  compress        the pruning trade-off curve: quality score, prefill and decode speed and
                  memory per compression setting (low-rank, 2:4), with and without int8
  report          report.md, report.json and SVG charts from the JSON the others wrote

Models (--model-path): a GGUF file, a llama2.c .bin, a Hugging Face model directory, a
Hugging Face Hub name (org/name, org/name:QUANT), or synthetic:<shape>. Weights
(--quantization, alias --weights): auto, the checkpoint's own precision, by default.

Run 'bench <command> -h' for its flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return flag.ErrHelp
	}
	cmd := commandLine(args)
	switch args[0] {
	case "load":
		return runLoad(ctx, cmd, args[1:], stdout, stderr)
	case "quality":
		return runQuality(cmd, args[1:], stdout, stderr)
	case "ttft-configs":
		return runTTFT(ctx, cmd, args[1:], stdout, stderr)
	case "weight-configs":
		return runWeights(ctx, cmd, args[1:], stdout, stderr)
	case "spec":
		return runSpec(ctx, cmd, args[1:], stdout, stderr)
	case "compress":
		return runCompress(cmd, args[1:], stdout, stderr)
	case "report":
		return runReport(cmd, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// commandLine renders the invocation, quoted for a POSIX shell.
func commandLine(args []string) string {
	parts := []string{"bench"}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func newFlags(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: bench %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// modelFlags are the flags that open a model in-process.
type modelFlags struct {
	spec    bench.ModelSpec
	offline bool
}

// resolve turns a Hub model name into its path in the Hugging Face cache, downloading
// it if needed (runtime/hub); paths and synthetic names stay as they are.
func (m *modelFlags) resolve(ctx context.Context, stderr io.Writer) (err error) {
	m.spec.Path, err = resolveModel(ctx, m.spec.Path, m.offline, stderr)
	return err
}

func (m *modelFlags) register(fs *flag.FlagSet, defPath, defWeights string) {
	fs.StringVar(&m.spec.Path, "model-path", defPath, "model: a GGUF file, a llama2.c .bin, a Hugging Face model directory, a Hugging Face Hub name (org/name, org/name:QUANT), or synthetic:<shape>")
	fs.BoolVar(&m.offline, "offline", false, "Hub names from the local cache only, never the network (as HF_HUB_OFFLINE=1)")
	fs.StringVar(&m.spec.TokenizerPath, "tokenizer", "", "llama2.c tokenizer for a .bin model (default: beside it)")
	m.spec.Weights = defWeights
	fs.Var(weightsValue{&m.spec.Weights}, "quantization", cli.WeightsHelp)
	fs.Var(weightsValue{&m.spec.Weights}, "weights", "alias of --quantization")
	fs.BoolFunc("int8-embedding", "with --quantization int8 or q8_0, the embedding/classifier are 8-bit too (the default; =false keeps them f32)", func(v string) error {
		b, err := strconv.ParseBool(v)
		m.spec.FloatEmbedding = !b
		return err
	})
	fs.IntVar(&m.spec.Threads, "threads", 0, "CPU backend threads (0: GOMAXPROCS)")
}

// weightsValue is --quantization (alias --weights) on a ModelSpec's Weights string.
type weightsValue struct{ s *string }

func (w weightsValue) Set(v string) error {
	var x cli.Weights
	if err := x.Set(v); err != nil {
		return err
	}
	*w.s = x.T.String()
	return nil
}

func (w weightsValue) String() string {
	if w.s == nil {
		return ""
	}
	return *w.s
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v > 0) {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func progress(stderr io.Writer, label string, total int) *bench.Progress {
	return bench.NewProgress(stderr, label, total)
}

func runLoad(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("load", "Send requests to an OpenAI-compatible server (--url) or an in-process engine (--engine) and record\nevery request; one run per value of --concurrency (closed loop) or --request-rate (open loop,\nPoisson arrivals).", stderr)
	var (
		url, modelName, apiKey, conc, rates, out, reportDir, prompts string
		useEngine, serve, fixed, profile                             bool
		inLen, outLen, num, warmup, vocab, bos, maxConc              int
		numSeqs, lanes, chunk, batched, decodeSteps                  int
		ratio, temp, sloTTFT, sloITL                                 float64
		seed                                                         uint64
		timeout                                                      time.Duration
		mf                                                           modelFlags
	)
	fs.StringVar(&url, "url", "", "base URL of an OpenAI-compatible server (http://host:port)")
	fs.StringVar(&modelName, "model", "", "model name sent in requests (server mode; default: the first of GET /v1/models)")
	fs.StringVar(&apiKey, "api-key", os.Getenv("VIREO_API_KEY"), "Bearer API key (default $VIREO_API_KEY)")
	fs.BoolVar(&useEngine, "engine", false, "run an in-process engine on --model-path instead of a server")
	fs.BoolVar(&serve, "serve", false, "with --engine: put the real HTTP server in front of the engine on a loopback port and load it over HTTP/SSE")
	fs.BoolVar(&profile, "profile", false, "with --engine: record an op profile of each run (time per op, layer, phase and batch bucket), write it beside --out as <out>.ops.<run>.pb.gz for go tool pprof, and list its top ops in the summary and the report")
	mf.register(fs, "", "auto")
	fs.IntVar(&numSeqs, "max-num-seqs", 0, "engine: sequences per step (0: default)")
	fs.IntVar(&lanes, "prefill-streams", 0, "engine: prefill lanes (0: default 1)")
	fs.IntVar(&chunk, "prefill-chunk", 0, "engine: tokens of one prompt per step (0: default)")
	fs.IntVar(&batched, "max-num-batched-tokens", 0, "engine: tokens per step (0: default)")
	fs.IntVar(&decodeSteps, "decode-steps", 0, "engine: decode steps per round (0: default 1)")
	fs.IntVar(&inLen, "input-len", 128, "random prompts: input tokens")
	fs.IntVar(&outLen, "output-len", 64, "output tokens")
	fs.Float64Var(&ratio, "range-ratio", 0, "lengths uniform in [len*(1-r), len*(1+r)]; 0: fixed")
	fs.StringVar(&prompts, "prompts-file", "", "prompts from a text file, one per line, instead of random tokens")
	fs.BoolVar(&fixed, "fixed-output", true, "generate exactly the output length (ignore_eos, min_tokens = max_tokens)")
	fs.IntVar(&vocab, "vocab-size", 0, "random ids are drawn from [3, vocab-size) (default: the model's vocabulary with --model-path, else 259: the byte tokens every Llama vocabulary has)")
	fs.IntVar(&bos, "bos-id", 1, "id prepended to random prompts (-1: none)")
	fs.IntVar(&num, "num-prompts", 64, "requests measured per run")
	fs.IntVar(&warmup, "warmup", 2, "requests sent and discarded before each run")
	fs.StringVar(&conc, "concurrency", "1", "closed loop: requests in flight; a comma list sweeps (1,4,16)")
	fs.StringVar(&rates, "request-rate", "", "open loop: Poisson arrival rate(s) in requests/s, comma list; overrides --concurrency")
	fs.IntVar(&maxConc, "max-concurrency", 0, "open loop: cap on requests in flight (0: none)")
	fs.Float64Var(&temp, "temperature", 0, "sampling temperature (0: greedy)")
	fs.Uint64Var(&seed, "seed", 0, "seed for prompts, arrivals and sampling")
	fs.DurationVar(&timeout, "timeout", 5*time.Minute, "per-request limit; a slower request is recorded as a timeout")
	fs.Float64Var(&sloTTFT, "slo-ttft-ms", 200, "goodput SLO: TTFT bound in ms (0: unchecked)")
	fs.Float64Var(&sloITL, "slo-itl-ms", 50, "goodput SLO: bound on mean inter-token latency (TPOT) in ms (0: unchecked)")
	fs.StringVar(&out, "out", "load.json", "write the result (every request) here")
	fs.StringVar(&reportDir, "report-dir", "", "also write a report of this run alone into this folder")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (url == "") == !useEngine {
		return errors.New("give exactly one of --url (a running server) or --engine (in-process, with --model-path)")
	}
	if useEngine && mf.spec.Path == "" {
		return errors.New("--engine needs --model-path")
	}
	if serve && !useEngine {
		return errors.New("--serve needs --engine (it serves the in-process engine)")
	}
	if profile && !useEngine {
		return errors.New("--profile needs --engine (it times the in-process engine's ops; a server's are at its --pprof-addr, /debug/vireo/profile)")
	}
	if bos < -1 || bos > math.MaxInt32 {
		return fmt.Errorf("--bos-id %d is not a token id (or -1)", bos)
	}
	w := bench.WorkloadConfig{NumPrompts: num, InputLen: inLen, OutputLen: outLen, RangeRatio: ratio, PromptsFile: prompts,
		VocabSize: vocab, FirstID: 3, BOS: int32(bos), Seed: seed, FixedOutput: fixed}
	res := &bench.LoadResult{Command: cmd, Host: bench.ThisHost()}
	var target bench.Target
	var prof *profiling.Profiler // --profile
	if useEngine {
		if err := mf.resolve(ctx, stderr); err != nil {
			return err
		}
		m, err := mf.spec.Open()
		if err != nil {
			return err
		}
		defer m.Close()
		eo := bench.EngineOptions{MaxNumSeqs: numSeqs, PrefillStreams: lanes, PrefillChunk: chunk, MaxNumBatchedTokens: batched, DecodeSteps: decodeSteps}
		if profile {
			prof = profiling.New(profiling.Options{Backend: m.Model.Backend().Name()})
		}
		eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{MaxNumSeqs: numSeqs, PrefillStreams: lanes, PrefillChunk: chunk,
			MaxNumBatchedTokens: batched, DecodeSteps: decodeSteps, Profiler: prof, ModelName: filepath.Base(mf.spec.Path)})
		if err != nil {
			return err
		}
		defer eng.Close()
		target = &bench.EngineTarget{Engine: eng}
		info := bench.InfoOf(mf.spec, m)
		res.Model, res.Engine, res.Target = &info, &eo, "in-process engine"
		if serve {
			url, stop, err := startServer(eng, m.Tokenizer, apiKey)
			if err != nil {
				return err
			}
			defer stop()
			target = &bench.HTTPTarget{BaseURL: url, Model: servedName, APIKey: apiKey}
			res.Target = "in-process server over HTTP/SSE at " + url
		}
		if w.VocabSize == 0 {
			w.VocabSize = m.Config.VocabSize
		}
		if bos == 1 {
			w.BOS = m.Tokenizer.BOS()
		}
	} else {
		ht := &bench.HTTPTarget{BaseURL: url, Model: modelName, APIKey: apiKey}
		if modelName == "" {
			if name, err := ht.ServedModel(ctx); err == nil {
				ht.Model = name
				fmt.Fprintf(stderr, "no --model given: using %q, the first model the server lists\n", name)
			} else {
				fmt.Fprintf(stderr, "no --model given and GET /v1/models failed (%v): sending requests without a model\n", err)
			}
		}
		target = ht
		res.Target = url
		res.Host.Device = "remote server (client: " + res.Host.Device + ")"
		if w.VocabSize == 0 {
			w.VocabSize = 259
		}
	}
	type point struct {
		conc int
		rate float64
	}
	var points []point
	if rates != "" {
		rs, err := parseFloats(rates)
		if err != nil {
			return fmt.Errorf("--request-rate: %w", err)
		}
		for _, r := range rs {
			points = append(points, point{maxConc, r})
		}
	} else {
		cs, err := parseInts(conc)
		if err != nil || len(cs) == 0 {
			return fmt.Errorf("--concurrency: need positive integers: %v", err)
		}
		for _, c := range cs {
			points = append(points, point{c, 0})
		}
	}
	for _, p := range points {
		cfg := bench.LoadConfig{Concurrency: p.conc, RequestRate: p.rate, Warmup: warmup, Timeout: timeout, Temperature: temp, Seed: seed,
			SLO: bench.SLO{TTFTms: sloTTFT, ITLms: sloITL}}
		label := fmt.Sprintf("c=%d", p.conc)
		if p.rate > 0 {
			label = fmt.Sprintf("rate=%g/s", p.rate)
		}
		if prof != nil {
			if err := prof.Start(); err != nil {
				return err
			}
		}
		run, err := bench.RunLoad(ctx, target, w, cfg, progress(stderr, "load "+label, num))
		if err != nil {
			return err
		}
		res.Runs = append(res.Runs, run)
		printRun(stdout, run)
		if prof != nil {
			if run.Ops, err = writeOps(prof.Stop(), out, label, stdout); err != nil {
				return err
			}
		}
	}
	res.Host.End()
	if err := bench.WriteJSON(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	if reportDir != "" {
		files, err := bench.WriteReport(bench.BuildReport("Load: "+res.Target, cmd, res, nil, nil, nil), reportDir, "report")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", strings.Join(files, ", "))
	}
	if res.AllFailed() {
		return errAllFailed
	}
	return nil
}

// writeOps writes a run's op profile beside the result (out without .json, then
// .ops.<label>.pb.gz) and prints its top ops.
func writeOps(snap *profiling.Snapshot, out, label string, stdout io.Writer) (*bench.OpProfile, error) {
	name := strings.NewReplacer("=", "", "/", "_").Replace(label)
	path := strings.TrimSuffix(out, filepath.Ext(out)) + ".ops." + name + ".pb.gz"
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := snap.Write(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := snap.WriteText(stdout, 10); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "wrote %s (go tool pprof -http : %s)\n", path, path)
	return &bench.OpProfile{File: path, Backend: snap.Backend, Summary: snap.Summary()}, nil
}

// servedName is the model name the in-process server answers to.
const servedName = "bench-model"

// startServer serves eng with the real server on a loopback port.
func startServer(eng *engine.Engine, tok *tokenizer.Tokenizer, apiKey string) (string, func(), error) {
	cfg := server.Config{ModelNames: []string{servedName}}
	if apiKey != "" {
		cfg.APIKeys = []string{apiKey}
	}
	srv, err := server.New(cfg, eng, tok, nil)
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := srv.NewHTTPServer(l.Addr().String())
	go hs.Serve(l)
	return "http://" + l.Addr().String(), func() { hs.Close() }, nil
}

func printRun(w io.Writer, run *bench.LoadRun) {
	s := run.Summary
	fmt.Fprintf(w, "%s: %d/%d ok in %.2fs | %.2f req/s, %.1f output tok/s, %.1f total tok/s, goodput %.2f req/s | TTFT p50 %.1f p99 %.1f ms | ITL p50 %.2f p99 %.2f ms | TPOT p50 %.2f ms | E2E p50 %.1f ms\n",
		run.Label(), s.Completed, s.Requests, s.DurationS, s.RequestThroughput, s.OutputThroughput, s.TotalThroughput, s.Goodput,
		s.TTFTms.P50, s.TTFTms.P99, s.ITLms.P50, s.ITLms.P99, s.TPOTms.P50, s.E2Ems.P50)
	for _, k := range s.ErrorKinds() {
		fmt.Fprintf(w, "  %d failed: %s\n", s.Errors[k], k)
	}
	if s.FirstError != "" {
		fmt.Fprintf(w, "  first error: %s\n", s.FirstError)
	}
}

func runQuality(cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("quality", "Perplexity, next-token accuracy and top-1 agreement with the f32 reference, per eval text, for every\noptimization, in strided windows with paired bootstrap confidence intervals; plus nll.json's protocol.", stderr)
	var (
		modelPath, tok, root, golden, out string
		offline                           bool
		tokens, ctxLen, stride, resamples int
		threads                           int
		seed                              uint64
		texts, files                      string
		deq, w4a16                        bool
	)
	fs.StringVar(&modelPath, "model-path", "", "model: a GGUF file, a llama2.c .bin, a Hugging Face model directory or Hub name (default: stories260K from the shared folder)")
	fs.StringVar(&files, "files", "", "more variants, other files of the same model as name=path,... (GGUF files from vireo quantize: their block types run natively)")
	fs.BoolVar(&deq, "files-deq", false, "also run each --files file with its weights dequantized to f32 (what the weight rounding alone costs, without the activation quantization)")
	fs.BoolVar(&w4a16, "files-w4a16", false, "also run each --files file with its weights as the CUDA backend's W4A16 keeps them (Q4_0/Q4_K at their exact values, the rest int8), on the CPU with f32 activations: against --files-deq, what W4A16's weights cost")
	fs.BoolVar(&offline, "offline", false, "Hub names from the local cache only, never the network (as HF_HUB_OFFLINE=1)")
	fs.StringVar(&tok, "tokenizer", "", "llama2.c tokenizer for a .bin model (default: beside it)")
	fs.StringVar(&root, "shared", shared.Root(), "the shared folder (eval/, golden/)")
	fs.StringVar(&texts, "texts", "", "eval texts as category=path,... (default: the three shared texts)")
	fs.StringVar(&golden, "golden", "", "nll.json for the protocol check rows (default: <shared>/golden/nll.json when present; 'none' skips)")
	fs.IntVar(&tokens, "tokens", 8192, "scored tokens per text")
	fs.IntVar(&ctxLen, "context", 0, "window length, BOS included (0: the model's context)")
	fs.IntVar(&stride, "stride", 0, "window step (0: half the window)")
	fs.IntVar(&resamples, "resamples", 1000, "bootstrap resamples")
	fs.Uint64Var(&seed, "seed", 1, "bootstrap seed")
	fs.IntVar(&threads, "threads", 1, "backend threads per variant (variants run in parallel)")
	fs.StringVar(&out, "out", "quality.json", "write the result here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if modelPath == "" {
		if root == "" {
			return errors.New("--model-path not given and no shared folder found (set --shared or VIREO_SHARED)")
		}
		modelPath = filepath.Join(root, "models", "stories260K", "stories260K.bin")
	}
	modelPath, err := resolveModel(context.Background(), modelPath, offline, stderr)
	if err != nil {
		return err
	}
	cfg := bench.QualityConfig{ModelPath: modelPath, TokenizerPath: tok, Tokens: tokens, Context: ctxLen, Stride: stride, Resamples: resamples, Seed: seed, Threads: threads, Dequantized: deq, W4A16: w4a16}
	if files != "" {
		for _, kv := range strings.Split(files, ",") {
			name, path, ok := strings.Cut(kv, "=")
			if !ok || name == "" || path == "" {
				return fmt.Errorf("--files: %q is not name=path", kv)
			}
			cfg.Files = append(cfg.Files, bench.QualityFile{Name: name, Path: path})
		}
	}
	if texts != "" {
		for _, kv := range strings.Split(texts, ",") {
			cat, path, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("--texts: %q is not category=path", kv)
			}
			cfg.Texts = append(cfg.Texts, bench.QualityText{Name: filepath.Base(path), Category: cat, Path: path})
		}
	} else {
		if root == "" {
			return errors.New("no shared folder found for the eval texts: set --shared, VIREO_SHARED or --texts")
		}
		cfg.Texts = bench.DefaultTexts(root)
	}
	switch {
	case golden == "none":
	case golden != "":
		cfg.GoldenPath = golden
	case root != "":
		if p := filepath.Join(root, "golden", "nll.json"); fileExists(p) {
			cfg.GoldenPath = p
		}
	}
	start := time.Now()
	res, err := bench.RunQuality(cfg)
	if err != nil {
		return err
	}
	res.Command = cmd
	for _, t := range res.Texts {
		for _, m := range t.Results {
			line := fmt.Sprintf("%-28s %-9s ppl %9.4f acc %6.2f%%", t.Name, m.Variant, m.Perplexity, 100*m.Accuracy)
			if m.DeltaNLL != nil {
				line += fmt.Sprintf(" | ppl %+.2f%% [%+.2f, %+.2f] agreement %.2f%% | %s", m.PerplexityChange.Value, m.PerplexityChange.Lo, m.PerplexityChange.Hi, 100*m.Agreement.Value, m.Verdict)
			}
			fmt.Fprintln(stdout, line)
		}
	}
	for _, r := range res.Protocol {
		fmt.Fprintf(stdout, "protocol %-28s %-9s ppl %.5f golden %.5f (%+.3f%%) pass=%v\n", r.Text, r.Variant, r.Perplexity, r.GoldenPerplexity, 100*r.RelErr, r.Pass)
	}
	fmt.Fprintf(stdout, "quality audit took %.1fs\n", time.Since(start).Seconds())
	if err := bench.WriteJSON(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, "; ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func runTTFT(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ttft-configs", "DESIGN.md's TTFT experiment: one long prompt among many short ones, on an in-process engine, with\none prefill lane unchunked, one lane chunked, and N lanes.", stderr)
	var mf modelFlags
	var cfg bench.TTFTConfig
	var out string
	mf.register(fs, "synthetic:tiny", "auto")
	fs.IntVar(&cfg.LongLen, "long-len", 2000, "tokens of the long prompt")
	fs.IntVar(&cfg.ShortLen, "short-len", 32, "tokens of each short prompt")
	fs.IntVar(&cfg.Shorts, "shorts", 24, "short prompts")
	fs.DurationVar(&cfg.Interval, "interval", 20*time.Millisecond, "gap between short prompts")
	fs.IntVar(&cfg.OutputLen, "output-len", 32, "tokens each request generates")
	fs.IntVar(&cfg.Lanes, "lanes", 4, "prefill lanes of the multi-stream configuration")
	fs.IntVar(&cfg.Repeats, "repeats", 3, "runs per configuration")
	fs.IntVar(&cfg.Resamples, "resamples", 1000, "bootstrap resamples")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed for prompts and the bootstrap")
	fs.StringVar(&out, "out", "ttft.json", "write the result here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := mf.resolve(ctx, stderr); err != nil {
		return err
	}
	cfg.Model = mf.spec
	res, err := bench.RunTTFTConfigs(ctx, cfg, func(name string) *bench.Progress {
		return progress(stderr, "ttft "+name, (cfg.Shorts+1)*max(1, cfg.Repeats))
	})
	if err != nil {
		return err
	}
	res.Command = cmd
	for _, c := range res.Configs {
		fmt.Fprintf(stdout, "%-18s short TTFT p50 %7.1f p99 %7.1f ms | long TTFT %7.0f ms | ITL p50 %6.2f p99 %7.2f ms | %6.1f gen tok/s\n",
			c.Name, c.ShortTTFTms.P50, c.ShortTTFTms.P99, c.LongTTFTms.Mean, c.ITLms.P50, c.ITLms.P99, c.GenTokensS)
	}
	for _, c := range res.Comparisons {
		fmt.Fprintf(stdout, "%s vs %s: %s %+.2f %s [%+.2f, %+.2f]\n", c.Config, c.Baseline, c.Metric, c.Diff.Value, c.Unit, c.Diff.Lo, c.Diff.Hi)
	}
	if err := bench.WriteJSON(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}

func runWeights(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("weight-configs", "Decode speed and weight bytes per weight format on an in-process engine (f32 is the CPU's stand-in\nfor a 16-bit baseline).", stderr)
	var mf modelFlags
	var cfg bench.WeightConfig
	var formats, out string
	mf.register(fs, "", "")
	fs.StringVar(&formats, "formats", "f32,int8,int8+f32emb,q8_0", "weight formats, the first is the baseline: f32, int8, int8+f32emb, q8_0, or name=path for another file of the same model (a GGUF from vireo quantize: its block types run natively)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 1, "requests in flight")
	fs.IntVar(&cfg.NumPrompts, "num-prompts", 8, "requests per format")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "the formats take turns this many times (drift in the machine's load falls on all alike)")
	fs.IntVar(&cfg.InputLen, "input-len", 64, "prompt tokens")
	fs.IntVar(&cfg.OutputLen, "output-len", 64, "output tokens")
	fs.IntVar(&cfg.Resamples, "resamples", 1000, "bootstrap resamples")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed")
	fs.StringVar(&out, "out", "weights.json", "write the result here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if mf.spec.Path == "" {
		return errors.New("--model-path is required")
	}
	if err := mf.resolve(ctx, stderr); err != nil {
		return err
	}
	cfg.Model = mf.spec
	for _, f := range strings.Split(formats, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Formats = append(cfg.Formats, f)
		}
	}
	res, err := bench.RunWeightConfigs(ctx, cfg, func(f string) *bench.Progress { return progress(stderr, "weights "+f, cfg.NumPrompts) })
	if err != nil {
		return err
	}
	res.Command = cmd
	for _, f := range res.Formats {
		fmt.Fprintf(stdout, "%-9s weights/token %10d B | decode %.1f tok/s per request (p50 %.1f) | %.1f output tok/s\n",
			f.Format, f.WeightBytes, f.DecodeTokS.Mean, f.DecodeTokS.P50, f.Summary.OutputThroughput)
	}
	if err := bench.WriteJSON(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}

func runSpec(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("spec", "Greedy decoding with speculation off and on (prompt lookup, a draft model), the arms taking turns:\nacceptance rates and per-request decode speed-up per workload and concurrency, on in-process engines.", stderr)
	var cfg bench.SpecConfig
	var arms, workloads, conc, out, report string
	root := shared.Root()
	def := ""
	if root != "" {
		def = filepath.Join(root, "models", "stories260K", "stories260K.bin")
	}
	fs.StringVar(&cfg.Target.Path, "model-path", def, "target model (default: stories260K from the shared folder)")
	fs.StringVar(&cfg.Target.Weights, "weights", "f32", "target weights: f32 or int8")
	fs.StringVar(&cfg.Draft.Path, "draft-path", "", "draft model (default: the target's file)")
	fs.StringVar(&cfg.Draft.Weights, "draft-weights", "int8", "draft weights: f32 or int8")
	fs.IntVar(&cfg.Target.Threads, "threads", 0, "CPU backend threads (0: GOMAXPROCS)")
	fs.StringVar(&arms, "arms", "off,ngram:3,draft:3", "configurations: off (first, the baseline), ngram:K, draft:K")
	fs.StringVar(&workloads, "workloads", "repeat,story", "prompt sets: repeat (a passage that repeats), story (fresh text)")
	fs.StringVar(&conc, "concurrency", "1,16", "requests in flight, comma list")
	fs.IntVar(&cfg.NumPrompts, "num-prompts", 16, "requests per arm, workload, concurrency and round")
	fs.IntVar(&cfg.OutputLen, "output-len", 64, "tokens generated per request")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "the arms take turns this many times")
	fs.IntVar(&cfg.LookupMax, "prompt-lookup-max", 4, "prompt lookup: longest n-gram")
	fs.IntVar(&cfg.LookupMin, "prompt-lookup-min", 2, "prompt lookup: shortest n-gram")
	fs.StringVar(&cfg.TextPath, "text", "", "stories the prompts are cut from (default: the shared TinyStories validation part)")
	fs.IntVar(&cfg.Resamples, "resamples", 1000, "bootstrap resamples")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed")
	fs.StringVar(&out, "out", "spec.json", "write the result here")
	fs.StringVar(&report, "report", "", "also write the Markdown section here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.Target.Path == "" {
		return errors.New("--model-path not given and no shared folder found (set VIREO_SHARED)")
	}
	if cfg.TextPath == "" {
		if root == "" {
			return errors.New("--text not given and no shared folder found (set VIREO_SHARED)")
		}
		cfg.TextPath = filepath.Join(root, "eval", "tinystories-valid-part.txt")
	}
	var err error
	if cfg.Target.Path, err = resolveModel(ctx, cfg.Target.Path, false, stderr); err != nil {
		return err
	}
	if cfg.Draft.Path == "" {
		cfg.Draft.Path = cfg.Target.Path
	} else if cfg.Draft.Path, err = resolveModel(ctx, cfg.Draft.Path, false, stderr); err != nil {
		return err
	}
	cfg.Draft.Threads = cfg.Target.Threads
	for _, a := range strings.Split(arms, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Arms = append(cfg.Arms, a)
		}
	}
	for _, w := range strings.Split(workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			cfg.Workloads = append(cfg.Workloads, w)
		}
	}
	if cfg.Concurrency, err = parseInts(conc); err != nil {
		return fmt.Errorf("--concurrency: %w", err)
	}
	res, err := bench.RunSpec(ctx, cfg, func(label string) *bench.Progress { return progress(stderr, label, cfg.NumPrompts) })
	if err != nil {
		return err
	}
	res.Command = cmd
	for _, c := range res.Cells {
		line := fmt.Sprintf("%-7s c=%-3d %-9s %8.1f tok/s per request | %8.1f output tok/s", c.Workload, c.Concurrency, c.Arm, c.DecodeTokS.Mean, c.Summary.OutputThroughput)
		if c.Arm != "off" {
			line += fmt.Sprintf(" | acceptance %5.1f%% | %.2f tokens/verification | speed-up %.2fx", 100*c.Acceptance, c.TokensPass, 1+c.SpeedUp.Relative)
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "load average %s\n", res.Load)
	if err := bench.WriteJSON(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	if report != "" {
		if err := bench.WriteSpecReport(res, report); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", report)
	}
	return nil
}

func runCompress(cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compress", "Compress the model with each setting (vireo compress) and measure, per setting and weight format: the\nquality score (next-token accuracy relative to the uncompressed f32 model, per text category, with\nbootstrap CIs), prefill and decode tokens/s (the arms taking turns) and the weights read per token.", stderr)
	var (
		cfg                        bench.CompressConfig
		root, settings, formats    string
		texts, out, workDir, calib string
		quality                    string
		calibSkip, calibTokens     int
	)
	fs.StringVar(&cfg.ModelPath, "model-path", "", "model: a GGUF file, a Hugging Face directory or synthetic:<shape> (default: stories260K's GGUF from the shared folder)")
	fs.StringVar(&root, "shared", shared.Root(), "the shared folder (eval/)")
	fs.StringVar(&settings, "settings", "lowrank-b0.9,lowrank-b0.75,lowrank-b0.5,lowrank-e0.99-w,lowrank-b0.75-w,2:4-mag,2:4-wanda,2:4-wanda-ffn,2:4-wanda-attn",
		"compression settings: lowrank-<b|f|e><value>[-w][-attn|-ffn] (budget, rank fraction, energy; -w whitened), 2:4-<mag|wanda>[-attn|-ffn]")
	fs.StringVar(&formats, "formats", "f32,int8", "weight formats each setting runs in")
	fs.StringVar(&quality, "quality", "auto", "audit quality: yes, no, or auto (not for synthetic models, whose weights are random)")
	fs.StringVar(&texts, "texts", "", "eval texts as category=path,... (default: the three shared texts)")
	fs.IntVar(&cfg.Tokens, "tokens", 8192, "scored tokens per text")
	fs.IntVar(&cfg.Context, "context", 0, "window length of the audit and the calibration, BOS included (0: the model's context; stories260K's GGUF claims 2048, it was trained on 512)")
	fs.IntVar(&cfg.Resamples, "resamples", 1000, "bootstrap resamples")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed (bootstrap, SVD sketches, prompts)")
	fs.Float64Var(&cfg.Threshold, "threshold", 0.92, "the quality score a setting must keep")
	fs.StringVar(&calib, "calib", "", "calibration text of whitening and Wanda (default: the shared TinyStories training prefix, past the scored tokens)")
	fs.IntVar(&calibSkip, "calib-skip", -1, "calibration: tokens skipped first (default: --tokens, so that the seen-text audit never scores calibration text)")
	fs.IntVar(&calibTokens, "calib-tokens", 4096, "calibration tokens")
	fs.IntVar(&cfg.PowerIters, "power-iters", 2, "randomized SVD power iterations")
	fs.StringVar(&cfg.Type, "type", "f32", "storage of the factors and kept values in the checkpoints (f32, f16, bf16)")
	fs.IntVar(&cfg.PromptLen, "prompt-len", 128, "prefill tokens (one pass)")
	fs.IntVar(&cfg.DecodeLen, "decode-len", 32, "decoded tokens (one pass each)")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "speed rounds (the arms take turns in each)")
	fs.IntVar(&cfg.Threads, "threads", 0, "backend threads of the speed runs (0: GOMAXPROCS)")
	fs.StringVar(&workDir, "work-dir", "", "keep the compressed checkpoints here (default: a temporary folder, removed)")
	fs.StringVar(&out, "out", "compress.json", "write the result here")
	if err := parse(fs, args); err != nil {
		return err
	}
	if cfg.ModelPath == "" {
		if root == "" {
			return errors.New("--model-path not given and no shared folder found (set --shared or VIREO_SHARED)")
		}
		cfg.ModelPath = filepath.Join(root, "models", "stories260K", "stories260K.gguf")
	}
	for _, s := range strings.Split(settings, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Settings = append(cfg.Settings, s)
		}
	}
	for _, f := range strings.Split(formats, ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.Formats = append(cfg.Formats, f)
		}
	}
	switch quality {
	case "yes":
		cfg.Quality = true
	case "no":
	case "auto":
		cfg.Quality = !strings.HasPrefix(cfg.ModelPath, "synthetic:")
	default:
		return fmt.Errorf("--quality %q: yes, no or auto", quality)
	}
	needCalib := false
	for _, s := range cfg.Settings {
		st, err := bench.ParseCompressSetting(s)
		if err != nil {
			return err
		}
		needCalib = needCalib || st.Options.Whiten || st.Options.Prune == "wanda"
	}
	if cfg.Quality || needCalib {
		switch {
		case texts != "":
			for _, kv := range strings.Split(texts, ",") {
				cat, path, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--texts: %q is not category=path", kv)
				}
				cfg.Texts = append(cfg.Texts, bench.QualityText{Name: filepath.Base(path), Category: cat, Path: path})
			}
		case root != "":
			cfg.Texts = bench.DefaultTexts(root)
		case cfg.Quality:
			return errors.New("no shared folder found for the eval texts: set --shared, VIREO_SHARED or --texts")
		}
	}
	if !cfg.Quality {
		cfg.Texts = nil
	}
	if needCalib {
		if calib == "" {
			if root == "" {
				return errors.New("--calib not given and no shared folder found")
			}
			calib = filepath.Join(root, "eval", "tinystories-train-prefix.txt")
		}
		if calibSkip < 0 {
			calibSkip = cfg.Tokens
		}
		cfg.Calib = compress.CalibOptions{Path: calib, Skip: calibSkip, Tokens: calibTokens, Window: cfg.Context}
	}
	cfg.WorkDir = workDir
	if workDir != "" {
		if err := os.MkdirAll(workDir, 0o755); err != nil {
			return err
		}
	}
	start := time.Now()
	res, err := bench.RunCompress(cfg, func(s string) { fmt.Fprintln(stderr, s) })
	if err != nil {
		return err
	}
	res.Command = cmd
	for _, a := range res.Arms {
		line := fmt.Sprintf("%-22s %-5s weights/token %10s | prefill %8.1f tok/s | decode %8.1f tok/s", a.Setting, a.Format, humanBytes(a.WeightBytes),
			bench.Median(a.Prefill), bench.Median(a.Decode))
		if a.DecodeSpeedup != nil {
			line += fmt.Sprintf(" (x%.2f, x%.2f)", a.PrefillSpeedup.Value, a.DecodeSpeedup.Value)
		}
		if a.Quality != nil {
			line += fmt.Sprintf(" | score %.1f%% ppl %.3f", 100*a.Quality.AccuracyRatio, a.Quality.Perplexity)
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintln(stdout, res.Recommendation)
	fmt.Fprintf(stdout, "compress bench took %.1fs\n", time.Since(start).Seconds())
	if err := bench.WriteJSON(out, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}

func humanBytes(b int64) string {
	if b >= 10<<20 {
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", float64(b)/1024)
}

func runReport(cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", "Write <name>.md, <name>.json and <name>-*.svg from results of the other commands (any subset),\nor redraw an earlier report from its own JSON (--from).", stderr)
	var loadPath, qualityPath, ttftPath, weightsPath, specPath, title, dir, name, from string
	var notes multiFlag
	fs.StringVar(&loadPath, "load", "", "result of bench load")
	fs.StringVar(&qualityPath, "quality", "", "result of bench quality")
	fs.StringVar(&ttftPath, "ttft", "", "result of bench ttft-configs")
	fs.StringVar(&weightsPath, "weights", "", "result of bench weight-configs")
	var compressPath string
	fs.StringVar(&compressPath, "compress", "", "result of bench compress")
	fs.StringVar(&specPath, "spec", "", "result of bench spec")
	fs.StringVar(&title, "title", "Vireo benchmark report", "report title")
	fs.StringVar(&dir, "out-dir", ".", "folder for the report files")
	fs.StringVar(&name, "name", "report", "file name stem: <name>.md, <name>.json, <name>-<chart>.svg")
	fs.Var(&notes, "note", "a note for the report (repeatable), e.g. the machine's load during the run")
	fs.StringVar(&from, "from", "", "an earlier report's JSON: redraw that report (Markdown, charts) with this version's code from the measurements it holds, keeping its title and notes")
	if err := parse(fs, args); err != nil {
		return err
	}
	var (
		l *bench.LoadResult
		q *bench.QualityResult
		t *bench.TTFTResult
		w *bench.WeightResult
	)
	var spec *bench.SpecResult
	var k *bench.CompressResult
	var created time.Time // a redrawn report keeps the date of its measurements
	var firstCommand string
	if from != "" {
		if loadPath != "" || qualityPath != "" || ttftPath != "" || weightsPath != "" || specPath != "" || compressPath != "" {
			return errors.New("--from takes the measurements from the report: give no --load, --quality, --ttft, --weights, --spec or --compress")
		}
		var old bench.Report
		if err := bench.ReadJSON(from, &old); err != nil {
			return err
		}
		if old.Load == nil && old.Quality == nil && old.TTFT == nil && old.Weights == nil && old.Spec == nil && old.Compress == nil {
			return fmt.Errorf("--from %s: the report holds no measurements", from)
		}
		l, q, t, w, created, firstCommand = old.Load, old.Quality, old.TTFT, old.Weights, old.Created, old.Command
		spec, k = old.Spec, old.Compress
		titled := false
		fs.Visit(func(f *flag.Flag) { titled = titled || f.Name == "title" })
		if !titled {
			title = old.Title
		}
		notes = append(append(multiFlag{}, old.Notes...), append(notes, fmt.Sprintf(
			"Redrawn %s from %s by %s; the measurements are those of %s, unchanged, and the command that first wrote the report is the last but one above.",
			time.Now().UTC().Format("2006-01-02"), filepath.Base(from), version.Line("bench"), old.Created.Format("2006-01-02 15:04 UTC")))...)
	} else if loadPath == "" && qualityPath == "" && ttftPath == "" && weightsPath == "" && specPath == "" && compressPath == "" {
		return errors.New("nothing to report: give at least one of --load, --quality, --ttft, --weights, --spec, --compress (or --from)")
	}
	for _, in := range []struct {
		path string
		dst  any
	}{{loadPath, &l}, {qualityPath, &q}, {ttftPath, &t}, {weightsPath, &w}, {compressPath, &k}} {
		if in.path == "" {
			continue
		}
		if err := bench.ReadJSON(in.path, in.dst); err != nil {
			return err
		}
	}
	if specPath != "" {
		spec = new(bench.SpecResult)
		if err := bench.ReadJSON(specPath, spec); err != nil {
			return err
		}
	}
	r := bench.BuildReport(title, cmd, l, q, t, w)
	if spec != nil {
		r.AddSpec(spec)
	}
	r.AddCompress(k)
	r.Notes = notes
	if !created.IsZero() {
		r.Created = created
	}
	if firstCommand != "" {
		r.Commands = append(r.Commands, firstCommand)
	}
	files, err := bench.WriteReport(r, dir, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", strings.Join(files, ", "))
	return nil
}
