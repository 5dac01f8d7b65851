// Package servecmd is the server command — flags, wiring, signals — shared by the
// serve binary (cmd/serve) and `vireo serve`:
//
//	serve MODEL --port 8000
//	serve --model ../shared/models/stories260K/stories260K.bin --port 8000
//	serve --model bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0
//
// Flags follow vLLM's names where vLLM has one. With no model it serves the built-in
// synthetic model (random weights: its text is noise) and says so in the log. SIGTERM
// or SIGINT stops intake, lets in-flight requests finish, aborts the rest, and stops,
// all within --shutdown-timeout; it exits 0 when every request finished and 1 when
// some had to be aborted. The HTTP API itself lives in package server.
package servecmd

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/internal/cli"
	"github.com/vireo-ai/vireo/internal/version"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/device"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/hub"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/runtime/specdec"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
	"github.com/vireo-ai/vireo/server"
)

// Main runs the command as the program prog ("serve", "vireo serve") on args (the
// arguments after the command's name) until SIGTERM or SIGINT, and exits 1 on error.
func Main(prog string, args []string) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Args = redactArgs(os.Args) // what /debug/pprof/cmdline (or anything else) prints
	if err := Run(ctx, prog, args, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
		os.Exit(1)
	}
}

// Run serves until ctx is cancelled (a signal), then drains and returns nil. --version
// and --help print to stdout and stderr and return at once.
func Run(ctx context.Context, prog string, args []string, stdout, stderr io.Writer) error {
	return runAs(ctx, prog, args, stdout, stderr)
}

type options struct {
	model, tokenizer, device string
	chatTemplate             string
	weights                  *cli.Weights
	version                  bool
	servedNames              listFlag
	offline                  bool
	threads                  int
	gpuMemUtil               float64
	kernels                  string
	w4a16                    bool

	maxModelLen, maxNumSeqs, maxNumBatchedTokens int
	kvCacheMemory                                byteSize
	prefixCaching                                bool
	prefillStreams, decodeSteps, maxWaiting      int
	cudaGraphs                                   bool
	speculative                                  specdec.Config
	lora                                         loraFlags

	host                      string
	port                      int
	apiKeys                   listFlag
	apiKeyFile                string
	maxBodyBytes              byteSize
	requestTimeout            time.Duration
	readTimeout, writeTimeout time.Duration
	shutdownTimeout           time.Duration
	pprofAddr, logLevel       string
	pprofAllowRemote          bool

	maxConcurrentParsing      int
	maxResponseTokens         int64
	maxInflightResponseTokens int64
	maxLogprobs               int
}

// flagGroups orders --help: each group with a line on what it is for.
var flagGroups = []struct {
	title string
	names []string
}{
	{"Model", []string{"model", "offline", "tokenizer", "chat-template", "served-model-name", "quantization", "weights", "mmap", "device", "gpu-memory-utilization", "kernels", "w4a16", "threads"}},
	{"Engine (batching and memory)", []string{"max-model-len", "max-num-seqs", "max-num-batched-tokens", "kv-cache-memory",
		"enable-prefix-caching", "num-prefill-streams", "decode-steps", "cuda-graphs", "speculative-config"}},
	{"LoRA adapters", loraFlagNames},
	{"HTTP server", []string{"host", "port", "api-key", "api-key-file", "max-body-bytes", "read-timeout", "write-timeout"}},
	{"Limits and shutdown", []string{"max-waiting", "max-concurrent-parsing", "max-response-tokens", "max-inflight-response-tokens",
		"max-logprobs", "request-timeout", "shutdown-timeout"}},
	{"Observability", []string{"log-level", "pprof-addr", "pprof-allow-remote", "version"}},
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	return parseFlagsAs("serve", args, stderr)
}

