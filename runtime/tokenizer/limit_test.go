package tokenizer

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// limitTokenizers are the vocabularies of every kind the bounds are checked on.
func limitTokenizers(t *testing.T) map[string]*Tokenizer {
	toks := map[string]*Tokenizer{"stories260K": storiesTok(t), "llama2": llama2Tok(t)}
	tiny, err := FromHFTokenizerJSON(tinyByteLevelJSON(nil), nil)
	require.NoError(t, err)
	toks["tiny byte-level"] = tiny
	if data, err := os.ReadFile(filepath.Join(nodeDir, "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer.json")); err == nil {
		l3, err := FromHFTokenizerJSON(data, nil)
		require.NoError(t, err)
		toks["llama3"] = l3
	} else {
		t.Log("Llama 3 tokenizer.json not installed (bash scripts/install-test-deps.sh): checked on the others only")
	}
	return toks
}

// limitText mixes words, runs of spaces, digits, punctuation, multi-byte characters,
// invalid UTF-8 and special-token text.
func limitText(rng *rand.Rand, n int) string {
	parts := []string{"the", " the", "Once", " upon", " a", " time", "  ", "\n\n", "123456", "!!", "é", "🚀", "日本語",
		"\xff\xfe", "<s>", "</s>", "<|eot_id|>", "<|begin_of_text|>", "[sw]", " hello", "=====", strings.Repeat("a", 40)}
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	return b.String()
}

// TestMaxTokenBytesIsALowerBound: no text encodes to fewer than
// ceil(bytes / MaxTokenBytes) ids, on every kind of vocabulary, with and without
// special-token parsing.
func TestMaxTokenBytesIsALowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 1))
	for name, tok := range limitTokenizers(t) {
		for _, opt := range []EncodeOptions{{}, {AddBOS: true}, {ParseSpecial: true}} {
			mb := tok.MaxTokenBytes(opt)
			if mb == 0 {
				require.True(t, opt.ParseSpecial, "%s: only special tokens that strip whitespace leave no bound", name)
				continue
			}
			for i := 0; i < 300; i++ {
				text := limitText(rng, 1+rng.IntN(400))
				ids := tok.Encode(text, opt)
				require.GreaterOrEqual(t, len(ids), (len(text)+mb-1)/mb, "%s %+v: %q", name, opt, text)
			}
			// The worst case for the bound: the longest piece repeated.
			longest := ""
			for id := range tok.VocabSize() {
				if tok.Type(int32(id)) == TypeNormal && len(tok.pieces[id]) > len(longest) {
					longest = tok.pieces[id]
				}
			}
			text := strings.Repeat(longest, 50)
			require.GreaterOrEqual(t, len(tok.Encode(text, opt)), (len(text)+mb-1)/mb, "%s: %q", name, longest)
		}
	}
	// The tiny vocabulary's "[sw]" strips the whitespace around it: no bound with
	// special parsing.
	tiny, err := FromHFTokenizerJSON(tinyByteLevelJSON(nil), nil)
	require.NoError(t, err)
	require.Zero(t, tiny.MaxTokenBytes(EncodeOptions{ParseSpecial: true}))
	require.Equal(t, len("<|begin_of_text|>"), max(tiny.MaxTokenBytes(EncodeOptions{}), len("<|begin_of_text|>")))
}

// TestEncodeLimit: below the limit EncodeLimit is Encode; past it, it says so and what
// it returns is a prefix of Encode's ids.
func TestEncodeLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 2))
	for name, tok := range limitTokenizers(t) {
		for _, opt := range []EncodeOptions{{AddBOS: true}, {ParseSpecial: true}} {
			for i := 0; i < 200; i++ {
				text := limitText(rng, 1+rng.IntN(300))
				full := tok.Encode(text, opt)
				limit := 1 + rng.IntN(len(full)+20)
				ids, ok := tok.EncodeLimit(text, opt, limit)
				if len(full) <= limit {
					require.True(t, ok, "%s: %q limit %d", name, text, limit)
					require.Equal(t, full, ids)
					continue
				}
				require.False(t, ok, "%s: %q: %d ids, limit %d", name, text, len(full), limit)
				require.Greater(t, len(ids), limit)
				require.Equal(t, full[:len(ids)], ids, "%s: a prefix", name)
			}
		}
	}
}

// TestEncodeLimitStopsEarly: refusing a 1 MiB text at a 2,048-token limit allocates
// in proportion to the limit, not to the text (Encode allocates tens of MB for it).
func TestEncodeLimitStopsEarly(t *testing.T) {
	for name, tok := range limitTokenizers(t) {
		text := strings.Repeat("Once upon a time there was a little girl. ", 1<<20/42)
		opt := tok.DefaultOptions()
		allocs := func(f func()) uint64 {
			var a, b runtime.MemStats
			runtime.ReadMemStats(&a)
			f()
			runtime.ReadMemStats(&b)
			return b.TotalAlloc - a.TotalAlloc
		}
		var ok bool
		limited := allocs(func() { _, ok = tok.EncodeLimit(text, opt, 2048) })
		require.False(t, ok, name)
		whole := allocs(func() { tok.Encode(text, opt) })
		t.Logf("%s: EncodeLimit allocated %d KiB, Encode %d KiB", name, limited>>10, whole>>10)
		require.Less(t, limited, uint64(1<<20), "%s: EncodeLimit allocated %d bytes", name, limited)
	}
}
