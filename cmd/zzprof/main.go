package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
)

func main() {
	path := flag.String("model", "", "")
	n := flag.Int("n", 32, "")
	prof := flag.String("prof", "", "")
	flag.Parse()
	m, err := llm.Open(*path, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsInt8})
	if err != nil {
		panic(err)
	}
	s, _ := llm.NewSession(m.Model, 64+*n, 512)
	prompt := make([]int32, 64)
	for i := range prompt {
		prompt[i] = int32(100 + i)
	}
	t0 := time.Now()
	s.Feed(prompt)
	fmt.Println("prefill", time.Since(t0))
	if *prof != "" {
		f, _ := os.Create(*prof)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	t1 := time.Now()
	for i := 0; i < *n; i++ {
		s.Feed([]int32{int32(200 + i)})
	}
	fmt.Println("decode", time.Since(t1)/time.Duration(*n), "per token; weight MiB", m.WeightBytes>>20)
}