// parseFlagsAs parses the command line of prog ("serve", "vireo serve"): flags, and
// the model as a positional argument (vLLM's `serve MODEL`) or as --model.
func parseFlagsAs(prog string, args []string, stderr io.Writer) (*options, error) {
	o := &options{maxBodyBytes: 8 << 20, weights: cli.NewWeights()}
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.model, "model", "", "the model, also given as the first argument: a GGUF file, a llama2.c .bin, a Hugging Face model directory (config.json, safetensors, tokenizer.json), a Hub name (org/name, org/name:QUANT, org/name/file.gguf, @revision: from the HF cache, else downloaded), or synthetic:<shape> (default: synthetic:tiny, random weights)")
	fs.BoolVar(&o.offline, "offline", false, "never touch the network: Hub names come from the local cache only (as HF_HUB_OFFLINE=1)")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "llama2.c tokenizer.bin for a .bin model (default: tok<vocab>.bin or tokenizer.bin beside it)")
	fs.StringVar(&o.chatTemplate, "chat-template", "", "the Jinja chat template for /v1/chat/completions instead of the model's own, as vLLM's flag: a file's path, or the template itself when no such file exists (default: the model's template, else a plain role: content format)")
	fs.Var(&o.servedNames, "served-model-name", "`name` clients send as \"model\"; repeat or comma-separate for aliases (default: a file's name without its extension, a directory's name, or the Hub name as given; the --model value itself is accepted too)")
	o.weights.Register(fs)
	fs.StringVar(&o.device, "device", "cpu", fmt.Sprintf("backend: cpu or cuda (this binary: %v)", device.Names()))
	fs.Float64Var(&o.gpuMemUtil, "gpu-memory-utilization", 0.9, "with --device cuda: fraction of GPU memory for weights, activations and the KV cache")
	fs.StringVar(&o.kernels, "kernels", "v2", "with --device cuda: attention and sampling kernels, v2 or v1 (v1 stays selectable until v2 is verified on a card)")
	fs.BoolVar(&o.w4a16, "w4a16", false, "with --device cuda and --weights auto: keep GGUF Q4_0/Q4_K matrices 4-bit (W4A16 kernels; off until verified on a card: they become int8 otherwise)")
	fs.IntVar(&o.threads, "threads", 0, "CPU worker goroutines per op (default GOMAXPROCS)")

	fs.IntVar(&o.maxModelLen, "max-model-len", 0, "prompt + completion cap in tokens (default: the model's context)")
	fs.IntVar(&o.maxNumSeqs, "max-num-seqs", 0, "sequences batched per step (default 256)")
	fs.IntVar(&o.maxNumBatchedTokens, "max-num-batched-tokens", 0, "tokens per step, prefill chunks included (default 2048)")
	fs.Var(&o.kvCacheMemory, "kv-cache-memory", "KV cache `size`: bytes, or with a unit: 512MiB, 2GiB (default: 1GiB on cpu; on cuda, what --gpu-memory-utilization leaves free)")
	fs.BoolVar(&o.prefixCaching, "enable-prefix-caching", false, "share KV blocks of identical prompt prefixes between requests")
	fs.IntVar(&o.prefillStreams, "num-prefill-streams", 1, "prefill lanes run concurrently (alias --prefill-streams)")
	fs.IntVar(&o.prefillStreams, "prefill-streams", 1, "alias of --num-prefill-streams")
	fs.IntVar(&o.decodeSteps, "decode-steps", 1, "decode steps per scheduler round trip when nothing else needs scheduling")
	fs.BoolVar(&o.cudaGraphs, "cuda-graphs", true, "replay decode steps as captured graphs where the backend can (false: issue every op, to measure the difference)")
	specJSON := fs.String("speculative-config", "", `speculative decoding, as vLLM's JSON: {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4} or {"method": "draft_model", "model": "<a smaller model, same tokenizer>", "num_speculative_tokens": 3} (default: off)`)

	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on: this machine only by default; 0.0.0.0 (or ::) for every interface, which without an API key is logged as a warning")
	fs.IntVar(&o.port, "port", 8000, "port to listen on (0: any free port, logged at start)")
	fs.Var(&o.apiKeys, "api-key", "require \"Authorization: Bearer <`key`>\" on /v1/*; repeat for several keys. A key on the command line is visible to other local users (ps): prefer --api-key-file or the VLLM_API_KEY environment variable")
	fs.StringVar(&o.apiKeyFile, "api-key-file", "", "file with one API key per line (blank lines and # comments skipped); VLLM_API_KEY in the environment adds one more")
	fs.Var(&o.maxBodyBytes, "max-body-bytes", "largest request body accepted, a `size` such as 8MiB (default 8MiB)")
	fs.DurationVar(&o.readTimeout, "read-timeout", 60*time.Second, "time to read a request, headers and body")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 60*time.Second, "time for each response write (streams extend it per chunk)")

	fs.IntVar(&o.maxWaiting, "max-waiting", 256, "requests queued before new ones get 429 with Retry-After (0: unbounded)")
	fs.DurationVar(&o.requestTimeout, "request-timeout", 0, "longest a generation request may take, queueing included (0: none)")
	fs.IntVar(&o.maxConcurrentParsing, "max-concurrent-parsing", server.DefaultMaxConcurrentParsing, "requests whose bodies are parsed and prompts tokenized at once; as many more wait for a turn, beyond that 429 with Retry-After")
	fs.Int64Var(&o.maxResponseTokens, "max-response-tokens", server.DefaultMaxResponseTokens, "most tokens one request's response may hold: n × max_tokens, times 2 + top logprobs with logprobs; larger requests get 400")
	fs.Int64Var(&o.maxInflightResponseTokens, "max-inflight-response-tokens", server.DefaultMaxInflightResponseTokens, "most response tokens (as --max-response-tokens counts them) the requests in flight may hold together; beyond it 429 with Retry-After")
	fs.IntVar(&o.maxLogprobs, "max-logprobs", server.DefaultMaxLogprobs, "most logprobs (completions) or top_logprobs (chat) a request may ask for, 1 to 20")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM, the whole shutdown: in-flight requests finish until shortly before it, then are aborted and the server stops by it (exit 1 when some were aborted)")

	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (logs are JSON on stderr)")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "serve /debug/pprof and the op profiles /debug/vireo/profile?seconds=N (no authentication) on this separate loopback address, e.g. localhost:6060 (default: off)")
	fs.BoolVar(&o.pprofAllowRemote, "pprof-allow-remote", false, "allow a --pprof-addr that is not loopback (anyone who reaches it can read the process's memory)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.Usage = func() { usage(prog, fs, stderr) }

	o.lora.register(fs)
	pos, err := cli.ParseInterspersed(fs, spreadLoRAModules(args))
	if err != nil {
		return nil, err
	}
	switch {
	case o.version:
		return o, nil
	case len(pos) > 1:
		return nil, fmt.Errorf("unexpected argument %q (one model: %s MODEL [flags])", pos[1], prog)
	case len(pos) == 1 && o.model != "" && o.model != pos[0]:
		return nil, fmt.Errorf("two models: %q and --model %q", pos[0], o.model)
	case len(pos) == 1:
		o.model = pos[0]
	}
	switch {
	case !slices.Contains(device.Names(), o.device) && o.device == "cuda":
		return nil, errors.New("--device cuda: this binary was built without CUDA (build it with make cuda); only --device cpu is available")
	case !slices.Contains(device.Names(), o.device):
		return nil, fmt.Errorf("--device %q: unknown device; this binary has %v", o.device, device.Names())
	case !(o.gpuMemUtil > 0 && o.gpuMemUtil <= 1):
		return nil, fmt.Errorf("--gpu-memory-utilization must be in (0, 1], got %g", o.gpuMemUtil)
	case device.CheckKernels(o.kernels) != nil:
		return nil, fmt.Errorf("--%w", device.CheckKernels(o.kernels))
	case o.port < 0 || o.port > 65535:
		return nil, fmt.Errorf("--port %d is out of range", o.port)
	case o.maxWaiting < 0:
		return nil, fmt.Errorf("--max-waiting must be >= 0, got %d", o.maxWaiting)
	case o.prefillStreams < 1 || o.decodeSteps < 1:
		return nil, errors.New("--num-prefill-streams and --decode-steps must be at least 1")
	case o.maxModelLen < 0 || o.maxNumSeqs < 0 || o.maxNumBatchedTokens < 0 || o.threads < 0:
		return nil, errors.New("--max-model-len, --max-num-seqs, --max-num-batched-tokens and --threads must be >= 0")
	case o.kvCacheMemory < 0 || o.maxBodyBytes <= 0:
		return nil, errors.New("--kv-cache-memory must be >= 0 and --max-body-bytes positive")
	case o.maxConcurrentParsing < 1 || o.maxResponseTokens < 1:
		return nil, errors.New("--max-concurrent-parsing and --max-response-tokens must be at least 1")
	case o.maxInflightResponseTokens < o.maxResponseTokens:
		return nil, fmt.Errorf("--max-inflight-response-tokens %d is below --max-response-tokens %d: the largest request allowed could never run", o.maxInflightResponseTokens, o.maxResponseTokens)
	case o.maxLogprobs < 1 || o.maxLogprobs > engine.MaxTopLogprobs:
		return nil, fmt.Errorf("--max-logprobs must be in [1, %d], got %d", engine.MaxTopLogprobs, o.maxLogprobs)
	case o.shutdownTimeout <= 0:
		return nil, fmt.Errorf("--shutdown-timeout must be positive, got %v", o.shutdownTimeout)
	}
	if o.pprofAddr != "" && !o.pprofAllowRemote {
		if err := checkLoopback(o.pprofAddr); err != nil {
			return nil, err
		}
	}
	if *specJSON != "" {
		c, err := specdec.Parse(*specJSON)
		if err != nil {
			return nil, fmt.Errorf("--speculative-config: %w", err)
		}
		o.speculative = c
	}
	if err := o.lora.check(); err != nil {
		return nil, err
	}
	if _, err := zapcore.ParseLevel(o.logLevel); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	if o.apiKeyFile != "" {
		keys, err := readKeyFile(o.apiKeyFile)
		if err != nil {
			return nil, err
		}
		o.apiKeys = append(o.apiKeys, keys...)
	}
	if k := strings.TrimSpace(getenv("VLLM_API_KEY")); k != "" {
		o.apiKeys = append(o.apiKeys, k)
	}
	return o, nil
}

