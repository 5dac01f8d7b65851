package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/internal/cli"
	"github.com/vireo-ai/vireo/internal/version"
	"github.com/vireo-ai/vireo/runtime/backend/device"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// options are the flags of `vireo run` and of the old flags-only form.
type options struct {
	model, tokenizer, prompt, device, system string
	cpuProfile, kernels, lora                string
	weights                                  *cli.Weights
	maxTokens, threads, chunk, ctxSize       int
	temperature, topP, minP, repPenalty      float64
	topK                                     int
	seed                                     uint64
	ignoreEOS, int8Embedding, quiet, verbose bool
	w4a16                                    bool
	interactive, offline, version            bool
	chat                                     autoBool

	legacy    bool // vireo -model M -prompt P: the prompt defaults to "Once upon a time", -chat to false
	hasPrompt bool // a prompt was given (argument or -prompt)
}

// defaultMaxTokens is -max-tokens for one prompt; a chat reply runs to its end or the
// context's unless -max-tokens is given.
const defaultMaxTokens = 256

func parseRunFlags(prog string, legacy bool, args []string, stderr io.Writer) (*options, error) {
	o := &options{legacy: legacy, weights: cli.NewWeights(), maxTokens: -1}
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { runUsage(prog, legacy, fs, stderr) }
	fs.StringVar(&o.model, "model", "", "the model (in vireo run, the first argument): see MODEL above (default in the old form: the built-in synthetic:tiny)")
	fs.StringVar(&o.prompt, "prompt", "", "the prompt (in vireo run, the arguments after MODEL; default in the old form: \"Once upon a time\")")
	fs.BoolVar(&o.interactive, "interactive", false, "chat, reading messages from standard input (the default for vireo run MODEL without a prompt on a terminal)")
	fs.Var(&o.chat, "chat", "send the prompt as a user message through the model's chat template (default in vireo run: when the model has a template; in the old form: false)")
	fs.StringVar(&o.system, "system", "", "a system message to start the chat (and -chat prompts) with")
	fs.BoolVar(&o.offline, "offline", false, "never touch the network: Hub names come from the local cache only (as HF_HUB_OFFLINE=1)")
	fs.StringVar(&o.lora, "lora", "", "a LoRA adapter to apply (llama.cpp's --lora): a PEFT directory (adapter_config.json + adapter_model.safetensors) or a GGUF adapter, at its own alpha/r scale")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "llama2.c tokenizer.bin for a .bin model (default: tok<vocab>.bin or tokenizer.bin beside it)")
	fs.IntVar(&o.maxTokens, "max-tokens", -1, fmt.Sprintf("most tokens to generate (default %d; in a chat, each reply runs to its end or the context's)", defaultMaxTokens))
	fs.IntVar(&o.ctxSize, "ctx-size", 0, "tokens the context holds, prompt and output together (default: the model's context)")
	fs.Float64Var(&o.temperature, "temperature", 0.8, "sampling temperature; 0 is greedy")
	fs.IntVar(&o.topK, "top-k", 40, "keep the k most likely tokens; 0 disables")
	fs.Float64Var(&o.topP, "top-p", 0.95, "nucleus sampling mass in (0,1]; 1 disables")
	fs.Float64Var(&o.minP, "min-p", 0, "drop tokens less likely than min-p times the best; 0 disables")
	fs.Float64Var(&o.repPenalty, "repetition-penalty", 1, "CTRL-style repetition penalty; 1 disables")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed (Philox, keyed by seed and token index)")
	fs.BoolVar(&o.ignoreEOS, "ignore-eos", false, "keep generating past the end-of-sequence token")
	o.weights.Register(fs)
	fs.BoolVar(&o.int8Embedding, "int8-embedding", true, "with -quantization int8 or q8_0, the embedding/classifier are 8-bit too (false: keep them f32)")
	fs.StringVar(&o.device, "device", "cpu", fmt.Sprintf("backend: cpu or cuda (this binary: %v)", device.Names()))
	fs.IntVar(&o.threads, "threads", 0, "CPU worker goroutines per op (default GOMAXPROCS)")
	fs.StringVar(&o.kernels, "kernels", "v2", "with -device cuda: attention and sampling kernels, v2 or v1 (v1 stays selectable until v2 is verified on a card)")
	fs.BoolVar(&o.w4a16, "w4a16", false, "with -device cuda and -weights auto: keep GGUF Q4_0/Q4_K matrices 4-bit (W4A16 kernels; off until verified on a card: they become int8 otherwise)")
	fs.IntVar(&o.chunk, "prefill-chunk", 512, "tokens per prefill pass")
	fs.BoolVar(&o.quiet, "quiet", false, "no log lines and no progress on stderr: only the generated text (stdout) and the closing speed and stop line (stderr)")
	fs.BoolVar(&o.verbose, "verbose", false, "in a chat, print the speed and stop line after every reply")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the generation (prefill and decode, not the load) to this file, for go tool pprof")

	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	if o.version {
		return o, nil
	}
	if legacy && len(pos) > 0 {
		return nil, fmt.Errorf("unexpected argument %q (the prompt goes in -prompt, or: vireo run MODEL PROMPT)", pos[0])
	}
	if !legacy && o.model == "" && len(pos) > 0 {
		o.model, pos = pos[0], pos[1:]
	}
	switch {
	case len(pos) > 0 && o.prompt != "":
		return nil, fmt.Errorf("two prompts: %q and -prompt %q", strings.Join(pos, " "), o.prompt)
	case len(pos) > 0:
		o.prompt = strings.Join(pos, " ")
	}
	o.hasPrompt = o.prompt != ""
	if legacy && !o.hasPrompt {
		o.prompt, o.hasPrompt = "Once upon a time", true
	}
	switch {
	case !legacy && o.model == "":
		return nil, errors.New("run needs a model: vireo run MODEL [PROMPT] (vireo help run; synthetic:tiny is built in)")
	case o.maxTokens < -1:
		return nil, fmt.Errorf("-max-tokens must be >= 0, got %d", o.maxTokens)
	case o.ctxSize < 0:
		return nil, fmt.Errorf("-ctx-size must be >= 0, got %d", o.ctxSize)
	case o.chunk <= 0:
		return nil, fmt.Errorf("-prefill-chunk must be positive, got %d", o.chunk)
	case o.threads < 0:
		return nil, fmt.Errorf("-threads must be >= 0, got %d", o.threads)
	case o.interactive && o.hasPrompt && !legacy:
		return nil, errors.New("-interactive reads the messages from standard input: give no prompt")
	case device.CheckKernels(o.kernels) != nil:
		return nil, fmt.Errorf("-%w", device.CheckKernels(o.kernels))
	}
	if !slices.Contains(device.Names(), o.device) {
		if o.device == "cuda" {
			return nil, errors.New("-device cuda: this binary was built without CUDA (build it with make cuda); only -device cpu is available")
		}
		return nil, fmt.Errorf("-device %q: unknown device; this binary has %v", o.device, device.Names())
	}
	return o, nil
}

