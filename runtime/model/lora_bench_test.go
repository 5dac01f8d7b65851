package model_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
	"github.com/vireo-ai/vireo/runtime/model"
)

// BenchmarkLoRADecodeStep is the benchmark: one decode step of a batch of 16
// sequences (128 tokens of context each) with 0, 1 and 4 distinct rank-16 adapters on
// all seven targets (with 4, the rows go round-robin over them; with 1, every row
// uses it). The three arms take turns within each iteration, so load on the machine
// hits them alike; it reports each arm's ms per step and the ratios to the base.
//
//	go test ./runtime/model -run '^$' -bench LoRADecodeStep -benchtime 20x
//
// VIREO_LORA_BENCH_SHAPE picks the synthetic shape (default tinyllama-1.1b, int8
// weights; "tiny" for a quick run).
func BenchmarkLoRADecodeStep(b *testing.B) {
	shape := os.Getenv("VIREO_LORA_BENCH_SHAPE")
	if shape == "" {
		shape = "tinyllama-1.1b"
	}
	const batch, ctx, rank, adapters = 16, 128, 16, 4
	l, err := llm.Open("synthetic:"+shape, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsInt8})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	m := l.Model
	c := m.Config
	set, err := m.NewLoRASet(adapters, rank)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < adapters; i++ {
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		if _, err := loratest.WritePEFT(dir, &c, loratest.Options{Rank: rank, Alpha: 32, Seed: uint64(i + 1)}, nil); err != nil {
			b.Fatal(err)
		}
		a, err := lora.Load(dir, &c, rank)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.LoadLoRA(set, i, a); err != nil {
			b.Fatal(err)
		}
	}
	blockSize := 16
	perSeq := (ctx + 1 + blockSize - 1) / blockSize
	kv, err := m.NewKVCache(batch*perSeq, blockSize)
	if err != nil {
		b.Fatal(err)
	}
	ws, err := m.NewWorkspace(ctx, batch)
	if err != nil {
		b.Fatal(err)
	}
	ws.SetLoRA(set)
	seqs := make([]model.Seq, batch)
	for i := range seqs {
		blocks := make([]int32, perSeq)
		for j := range blocks {
			blocks[j] = int32(i*perSeq + j)
		}
		prompt := make([]int32, ctx)
		for j := range prompt {
			prompt[j] = int32(3 + (i*131+j*31)%(c.VocabSize-3))
		}
		// The context, once, through the base model (its KV does not depend on the arm
		// enough to matter for timing).
		if _, err := m.Forward(ws, kv, []model.Seq{{Tokens: prompt, Blocks: blocks, Logits: model.LogitsLast}}); err != nil {
			b.Fatal(err)
		}
		seqs[i] = model.Seq{Tokens: []int32{int32(5 + i)}, Pos: ctx, Blocks: blocks, Logits: model.LogitsLast}
	}
	arms := []struct {
		name string
		slot func(i int) int
	}{
		{"base", func(int) int { return 0 }},
		{"1-adapter", func(int) int { return 1 }},
		{"4-adapters", func(i int) int { return 1 + i%adapters }},
	}
	step := func(arm int) time.Duration {
		for i := range seqs {
			seqs[i].LoRA = arms[arm].slot(i)
		}
		t := time.Now()
		if _, err := m.Forward(ws, kv, seqs); err != nil {
			b.Fatal(err)
		}
		return time.Since(t)
	}
	for a := range arms { // warm up
		step(a)
	}
	times := make([][]time.Duration, len(arms))
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for k := range arms { // rotate which arm goes first
			a := (n + k) % len(arms)
			times[a] = append(times[a], step(a))
		}
	}
	b.StopTimer()
	med := make([]float64, len(arms))
	var parts []string
	for a, arm := range arms {
		slices.Sort(times[a])
		med[a] = float64(times[a][len(times[a])/2]) / 1e6
		b.ReportMetric(med[a], "ms/step-"+arm.name)
		parts = append(parts, fmt.Sprintf("%s %.2f ms", arm.name, med[a]))
	}
	b.ReportMetric(med[1]/med[0], "x-1-adapter")
	b.ReportMetric(med[2]/med[0], "x-4-adapters")
	b.Logf("%s, batch %d, ctx %d, rank %d: median %s", shape, batch, ctx, rank, strings.Join(parts, ", "))
}