// defaultServedName is the name a model is served under when --served-model-name is
// not given: a local file's name without its extension, a local directory's name, or
// anything else (a Hub name, synthetic:<shape>) as given. /v1/models then shows
// "stories260K", not "../shared/models/stories260K/stories260K.bin".
func defaultServedName(path string) string {
	if strings.HasPrefix(path, model.SyntheticPrefix) {
		return path
	}
	fi, err := os.Stat(path)
	if err != nil {
		return path
	}
	if fi.IsDir() {
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return filepath.Base(filepath.Clean(path))
	}
	base := filepath.Base(path)
	if stem := strings.TrimSuffix(base, filepath.Ext(base)); stem != "" {
		return stem
	}
	return base
}

// getenv is os.Getenv (tests replace it).
var getenv = os.Getenv

// checkLoopback refuses a pprof address other interfaces can reach: /debug/pprof
// has no authentication and serves heap dumps and the command line.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return nil
	}
	what := host
	if host == "" {
		what = "every interface"
	}
	return fmt.Errorf("--pprof-addr %s listens on %s, not loopback: /debug/pprof has no authentication and exposes the process's memory; use localhost:PORT, or add --pprof-allow-remote to serve it there anyway", addr, what)
}

// redactArgs returns a copy of a command line with the values of secret flags
// (--api-key) replaced.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		name := strings.TrimLeft(out[i], "-")
		if !strings.HasPrefix(out[i], "-") || out[i] == "--" {
			continue
		}
		if name == "api-key" && i+1 < len(out) {
			out[i+1] = "<redacted>"
			i++
		} else if strings.HasPrefix(name, "api-key=") {
			out[i] = out[i][:len(out[i])-len(name)] + "api-key=<redacted>"
		}
	}
	return out
}

