// Command embed shows a Go service using Vireo as a library: load a model, start an
// engine, stream several completions concurrently.
//
//	go run ./examples/embed -model ../shared/models/stories260K/stories260K.bin
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func main() {
	path := flag.String("model", "synthetic:tiny", "model path or synthetic:<shape>")
	maxTokens := flag.Int("max-tokens", 24, "tokens per completion")
	flag.Parse()
	if err := run(*path, *maxTokens); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run(path string, maxTokens int) error {
	m, err := llm.Open(path, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsAuto})
	if err != nil {
		return err
	}
	defer m.Close()
	eng, err := engine.New(m.Model, m.Tokenizer, engine.Options{EnablePrefixCache: true})
	if err != nil {
		return err
	}
	defer eng.Close()

	prompts := []string{"Once upon a time", "The cat sat on the", "Lily and Ben were playing"}
	texts := make([]string, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		prompt := m.Tokenizer.Encode(p, m.Tokenizer.DefaultOptions())
		seed := uint64(i)
		events, err := eng.Submit(context.Background(), &engine.Request{
			Prompt: prompt, MaxTokens: maxTokens, Seed: &seed,
			Sampling: sampling.Params{Temperature: 0.8, TopP: 0.95, RepetitionPenalty: 1},
		})
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range events {
				texts[i] += ev.Text
				if ev.Err != nil {
					texts[i] += " [error: " + ev.Err.Error() + "]"
				}
			}
		}()
	}
	wg.Wait()
	for i, p := range prompts {
		fmt.Printf("%q -> %q\n", p, texts[i])
	}
	return nil
}
