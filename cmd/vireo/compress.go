package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/compress"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// compressCmd is `vireo compress IN OUT [flags]`: rewrite IN's block matrices as
// low-rank factor pairs and/or 2:4 sparse matrices (runtime/compress) into the GGUF file
// OUT. Flags may come before, between or after the two paths.
func compressCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vireo compress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fraction := fs.Float64("rank-fraction", 0, "low-rank: keep this fraction of min(out, in) singular directions")
	budget := fs.Float64("param-budget", 0, "low-rank: the largest rank whose factors hold at most this fraction of the matrix's weights (1 = break-even)")
	energy := fs.Float64("energy", 0, "low-rank: the smallest rank keeping this fraction of the squared Frobenius norm (of W·S when whitened)")
	lowRank := fs.String("lowrank", "", "matrices to factor, comma-separated ("+strings.Join(compress.Matrices, ",")+"; default all with a rank option)")
	power := fs.Int("power-iters", 2, "randomized SVD power iterations")
	over := fs.Int("oversample", 8, "randomized SVD extra sketch directions")
	seed := fs.Uint64("seed", 1, "randomized SVD seed")
	whiten := fs.Bool("whiten", false, "low-rank: truncate W·S, S the Cholesky factor of the layer inputs' XᵀX over the calibration text (SVD-LLM)")
	larger := fs.Bool("allow-larger", false, "store factors even when they hold as many weights as the matrix or more")
	sparsity := fs.String("sparsity", "", "2:4 to prune to 2:4 semi-structured sparsity")
	prune := fs.String("prune", "magnitude", "2:4 criterion: magnitude (|W|) or wanda (|W|·‖X‖, needs --calib)")
	sparse := fs.String("sparse", "", "matrices to make 2:4, comma-separated (default all with --sparsity)")
	calib := fs.String("calib", "", "calibration text for --whiten and wanda: the training part of the data, never held-out text")
	calibSkip := fs.Int("calib-skip", 0, "calibration: tokens of the text skipped first")
	calibTokens := fs.Int("calib-tokens", 4096, "calibration: tokens run through the model")
	calibWindow := fs.Int("calib-window", 0, "calibration: tokens per forward pass, BOS included (default: the model's context; keep it within the context the model was trained on)")
	typ := fs.String("type", "f32", "storage of the factors and kept values: f32, f16 or bf16")
	quiet := fs.Bool("quiet", false, "print only the summary")
	offline := fs.Bool("offline", false, "never touch the network: a Hub name for IN comes from the local cache only")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: vireo compress IN OUT [flags]\n\n"+
			"Rewrite the block matrices of IN — a GGUF file, a Hugging Face model directory, a Hub name (as vireo run\n"+
			"takes it: from the HF cache, else downloaded) or synthetic:<shape> —\n"+
			"as low-rank factor pairs (truncated randomized SVD) and/or 2:4 sparse matrices, into the GGUF file\n"+
			"OUT, which Vireo loads (with -weights int8 the factors and kept values become int8). OUT appears\n"+
			"only once complete.\n\nFlags:\n")
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
		return fmt.Errorf("compress needs IN and OUT, got %d path(s)", len(pos))
	}
	opt := compress.Options{
		Rank:        compress.RankRule{Fraction: *fraction, Budget: *budget, Energy: *energy},
		SVD:         compress.SVDOptions{Oversample: *over, PowerIters: *power, Seed: *seed},
		Whiten:      *whiten,
		AllowLarger: *larger,
		Calib:       compress.CalibOptions{Path: *calib, Skip: *calibSkip, Tokens: *calibTokens, Window: *calibWindow},
	}
	if *over <= 0 {
		return fmt.Errorf("compress: --oversample must be positive, got %d", *over)
	}
	if *calibTokens <= 0 {
		return fmt.Errorf("compress: --calib-tokens must be positive, got %d", *calibTokens)
	}
	switch *sparsity {
	case "":
	case "2:4":
		opt.Prune = compress.Prune(*prune)
	default:
		return fmt.Errorf("compress: --sparsity %q: only 2:4 is supported", *sparsity)
	}
	if *lowRank != "" {
		opt.LowRank = strings.Split(*lowRank, ",")
	}
	if *sparse != "" {
		opt.Sparse = strings.Split(*sparse, ",")
	}
	switch t, ok := ggml.ParseType(*typ); {
	case !ok || (t != ggml.F32 && t != ggml.F16 && t != ggml.BF16):
		return fmt.Errorf("compress: --type %q: f32, f16 or bf16", *typ)
	default:
		opt.Type = t
	}
	if !*quiet {
		opt.Progress = func(m compress.MatrixReport) {
			line := fmt.Sprintf("%-28s [%d][%d] %-8s", m.Name, m.Out, m.In, m.FormStr)
			if m.Rank > 0 {
				line += fmt.Sprintf(" rank %d, energy %.4f", m.Rank, m.Energy)
			}
			line += fmt.Sprintf(" %d/%d weights", m.Params, m.Out*m.In)
			if m.Note != "" {
				line += " (" + m.Note + ")"
			}
			fmt.Fprintln(stderr, line)
		}
	}
	start := time.Now()
	in, err := resolveModel(pos[0], *offline, consoleLogger(stderr, zapcore.WarnLevel), stderr)
	if err != nil {
		return err
	}
	rep, err := compress.Run(in, pos[1], opt)
	if err != nil {
		return err
	}
	if rep.DenseParams == 0 {
		return errors.New("compress: the model has no block matrices")
	}
	fmt.Fprintf(stdout, "wrote %s: %.2f MiB; block matrices hold %d of %d weights (%.1f%%); %s; %.1f s\n", pos[1], float64(rep.Bytes)/(1<<20),
		rep.StoredParam, rep.DenseParams, 100*float64(rep.StoredParam)/float64(rep.DenseParams), rep.Recipe, time.Since(start).Seconds())
	return nil
}