func usage(prog string, fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [MODEL] [flags]\n", prog)
	fmt.Fprint(w, `
Serve a model over an OpenAI-compatible HTTP API:
  POST /v1/completions, POST /v1/chat/completions (stream with "stream": true),
  GET /v1/models, POST /tokenize, POST /detokenize, GET /version, GET /health,
  GET /ready, GET /metrics (Prometheus, vLLM's series).
It listens on 127.0.0.1 unless --host says otherwise.

`)
	for _, g := range flagGroups {
		fmt.Fprintf(w, "%s:\n", g.title)
		for _, name := range g.names {
			f := fs.Lookup(name)
			typ, help := flag.UnquoteUsage(f)
			head := "  --" + name
			if typ != "" {
				head += " " + typ
			}
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" && f.DefValue != "0s" && !strings.Contains(help, "(default") {
				help += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "%-34s %s\n", head, help)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprint(w, strings.ReplaceAll(`Examples:
  serve ../shared/models/stories260K/stories260K.bin
  serve ./Llama-3.2-1B-Instruct --quantization int8        (a Hugging Face directory)
  serve model.gguf --served-model-name llama --max-num-seqs 64 --kv-cache-memory 4GiB --api-key-file keys.txt
  serve bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0 --offline
  serve ../shared/models/stories260K/stories260K.bin --quantization f32 \
        --speculative-config '{"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 4}'
`, "  serve ", "  "+prog+" "))
	fmt.Fprintf(w, "\nSynthetic models (random weights, for trying the server out): %s\n", strings.Join(model.SyntheticNames(), ", "))
}

func readKeyFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--api-key-file: %w", err)
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--api-key-file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--api-key-file %s holds no keys", path)
	}
	return keys, nil
}

