package llm

import (
	"fmt"
	"github.com/vireo-ai/vireo/runtime/model"
	"testing"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// benchModels are the models the README reports: the real stories260K and the
// TinyLlama-1.1B shape with synthetic weights.
var benchModels = []string{"stories260K", "synthetic:tinyllama-1.1b"}

func benchOpen(b *testing.B, name string, w model.WeightType) *Loaded {
	path := name
	if !model.IsSynthetic(name) {
		path = shared.Path(b, "models", "stories260K", "stories260K.bin")
	}
	m, err := Open(path, "", cpu.New(cpu.Options{}), model.Options{Weights: w})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecode measures single-sequence decode: one token per forward pass, the
// context growing from 16 to 16+steps tokens, greedy.
func BenchmarkDecode(b *testing.B) {
	for _, name := range benchModels {
		for _, w := range []model.WeightType{model.WeightsF32, model.WeightsInt8} {
			b.Run(fmt.Sprintf("%s/%s", name, w), func(b *testing.B) {
				m := benchOpen(b, name, w)
				steps := 256
				if model.IsSynthetic(name) {
					steps = 16
				}
				s, err := NewSession(m.Model, 16+steps+1, 64)
				if err != nil {
					b.Fatal(err)
				}
				prompt := make([]int32, 16)
				for i := range prompt {
					prompt[i] = int32(1 + i*7%(m.Config.VocabSize-1))
				}
				b.ResetTimer()
				tokens := 0
				for i := 0; i < b.N; i++ {
					s.Reset()
					logits, err := s.Feed(prompt)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					for k := 0; k < steps; k++ {
						if logits, err = s.Feed([]int32{int32(argmax(logits))}); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					tokens += steps
				}
				b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
				b.ReportMetric(float64(m.WeightBytes)*float64(tokens)/b.Elapsed().Seconds()/1e9, "weightGB/s")
			})
		}
	}
}

// BenchmarkPrefill measures prompt processing: one pass over a 128-token prompt.
func BenchmarkPrefill(b *testing.B) {
	for _, name := range benchModels {
		for _, w := range []model.WeightType{model.WeightsF32, model.WeightsInt8} {
			b.Run(fmt.Sprintf("%s/%s", name, w), func(b *testing.B) {
				m := benchOpen(b, name, w)
				const n = 128
				s, err := NewSession(m.Model, n, n)
				if err != nil {
					b.Fatal(err)
				}
				prompt := make([]int32, n)
				for i := range prompt {
					prompt[i] = int32(1 + i*7%(m.Config.VocabSize-1))
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					s.Reset()
					if _, err := s.Feed(prompt); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
