//go:build cuda

package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/backend/cuda"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// runE2E: (1) stories260K greedy on the CPU and the GPU, tokens compared; (2) a
// synthetic Llama-3-8B (weights generated in-process, never shipped), int8 and 16-bit:
// TTFT of a prompt prefilled in one chunk and batch-1 decode tokens/s.
func runE2E(args []string) (any, error) {
	fs := flags("e2e")
	shape := fs.String("shape", "llama3-8b", "synthetic shape")
	prompt := fs.Int("prompt", 2048, "prompt tokens (one prefill chunk)")
	steps := fs.Int("steps", 64, "decode steps timed")
	weights := fs.String("weights", "int8,f16", "weight types: int8, f16")
	exe, _ := os.Executable()
	stories := fs.String("stories", filepath.Join(filepath.Dir(exe), "..", "models", "stories260K", "stories260K.bin"), "stories260K.bin, or another small model: a GGUF file, a llama2.c .bin, a Hugging Face model directory or Hub name ('' skips)")
	offline := fs.Bool("offline", false, "a Hub name comes from the local cache only (as HF_HUB_OFFLINE=1)")
	kernels := fs.String("kernels", "v2", "kernel set of the CUDA backend (attention, sampling, int8 matmuls): v2 (the default) or v1")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	ks, err := cuda.ParseKernels(*kernels)
	if err != nil {
		return nil, err
	}
	e2eKernels = ks
	res := map[string]any{"kernels": string(ks)}
	if *stories != "" {
		path, err := resolveModel(*stories, *offline)
		if err != nil {
			return nil, err
		}
		r, err := greedyCompare(path, 48)
		res["stories260K"] = r
		record("stories260K", r)
		if err != nil {
			res["stories260K_error"] = err.Error()
		}
	}
	var firstErr error
	for _, wt := range splitComma(*weights) {
		r, err := synthetic(*shape, wt, *prompt, *steps)
		if err != nil {
			r["error"] = err.Error()
			if firstErr == nil {
				firstErr = fmt.Errorf("%s %s: %w", *shape, wt, err)
			}
		}
		res[*shape+" "+wt] = r
		record(*shape+" "+wt, r)
	}
	return res, firstErr
}

// e2eKernels is the kernel set e2e's CUDA backends run (-kernels).
var e2eKernels cuda.Kernels

// newCUDA opens the CUDA backend for the engine measurements.
func newCUDA() (backend.Backend, func(), error) {
	dev, err := cuda.New(cuda.Options{Kernels: e2eKernels})
	if err != nil {
		return nil, nil, err
	}
	return dev, func() { dev.Close() }, nil
}

func argmax(x []float32) (int32, bool) {
	best, ok := 0, true
	for i, v := range x {
		if v != v || math.IsInf(float64(v), 0) {
			ok = false
		}
		if v > x[best] {
			best = i
		}
	}
	return int32(best), ok
}

// greedyCompare decodes n tokens greedily from "Once upon a time" on both backends with
// int8 weights and reports where they first differ.
func greedyCompare(path string, n int) (map[string]any, error) {
	res := map[string]any{"path": path, "tokens": n}
	run := func(be backend.Backend) ([]int32, error) {
		l, err := llm.Open(path, "", be, model.Options{Weights: model.WeightsInt8})
		if err != nil {
			return nil, err
		}
		defer l.Close()
		s, err := llm.NewSession(l.Model, 0, 512)
		if err != nil {
			return nil, err
		}
		ids := l.Tokenizer.Encode("Once upon a time", tokenizer.EncodeOptions{AddBOS: true})
		var out []int32
		for len(out) < n {
			feed := s.Feed // the prompt, then the tokens it generates
			if len(out) > 0 {
				feed = s.FeedGenerated
			}
			logits, err := feed(ids)
			if err != nil {
				return out, err
			}
			next, ok := argmax(logits)
			if !ok {
				return out, fmt.Errorf("non-finite logits after %d tokens", len(out))
			}
			out = append(out, next)
			ids = []int32{next}
		}
		return out, nil
	}
	want, err := run(cpu.New(cpu.Options{}))
	if err != nil {
		return res, fmt.Errorf("cpu: %w", err)
	}
	dev, err := cuda.New(cuda.Options{Kernels: e2eKernels})
	if err != nil {
		return res, err
	}
	defer dev.Close()
	got, err := run(dev)
	res["cpu"], res["cuda"] = want, got
	if err != nil {
		return res, fmt.Errorf("cuda: %w", err)
	}
	same := 0
	for same < len(want) && same < len(got) && want[same] == got[same] {
		same++
	}
	res["same_prefix"] = same
	// Teacher-forced: both backends read the CPU's sequence; positions whose CPU
	// top-1/top-2 margin exceeds 0.05 must agree exactly, and the overall argmax
	// agreement must reach 99% (the bar).
	seq := append(encodePrompt(path), want...)
	cpuRows, err := allLogits(path, cpu.New(cpu.Options{}), seq)
	if err != nil {
		return res, fmt.Errorf("cpu teacher-forced: %w", err)
	}
	devRows, err := allLogits(path, dev, seq)
	if err != nil {
		return res, fmt.Errorf("cuda teacher-forced: %w", err)
	}
	agree, wide, wideAgree := 0, 0, 0
	for i := range cpuRows {
		a, _ := argmax(cpuRows[i])
		b, _ := argmax(devRows[i])
		if a == b {
			agree++
		}
		if margin(cpuRows[i]) > 0.05 {
			wide++
			if a == b {
				wideAgree++
			}
		}
	}
	res["teacher_forced_positions"] = len(cpuRows)
	res["teacher_forced_agreement"] = float64(agree) / float64(len(cpuRows))
	res["margin_over_0.05_positions"], res["margin_over_0.05_agree"] = wide, wideAgree
	res["pass"] = wideAgree == wide && float64(agree) >= 0.99*float64(len(cpuRows))
	return res, nil
}