func newLogger(level string, stderr io.Writer) *zap.Logger {
	lvl, _ := zapcore.ParseLevel(level)
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey, enc.EncodeTime = "time", zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(stderr)), lvl)
	return zap.New(core)
}

// run serves until ctx is cancelled (a signal), then drains and returns nil.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	return runAs(ctx, "serve", args, io.Discard, stderr)
}

func runAs(ctx context.Context, prog string, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlagsAs(prog, args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, version.Line(prog))
		return nil
	}
	log := newLogger(o.logLevel, stderr)
	defer log.Sync()

	path := o.model
	if path == "" {
		path = model.SyntheticPrefix + "tiny"
		log.Warn("no model given: serving the built-in synthetic model (random weights from a fixed seed, byte-level vocabulary); its text is noise", zap.String("model", path))
	}
	name := path // clients send the name given, not where the cache keeps it (as vLLM)
	if path, err = hub.Resolve(ctx, path, hub.CommandConfig(o.offline, log.Named("hub"), stderr)); err != nil {
		return err
	}
	be, err := device.Open(o.device, device.Options{Threads: o.threads, GPUMemoryUtilization: o.gpuMemUtil, Log: log, Kernels: o.kernels, W4A16: o.w4a16})
	if err != nil {
		return fmt.Errorf("--device %s: %w", o.device, err)
	}
	var chatTemplate string // checked before the (maybe long) load
	if o.chatTemplate != "" {
		if chatTemplate, err = readChatTemplate(o.chatTemplate); err != nil {
			return err
		}
	}
	start := time.Now()
	lp := cli.NewLoadProgress(stderr, log, path)
	mopt := model.Options{Weights: o.weights.T, KeepMapped: o.weights.Mmap, Progress: lp.Func()}
	lp.Start()
	m, err := llm.Open(path, o.tokenizer, be, mopt)
	lp.Done()
	if err != nil {
		return cli.LoadError(err, "--tokenizer")
	}
	defer m.Close()
	if chatTemplate != "" {
		m.ChatTemplate = chatTemplate
	}
	draft, err := openDraft(ctx, o, mopt, be, m, log, stderr)
	if err != nil {
		return err
	}
	if draft != nil {
		defer draft.Close()
	}
	eopt := engine.Options{
		MaxNumSeqs: o.maxNumSeqs, MaxNumBatchedTokens: o.maxNumBatchedTokens, MaxModelLen: o.maxModelLen,
		KVCacheBytes: int64(o.kvCacheMemory), PrefillStreams: o.prefillStreams, DecodeSteps: o.decodeSteps,
		EnablePrefixCache: o.prefixCaching, MaxWaiting: o.maxWaiting, Logger: log.Named("engine"),
		DisableCUDAGraphs: !o.cudaGraphs, EOSIDs: m.EOSIDs, Speculative: o.speculative,
		LoRA: o.lora.options(),
	}
	if draft != nil {
		eopt.Draft = draft.Model
	}
	names := []string(o.servedNames)
	var aliases []string
	if len(names) == 0 {
		names = []string{defaultServedName(name)}
		if names[0] != name {
			aliases = []string{name} // what vLLM would have served it as
		}
	}
	// The op profiler: its windows are opened by /debug/vireo/profile on the pprof
	// listener; NVTX ranges (nsys, ncu attached, or VIREO_NVTX=1) need it too. Without
	// either the engine has none and a pass calls nothing for it.
	var prof *profiling.Profiler
	if o.pprofAddr != "" || profiling.NVTXWanted() {
		prof = profiling.New(profiling.Options{Backend: be.Name()})
		eopt.Profiler, eopt.ModelName = prof, names[0]
	}
	eng, err := engine.New(m.Model, m.Tokenizer, eopt)
	if err != nil {
		return err
	}
	defer eng.Close()

	if err := o.lora.load(eng, append(slices.Clone(names), aliases...), log.Named("lora")); err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		AllowRuntimeLoRA: o.lora.allowRuntime, LoRADir: o.lora.dir,
		ModelNames: names, ModelAliases: aliases, APIKeys: o.apiKeys, MaxBodyBytes: int64(o.maxBodyBytes), RequestTimeout: o.requestTimeout,
		ReadTimeout: o.readTimeout, WriteTimeout: o.writeTimeout,
		MaxConcurrentParsing: o.maxConcurrentParsing, MaxResponseTokens: o.maxResponseTokens,
		MaxInflightResponseTokens: o.maxInflightResponseTokens, MaxLogprobs: o.maxLogprobs,
		Cache: server.CacheInfo{GPUMemoryUtilization: o.gpuMemUtil}, Version: version.Get().Version,
		ChatEncode: func(msgs []chattemplate.Message, tools []chattemplate.Tool, addGen bool, limit int) ([]int32, error) {
			ids, _, err := m.ChatPromptTools(msgs, tools, addGen, limit)
			return ids, err
		},
		ChatPrompt: func(msgs []chattemplate.Message, tools []chattemplate.Tool, limit int) ([]int32, error) {
			ids, _, err := m.ChatPromptTools(msgs, tools, true, limit)
			return ids, err
		},
	}, eng, m.Tokenizer, log.Named("http"))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return err
	}
	if o.pprofAddr != "" {
		if o.pprofAllowRemote && checkLoopback(o.pprofAddr) != nil {
			log.Warn("--pprof-allow-remote: /debug/pprof, which has no authentication and exposes the process's memory, is served beyond loopback", zap.String("pprof_addr", o.pprofAddr))
		}
		if err := servePprof(o.pprofAddr, prof, log); err != nil {
			ln.Close()
			return err
		}
	}
	eo := eng.Options()
	graphs, graphsWhy := eng.Graphs()
	c := m.Config
	st := eng.Stats()
	log.Info("config",
		zap.String("model", path), zap.Strings("served_model_name", names), zap.Bool("synthetic", m.Synthetic),
		zap.Bool("chat_template", m.ChatTemplate != ""),
		zap.String("device", o.device), zap.String("weights", mopt.Weights.String()), zap.String("weight_types", m.WeightTypes()), zap.String("backend", be.Name()), zap.Int("threads", o.threads),
		zap.Int("GOMAXPROCS", runtime.GOMAXPROCS(0)),
		zap.Int("layers", c.Layers), zap.Int("dim", c.Dim), zap.Int("vocab", c.VocabSize), zap.Int("context", c.MaxSeqLen),
		zap.Int("max_model_len", eo.MaxModelLen), zap.Int("max_num_seqs", eo.MaxNumSeqs),
		zap.Int("max_num_batched_tokens", eo.MaxNumBatchedTokens), zap.Int("kv_blocks", st.NumBlocks),
		zap.Int("kv_block_size", eo.BlockSize), zap.Int64("kv_cache_bytes", eo.KVCacheBytes),
		zap.Bool("prefix_caching", eo.EnablePrefixCache), zap.Int("prefill_streams", eo.PrefillStreams),
		zap.Int("decode_steps", eo.DecodeSteps), zap.Int("max_waiting", eo.MaxWaiting),
		zap.Bool("cuda_graphs", o.cudaGraphs), zap.String("decode_graphs", string(graphs)), zap.String("decode_graphs_why", graphsWhy),
		zap.Stringer("speculative_config", eng.Speculative()),
		zap.Int("max_loras", eo.LoRA.MaxLoRAs), zap.Int("max_lora_rank", eo.LoRA.MaxRank), zap.Int("max_cpu_loras", eo.LoRA.MaxCPULoRAs),
		zap.Int("lora_adapters", len(eng.Adapters())), zap.Bool("runtime_lora_updating", o.lora.allowRuntime),
		zap.Duration("request_timeout", o.requestTimeout), zap.Duration("shutdown_timeout", o.shutdownTimeout),
		zap.Int64("max_body_bytes", int64(o.maxBodyBytes)), zap.Int("api_keys", len(o.apiKeys)),
		zap.Int("max_concurrent_parsing", o.maxConcurrentParsing), zap.Int64("max_response_tokens", o.maxResponseTokens),
		zap.Int64("max_inflight_response_tokens", o.maxInflightResponseTokens), zap.Int("max_logprobs", o.maxLogprobs),
		zap.String("pprof_addr", o.pprofAddr), zap.Duration("load", time.Since(start)))

	if len(o.apiKeys) == 0 && checkLoopback(ln.Addr().String()) != nil {
		log.Warn("listening beyond this machine without an API key: anyone who can reach the port can use the model (set --api-key-file or VLLM_API_KEY, or --host 127.0.0.1)", zap.String("addr", ln.Addr().String()))
	}
	hs := srv.NewHTTPServer(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()))

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("signal received: draining", zap.Duration("shutdown_timeout", o.shutdownTimeout), zap.Int("in_flight", srv.InFlight()))
	t0 := now()
	err = shutdown(srv, hs, t0.Add(o.shutdownTimeout), t0, log)
	if err != nil {
		log.Warn("drain incomplete", zap.Error(err))
	}
	log.Info("stopped", zap.Bool("drain_complete", err == nil))
	return err
}

