package tokenizer

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// loadVocab parses a llama2.c tokenizer from the shared data, skipping when it is absent.
func loadVocab(tb testing.TB, vocabSize int, elem ...string) *Vocab {
	tb.Helper()
	data, err := os.ReadFile(shared.Path(tb, elem...))
	require.NoError(tb, err)
	v, err := ParseLlama2C(data, vocabSize)
	require.NoError(tb, err)
	return v
}

func loadTok(tb testing.TB, vocabSize int, elem ...string) *Tokenizer {
	tb.Helper()
	tok, err := New(loadVocab(tb, vocabSize, elem...))
	require.NoError(tb, err)
	return tok
}

func storiesTok(tb testing.TB) *Tokenizer {
	return loadTok(tb, 512, "models", "stories260K", "tok512.bin")
}

func llama2Tok(tb testing.TB) *Tokenizer {
	return loadTok(tb, 32000, "models", "llama2-tokenizer", "tokenizer.bin")
}

func readJSON(tb testing.TB, v any, elem ...string) {
	tb.Helper()
	data, err := os.ReadFile(shared.Path(tb, elem...))
	require.NoError(tb, err)
	require.NoError(tb, json.Unmarshal(data, v))
}

// withBOS is how every prompt is encoded for generation.
var withBOS = EncodeOptions{AddBOS: true}