func encodePrompt(path string) []int32 {
	l, err := llm.Open(path, "", cpu.New(cpu.Options{}), model.Options{})
	if err != nil {
		return nil
	}
	defer l.Close()
	return l.Tokenizer.Encode("Once upon a time", tokenizer.EncodeOptions{AddBOS: true})
}

// allLogits runs seq teacher-forced in one pass and returns every position's logits.
func allLogits(path string, be backend.Backend, seq []int32) ([][]float32, error) {
	l, err := llm.Open(path, "", be, model.Options{Weights: model.WeightsInt8})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	ws, err := l.NewWorkspace(len(seq), len(seq))
	if err != nil {
		return nil, err
	}
	nb := (len(seq) + model.DefaultBlockSize - 1) / model.DefaultBlockSize
	kv, err := l.NewKVCache(nb, model.DefaultBlockSize)
	if err != nil {
		return nil, err
	}
	blocks := make([]int32, nb)
	for i := range blocks {
		blocks[i] = int32(i)
	}
	flat, err := l.Forward(ws, kv, []model.Seq{{Tokens: seq, Blocks: blocks, Logits: model.LogitsAll}})
	if err != nil {
		return nil, err
	}
	V := l.Config.VocabSize
	rows := make([][]float32, len(seq))
	for i := range rows {
		rows[i] = append([]float32(nil), flat[i*V:(i+1)*V]...)
	}
	return rows, nil
}

// margin is the gap between the two largest values of row.
func margin(row []float32) float32 {
	a, b := float32(math.Inf(-1)), float32(math.Inf(-1))
	for _, v := range row {
		if v > a {
			a, b = v, a
		} else if v > b {
			b = v
		}
	}
	return a - b
}

func synthetic(shape, wt string, promptLen, steps int) (map[string]any, error) {
	res := map[string]any{"weights": wt, "prompt": promptLen, "steps": steps}
	dev, err := cuda.New(cuda.Options{Kernels: e2eKernels})
	if err != nil {
		return res, err
	}
	defer dev.Close()
	opt := model.Options{Weights: model.WeightsInt8}
	if wt == "f16" {
		opt.Weights = model.WeightsF32 // stored as 16-bit on the device
	}
	t0 := time.Now()
	m, err := model.Synthetic(shape, dev, opt)
	if err != nil {
		return res, err
	}
	res["load_s"] = time.Since(t0).Seconds()
	res["weight_bytes"] = m.WeightBytes
	res["bytes_per_token"] = deviceBytesPerToken(m.Config, wt)
	record("load", res)
	s, err := llm.NewSession(m, promptLen+steps+16, promptLen)
	if err != nil {
		return res, err
	}
	prompt := make([]int32, promptLen)
	for i := range prompt {
		prompt[i] = int32(3 + (i*7919)%(m.Config.VocabSize-3))
	}
	// Warm up (module load, first launches), then time a fresh prefill.
	if _, err := s.Feed(prompt[:16]); err != nil {
		return res, err
	}
	s.Reset()
	t0 = time.Now()
	logits, err := s.Feed(prompt)
	if err != nil {
		return res, err
	}
	res["ttft_ms"] = float64(time.Since(t0).Microseconds()) / 1e3
	record("ttft", res["ttft_ms"])
	next, ok := argmax(logits)
	if !ok {
		return res, fmt.Errorf("non-finite logits after the prompt")
	}
	t0 = time.Now()
	for i := 0; i < steps; i++ {
		if logits, err = s.FeedGenerated([]int32{next}); err != nil {
			return res, err
		}
		if next, ok = argmax(logits); !ok {
			return res, fmt.Errorf("non-finite logits at decode step %d", i)
		}
	}
	el := time.Since(t0).Seconds()
	res["decode_tokens_per_s"] = float64(steps) / el
	wb := float64(m.WeightBytes)
	if wt == "f16" {
		wb /= 2 // WeightBytes counts the host's f32; the device holds 16-bit
	}
	res["decode_weight_gbs"] = wb * float64(steps) / el / 1e9
	return res, nil
}

// deviceBytesPerToken is what one batch-1 decode step must read at least on the CUDA
// backend: every layer's weights (int8 with an f32 scale per row, or 16-bit) and the
// 16-bit classifier (the embedding row and the KV cache are small beside them). The
// roofline is the copy bandwidth divided by this.
func deviceBytesPerToken(c model.Config, wt string) float64 {
	D, F, hd := float64(c.Dim), float64(c.HiddenDim), float64(c.HeadDim)
	q, kv := float64(c.Heads)*hd, float64(c.KVHeads)*hd
	rows := q + 2*kv + D + 2*F + D // output rows of wq, wk, wv, wo, gate, up, down
	params := D*(q+2*kv+F+F) + q*D + F*D
	per := params + 4*rows // int8 + scales
	if wt == "f16" {
		per = 2 * params
	}
	return float64(c.Layers)*per + 2*float64(c.VocabSize)*D
}
