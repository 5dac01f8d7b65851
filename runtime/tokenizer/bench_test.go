package tokenizer

import (
	"os"
	"testing"

	"github.com/vireo-ai/vireo/internal/shared"
)

func BenchmarkEncode(b *testing.B) {
	data, err := os.ReadFile(shared.Path(b, "eval", "tinystories-valid-part.txt"))
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	for _, tc := range []struct {
		name string
		tok  func(testing.TB) *Tokenizer
	}{{"llama2-32k", llama2Tok}, {"stories-512", storiesTok}} {
		b.Run(tc.name, func(b *testing.B) {
			tok := tc.tok(b)
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n = len(tok.Encode(text, withBOS))
			}
			b.ReportMetric(float64(len(text))/float64(n), "bytes/token")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	data, err := os.ReadFile(shared.Path(b, "eval", "tinystories-valid-part.txt"))
	if err != nil {
		b.Fatal(err)
	}
	tok := llama2Tok(b)
	ids := tok.Encode(string(data), withBOS)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		tok.Decode(ids)
	}
}