func runUsage(prog string, legacy bool, fs *flag.FlagSet, w io.Writer) {
	if legacy {
		fmt.Fprint(w, "Usage: vireo [flags]          (the old form of vireo run; vireo help lists the commands)\n\n")
	} else {
		fmt.Fprintf(w, "Usage: %s MODEL [PROMPT] [flags]\n\n", prog)
	}
	fmt.Fprint(w, `Generate text from PROMPT, streaming it to standard output as it comes, then say on
standard error why generation stopped (end of sequence, -max-tokens, or the context
full) and how fast prefill and decode ran. A prompt also comes from standard input
when it is piped in.

Without a prompt, on a terminal (or with -interactive, reading standard input), it is
a chat: each message goes through the model's chat template with the conversation so
far (models without a template get plain "role: content" lines); /bye or Ctrl-D
leaves, /clear forgets the conversation, /help lists the rest.

`+modelHelp+`
Flags:
`)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Examples:
  vireo run ../shared/models/stories260K/stories260K.bin "Once upon a time" -temperature 0
  vireo run ./Llama-3.2-1B-Instruct -system "Answer briefly."      (a Hugging Face directory)
  vireo run bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0 "Why is the sky blue?"
  echo "Why is the sky blue?" | vireo run model.gguf -quiet
`)
}

// autoBool is a boolean flag that also knows it was not given.
type autoBool struct{ set, v bool }

func (b *autoBool) IsBoolFlag() bool { return true }
func (b *autoBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.v)
}
func (b *autoBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("must be true or false")
	}
	b.set, b.v = true, v
	return nil
}

// runCmd is `vireo run` (legacy: the old flags-only form).
func runCmd(prog string, legacy bool, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseRunFlags(prog, legacy, args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Fprintln(stdout, version.Line("vireo"))
		return nil
	}
	p := sampling.Params{Temperature: float32(o.temperature), TopK: o.topK, TopP: float32(o.topP), MinP: float32(o.minP),
		RepetitionPenalty: float32(o.repPenalty), Seed: o.seed}
	if err := p.Validate(); err != nil {
		return err
	}
	chat := !o.hasPrompt && (o.interactive || cli.IsTerminal(stdin))
	if !o.hasPrompt && !chat {
		// A prompt piped in, as `echo … | ollama run MODEL` takes one.
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<20))
		if err != nil {
			return fmt.Errorf("reading the prompt from standard input: %w", err)
		}
		o.prompt = strings.TrimRight(string(b), "\r\n")
		if strings.TrimSpace(o.prompt) == "" {
			return errors.New("no prompt: give one after the model, pipe one in, or chat with -interactive")
		}
	}

	level := zapcore.InfoLevel
	if o.quiet {
		level = zapcore.WarnLevel
	}
	log := consoleLogger(stderr, level)
	defer log.Sync()

	path := o.model
	if path == "" {
		path = model.SyntheticPrefix + "tiny"
		log.Info("no -model given: using the built-in synthetic model (random weights from a fixed seed, byte-level vocabulary); its text is noise, its speed is real", zap.String("model", path))
	}
	be, err := device.Open(o.device, device.Options{Threads: o.threads, Log: log, Kernels: o.kernels, W4A16: o.w4a16})
	if err != nil {
		return fmt.Errorf("-device %s: %w", o.device, err)
	}
	if path, err = resolveModel(path, o.offline, log, stderr); err != nil {
		return err
	}
	var lp *cli.LoadProgress
	if !o.quiet {
		lp = cli.NewLoadProgress(stderr, log, path)
	}
	start := time.Now()
	lp.Start()
	m, err := llm.Open(path, o.tokenizer, be, model.Options{Weights: o.weights.T, FloatEmbedding: !o.int8Embedding, KeepMapped: o.weights.Mmap, Progress: lp.Func()})
	lp.Done()
	if err != nil {
		return cli.LoadError(err, "-tokenizer")
	}
	defer m.Close()
	c := m.Config
	log.Info("model loaded", zap.String("model", path), zap.String("weights", o.weights.String()), zap.String("weight_types", m.WeightTypes()),
		zap.Int("dim", c.Dim), zap.Int("layers", c.Layers), zap.Int("heads", c.Heads), zap.Int("kv_heads", c.KVHeads),
		zap.Int("vocab", c.VocabSize), zap.Int("context", c.MaxSeqLen), zap.Float64("weight_MiB", float64(m.WeightBytes)/(1<<20)),
		zap.String("device", be.Name()), zap.Int("GOMAXPROCS", runtime.GOMAXPROCS(0)), zap.Duration("load", time.Since(start).Round(time.Millisecond)))

	ctx := c.MaxSeqLen
	if o.ctxSize > 0 {
		ctx = min(o.ctxSize, ctx)
	}
	sess, err := llm.NewSession(m.Model, ctx, o.chunk)
	if err != nil {
		return err
	}
	if o.lora != "" {
		a, err := lora.Load(o.lora, &m.Model.Config, engine.MaxLoRARank)
		if err != nil {
			return fmt.Errorf("-lora: %w", err)
		}
		set, err := m.Model.NewLoRASet(1, a.Rank)
		if err == nil {
			err = m.Model.LoadLoRA(set, 0, a)
		}
		if err != nil {
			return fmt.Errorf("-lora %s: %w", o.lora, err)
		}
		sess.SetLoRA(set, 0)
		log.Info("LoRA adapter applied", zap.String("lora", o.lora), zap.String("format", a.Format), zap.Int("rank", a.Rank),
			zap.Float64("alpha", a.Alpha), zap.Bool("rslora", a.RSLoRA))
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	g := &generator{m: m, o: o, p: &p, sess: sess, ctx: ctx, out: cli.NewTextWriter(stdout)}
	if chat {
		return g.chat(stdin, stdout, stderr, log)
	}
	useChat := o.chat.v
	if !o.chat.set && !o.legacy {
		useChat = m.ChatTemplate != ""
		if useChat {
			log.Info("the prompt goes through the model's chat template as a user message (-chat=false sends it as raw text)")
		}
	}
	return g.oneShot(useChat, stdout, stderr)
}

// generator runs replies on one session: the tokens fed so far, sampling, output.
type generator struct {
	m       *llm.Loaded
	o       *options
	p       *sampling.Params
	sess    *llm.Session
	ctx     int // tokens the session may hold, prompt and output together
	out     io.StringWriter
	sampler sampling.Sampler
	fed     []int32 // the tokens in the session's cache, in order

	interrupted atomic.Bool // Ctrl-C in a chat: stop the reply
}

// reply is what one generation did.
type reply struct {
	prompt, cached     int           // prompt tokens prefilled now, and reused from the cache
	sampled            int           // tokens sampled, the end-of-sequence token included
	ids                []int32       // the generated tokens, end-of-sequence excluded
	prefill, decode    time.Duration // to the first token; from it to the last
	stop               string        // stop, length, context full, interrupted
	limit, contextSize int
}

// feed appends ids to the session: prompt tokens, or one the reply generated.
func (g *generator) feed(ids []int32, generated bool) ([]float32, error) {
	feed := g.sess.Feed
	if generated {
		feed = g.sess.FeedGenerated
	}
	logits, err := feed(ids)
	if err != nil {
		return nil, err
	}
	g.fed = append(g.fed, ids...)
	return logits, nil
}

// generate prefills prompt after the first cached tokens already in the session and
// samples until end of sequence, limit tokens (-1: none), or the context is full,
// streaming the text.
func (g *generator) generate(prompt []int32, cached, limit int) (*reply, error) {
	r := &reply{prompt: len(prompt) - cached, cached: cached, limit: limit, contextSize: g.ctx}
	if len(prompt) >= g.ctx {
		return nil, fmt.Errorf("the prompt is %d tokens; the context holds %d (-ctx-size), prompt and output together", len(prompt), g.ctx)
	}
	g.sess.Truncate(cached)
	g.fed = g.fed[:cached]
	t0 := time.Now()
	logits, err := g.feed(prompt[cached:], false)
	if err != nil {
		return nil, err
	}
	history := append([]int32(nil), g.fed...)
	room := g.ctx - len(prompt)
	stream := g.m.Tokenizer.NewRawStream(false)
	var t1 time.Time
	for {
		switch {
		case limit >= 0 && r.sampled >= limit:
			r.stop = "length"
		case r.sampled >= room:
			r.stop = "context full"
		case g.interrupted.Load():
			r.stop = "interrupted"
		}
		if r.stop != "" {
			break
		}
		if r.sampled > 0 {
			if logits, err = g.feed(r.ids[len(r.ids)-1:], true); err != nil {
				return nil, err
			}
		}
		next := g.sampler.Sample(logits, g.p, uint64(r.sampled), history)
		r.sampled++
		if r.sampled == 1 {
			t1 = time.Now()
			r.prefill = t1.Sub(t0)
		}
		r.decode = time.Since(t1)
		if slices.Contains(g.m.EOSIDs, next) && !g.o.ignoreEOS {
			r.stop = "stop"
			break
		}
		r.ids = append(r.ids, next)
		history = append(history, next)
		if _, err := g.out.WriteString(stream.Add(next)); err != nil {
			return nil, err
		}
	}
	if _, err := g.out.WriteString(stream.Flush()); err != nil {
		return nil, err
	}
	if r.sampled == 0 {
		r.prefill = time.Since(t0)
	}
	return r, nil
}

// stopText says why a reply stopped, naming the limit that stopped it.
func (r *reply) stopText(maxFlag bool) string {
	switch r.stop {
	case "stop":
		return "stop (end of sequence)"
	case "length":
		if maxFlag {
			return fmt.Sprintf("length (-max-tokens %d)", r.limit)
		}
		return fmt.Sprintf("length (%d tokens)", r.limit)
	case "context full":
		return fmt.Sprintf("context full (%d tokens)", r.contextSize)
	}
	return r.stop
}

// speedLine reports prefill and decode separately: prefill is the prompt's pass up to
// the first token; decode is each later token's pass (the first token comes out of
// prefill, so n sampled tokens take n-1 decode passes).
func (r *reply) speedLine(maxFlag bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "prefill: %s in %s (%s tokens/s)", plural(r.prompt, "token"), ms(r.prefill), rate(r.prompt, r.prefill))
	if r.cached > 0 {
		fmt.Fprintf(&b, ", %d cached", r.cached)
	}
	switch n := r.sampled - 1; {
	case n < 1:
		fmt.Fprintf(&b, " | decode: no steps")
	default:
		fmt.Fprintf(&b, " | decode: %s in %s (%s tokens/s)", plural(n, "token"), ms(r.decode), rate(n, r.decode))
	}
	fmt.Fprintf(&b, " | generated %s, stop: %s", plural(r.sampled, "token"), r.stopText(maxFlag))
	return b.String()
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func rate(n int, d time.Duration) string {
	if n == 0 || d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(n)/d.Seconds())
}

// oneShot generates from the prompt once.
func (g *generator) oneShot(useChat bool, stdout, stderr io.Writer) error {
	tok := g.m.Tokenizer
	var prompt []int32
	if useChat {
		var msgs []chattemplate.Message
		if g.o.system != "" {
			msgs = append(msgs, chattemplate.Message{Role: "system", Content: g.o.system})
		}
		var err error
		if prompt, _, err = g.m.ChatPrompt(append(msgs, chattemplate.Message{Role: "user", Content: g.o.prompt}), true); err != nil {
			return err
		}
	} else {
		prompt = tok.Encode(g.o.prompt, tok.DefaultOptions())
	}
	if len(prompt) == 0 {
		prompt = []int32{tok.BOS()}
	}
	limit := g.o.maxTokens
	if limit < 0 {
		limit = defaultMaxTokens
	}
	if !useChat {
		if _, err := g.out.WriteString(g.o.prompt); err != nil {
			return err
		}
	}
	r, err := g.generate(prompt, 0, limit)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stderr, r.speedLine(true))
	return nil
}
