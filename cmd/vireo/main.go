// Command vireo generates text from a prompt with any supported model, streaming tokens
// as they come and printing speed at the end:
//
//	vireo -model ../shared/models/stories260K/stories260K.bin -prompt "Once upon a time"
//	vireo -model bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0 -prompt "Hello" -chat
//	vireo pull MODEL     download a Hub model into the Hugging Face cache
//	vireo list           the models in that cache, with sizes
//	vireo quantize IN OUT --type T   write a GGUF file of type T (quantize.go)
//
// A model is a local path or a Hugging Face Hub name (package runtime/hub): the cache
// is used first, with no request, then the Hub. With no -model it runs the built-in
// synthetic model (random weights: the text is noise, the speed is real), so a fresh
// machine has something to run.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/backend/device"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

type options struct {
	model, tokenizer, prompt, weights, device string
	maxTokens, threads, chunk                 int
	temperature, topP, minP, repPenalty       float64
	topK                                      int
	seed                                      uint64
	ignoreEOS, int8Embedding, quiet, chat     bool
	offline                                   bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("vireo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vireo [flags]\n       vireo pull MODEL\n       vireo list\n       vireo quantize IN OUT --type T (vireo quantize -h)\n\nGenerate text from a prompt, streaming tokens as they come. pull downloads a Hugging Face\nHub model into the Hub's cache; list shows the cached models; quantize writes a GGUF file.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSynthetic models (random weights, generated in memory): %v\n", model.SyntheticNames())
	}
	fs.StringVar(&o.model, "model", "", "model: a GGUF file, a llama2.c .bin, a Hugging Face directory, a Hub name (org/name, org/name:QUANT, org/name/file.gguf, @revision), or synthetic:<shape> (default: the built-in synthetic:tiny)")
	fs.BoolVar(&o.offline, "offline", false, "never touch the network: Hub names come from the local cache only (as HF_HUB_OFFLINE=1)")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "llama2.c tokenizer.bin for a .bin model (default: tok<vocab>.bin or tokenizer.bin beside it)")
	fs.StringVar(&o.prompt, "prompt", "Once upon a time", "prompt text")
	fs.IntVar(&o.maxTokens, "max-tokens", 256, "most tokens to generate")
	fs.Float64Var(&o.temperature, "temperature", 0.8, "sampling temperature; 0 is greedy")
	fs.IntVar(&o.topK, "top-k", 40, "keep the k most likely tokens; 0 disables")
	fs.Float64Var(&o.topP, "top-p", 0.95, "nucleus sampling mass in (0,1]; 1 disables")
	fs.Float64Var(&o.minP, "min-p", 0, "drop tokens less likely than min-p times the best; 0 disables")
	fs.Float64Var(&o.repPenalty, "repetition-penalty", 1, "CTRL-style repetition penalty; 1 disables")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed (Philox, keyed by seed and token index)")
	fs.StringVar(&o.weights, "weights", "int8", "weight format on the backend: int8 (per-row scales) or f32")
	fs.BoolVar(&o.int8Embedding, "int8-embedding", false, "with -weights int8, also quantize the embedding/classifier")
	fs.StringVar(&o.device, "device", "cpu", fmt.Sprintf("backend: cpu or cuda (this binary: %v)", device.Names()))
	fs.IntVar(&o.threads, "threads", 0, "CPU worker goroutines per op (default GOMAXPROCS)")
	fs.IntVar(&o.chunk, "prefill-chunk", 512, "tokens per prefill pass")
	fs.BoolVar(&o.ignoreEOS, "ignore-eos", false, "keep generating past the end-of-sequence token")
	fs.BoolVar(&o.quiet, "quiet", false, "print only the generated text and the speed")
	fs.BoolVar(&o.chat, "chat", false, "send the prompt as a user message through the model's chat template")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (the prompt goes in -prompt)", fs.Arg(0))
	}
	if o.maxTokens < 0 {
		return nil, fmt.Errorf("-max-tokens must be >= 0, got %d", o.maxTokens)
	}
	if o.weights != "int8" && o.weights != "f32" {
		return nil, fmt.Errorf("-weights must be int8 or f32, got %q", o.weights)
	}
	return o, nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vireo:", err)
			os.Exit(1)
		}
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "pull":
			return runPull(args[1:], stdout, stderr)
		case "list":
			return runList(args[1:], stdout, stderr)
		case "quantize":
			return quantizeCmd(args[1:], stdout, stderr)
		}
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := zapcore.InfoLevel
	if o.quiet {
		level = zapcore.WarnLevel
	}
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(stderr), level))
	defer log.Sync()

	path := o.model
	if path == "" {
		path = model.SyntheticPrefix + "tiny"
		log.Info("no -model given: using the built-in synthetic model (random weights from a fixed seed, byte-level vocabulary); its text is noise, its speed is real", zap.String("model", path))
	}
	if path, err = resolveModel(path, o.offline, log, stderr); err != nil {
		return err
	}
	opt := model.Options{Weights: model.WeightsF32, Int8Embedding: o.int8Embedding}
	if o.weights == "int8" {
		opt.Weights = model.WeightsInt8
	}
	be, err := device.Open(o.device, device.Options{Threads: o.threads, Log: log})
	if err != nil {
		return fmt.Errorf("-device %s: %w", o.device, err)
	}
	start := time.Now()
	m, err := llm.Open(path, o.tokenizer, be, opt)
	if err != nil {
		return err
	}
	defer m.Close()
	c := m.Config
	log.Info("model loaded", zap.String("model", path), zap.String("weights", opt.Weights.String()),
		zap.Int("dim", c.Dim), zap.Int("layers", c.Layers), zap.Int("heads", c.Heads), zap.Int("kv_heads", c.KVHeads),
		zap.Int("vocab", c.VocabSize), zap.Int("context", c.MaxSeqLen), zap.Float64("weight_MiB", float64(m.WeightBytes)/(1<<20)),
		zap.String("device", be.Name()), zap.Int("GOMAXPROCS", runtime.GOMAXPROCS(0)), zap.Duration("load", time.Since(start)))

	p := sampling.Params{Temperature: float32(o.temperature), TopK: o.topK, TopP: float32(o.topP), MinP: float32(o.minP),
		RepetitionPenalty: float32(o.repPenalty), Seed: o.seed}
	if err := p.Validate(); err != nil {
		return err
	}
	return generate(m, o, &p, stdout, stderr)
}