// now is the clock shutdown plans with (tests replace it), and shutdownPhase, when
// set, hears each phase of a shutdown and the time it must end by.
var (
	now           = time.Now
	shutdownPhase func(phase string, by time.Time)
)

// shutdown stops the server by deadline, planned at start: in-flight requests may
// finish until a reserve before the deadline (a fifth of the time, at most 5s); then
// the rest are aborted, their handlers return and the connections close, by the
// deadline; at the deadline whatever is left is closed. It returns an error when
// requests had to be aborted (or handlers were still running at the deadline).
func shutdown(srv *server.Server, hs *http.Server, deadline, start time.Time, log *zap.Logger) error {
	phase := func(name string, by time.Time) {
		if shutdownPhase != nil {
			shutdownPhase(name, by)
		}
	}
	drainBy := deadline.Add(-min(deadline.Sub(start)/5, 5*time.Second))
	phase("drain", drainBy)
	dctx, cancel := context.WithDeadline(context.Background(), drainBy)
	drainErr := srv.Drain(dctx)
	cancel()

	phase("handlers", deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	waitErr := srv.WaitIdle(ctx)
	phase("connections", deadline)
	if err := hs.Shutdown(ctx); err != nil {
		// Stalled clients: close their connections (their handlers' writes fail).
		log.Warn("closing the connections still open at the shutdown deadline", zap.Error(err))
		hs.Close()
	}
	if drainErr != nil || waitErr != nil {
		return fmt.Errorf("shutdown: drain incomplete: %w", errors.Join(drainErr, waitErr))
	}
	return nil
}

// openDraft loads the draft model of --speculative-config's draft_model method on the
// target's backend (nil for no speculation or prompt lookup): any path or Hub name
// --model takes, with the target's weight format unless "quantization" says otherwise.
// A draft whose tokenizer differs from the target's is refused here, naming how.
func openDraft(ctx context.Context, o *options, mopt model.Options, be backend.Backend, target *llm.Loaded, log *zap.Logger, stderr io.Writer) (*llm.Loaded, error) {
	sc := o.speculative
	if sc.Method != specdec.MethodDraftModel {
		return nil, nil
	}
	path, err := hub.Resolve(ctx, sc.Model, hub.CommandConfig(o.offline, log.Named("hub"), stderr))
	if err != nil {
		return nil, fmt.Errorf("--speculative-config: draft model: %w", err)
	}
	mopt.Progress = nil // the target's progress bar is done
	switch sc.Quantization {
	case "auto":
		mopt.Weights = model.WeightsAuto
	case "int8":
		mopt.Weights = model.WeightsInt8
	case "f32":
		mopt.Weights = model.WeightsF32
	}
	d, err := llm.Open(path, "", be, mopt)
	if err != nil {
		return nil, fmt.Errorf("--speculative-config: draft model: %w", err)
	}
	if err := specdec.CheckTokenizers(d.Tokenizer, target.Tokenizer); err != nil {
		d.Close()
		return nil, fmt.Errorf("--speculative-config: draft model %s: %w", sc.Model, err)
	}
	log.Info("draft model", zap.String("model", path), zap.String("weights", mopt.Weights.String()),
		zap.Int("layers", d.Config.Layers), zap.Int("dim", d.Config.Dim), zap.Int("vocab", d.Config.VocabSize))
	return d, nil
}

// servePprof serves /debug/pprof, and the op profiles of prof at /debug/vireo/profile,
// on its own listener, never on the API port.
func servePprof(addr string, prof *profiling.Profiler, log *zap.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vireo/profile", profiling.Handler(prof))
	log.Info("pprof listening", zap.String("addr", ln.Addr().String()))
	go http.Serve(ln, mux)
	return nil
}

// cmdline is pprof.Cmdline with secret flag values redacted.
func cmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(redactArgs(os.Args), "\x00"))
}