func generate(m *llm.Loaded, o *options, p *sampling.Params, stdout, stderr io.Writer) error {
	tok := m.Tokenizer
	prompt := tok.Encode(o.prompt, tok.DefaultOptions())
	if o.chat {
		var err error
		if prompt, _, err = m.ChatPrompt([]chattemplate.Message{{Role: "user", Content: o.prompt}}, true); err != nil {
			return err
		}
	}
	if len(prompt) == 0 {
		prompt = []int32{tok.BOS()}
	}
	if len(prompt) >= m.Config.MaxSeqLen {
		return fmt.Errorf("prompt of %d tokens does not fit the context of %d", len(prompt), m.Config.MaxSeqLen)
	}
	maxTokens := min(o.maxTokens, m.Config.MaxSeqLen-len(prompt))
	sess, err := llm.NewSession(m.Model, len(prompt)+maxTokens, o.chunk)
	if err != nil {
		return err
	}
	t0 := time.Now()
	logits, err := sess.Feed(prompt)
	if err != nil {
		return err
	}
	prefill := time.Since(t0)
	if !o.chat {
		fmt.Fprint(stdout, o.prompt)
	}
	stream := tok.NewStream(false)
	var sampler sampling.Sampler
	history := append([]int32(nil), prompt...)
	generated := 0
	t1 := time.Now()
	for generated < maxTokens {
		next := sampler.Sample(logits, p, uint64(generated), history)
		generated++
		if slices.Contains(m.EOSIDs, next) && !o.ignoreEOS {
			break
		}
		fmt.Fprint(stdout, stream.Add(next))
		history = append(history, next)
		if generated == maxTokens {
			break
		}
		if logits, err = sess.Feed([]int32{next}); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, stream.Flush())
	decode := time.Since(t1)
	fmt.Fprintf(stderr, "prompt: %d tokens in %.1f ms (%.1f tokens/s); generated: %d tokens in %.2f s (%.1f tokens/s)\n",
		len(prompt), ms(prefill), float64(len(prompt))/prefill.Seconds(), generated, decode.Seconds(), float64(generated)/decode.Seconds())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