// listFlag is a repeatable string flag; each value may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// byteSize is a size flag: a byte count, or a number with a unit (KiB, MiB, GiB, TiB,
// binary; KB, MB, GB, decimal; K, M, G are binary).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	n, err := parseBytes(v)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseBytes(v string) (int64, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("%q is not a size (e.g. 1073741824, 512MiB, 2GiB)", v)
	}
	mult := map[string]float64{"": 1, "B": 1,
		"K": 1 << 10, "KiB": 1 << 10, "KB": 1e3,
		"M": 1 << 20, "MiB": 1 << 20, "MB": 1e6,
		"G": 1 << 30, "GiB": 1 << 30, "GB": 1e9,
		"T": 1 << 40, "TiB": 1 << 40, "TB": 1e12}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", v, unit)
	}
	return int64(f * mult), nil
}

// readChatTemplate is --chat-template's template: the file at arg when there is one,
// else arg itself when it holds Jinja syntax (vLLM's rule: a path that does not exist
// is an error, not a template that renders its own name); either way it must parse.
func readChatTemplate(arg string) (string, error) {
	src := arg
	if b, err := os.ReadFile(arg); err == nil {
		src = string(b)
	} else if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENAMETOOLONG) {
		return "", fmt.Errorf("--chat-template %s: %w", arg, err)
	} else if !strings.Contains(arg, "{{") && !strings.Contains(arg, "{%") {
		return "", fmt.Errorf("--chat-template %s: no such file, and not a template (no {{ or {%%)", arg)
	}
	if _, err := chattemplate.Parse(src); err != nil {
		return "", fmt.Errorf("--chat-template: %w", err)
	}
	return src, nil
}
