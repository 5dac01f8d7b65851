package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// llama2cEncode is a transliteration of llama2.c's encode (run.c): lookups over every
// piece whatever its type, and a full rescan for the best pair on every merge. It is
// the O(n²) reference the queue-based Encode must agree with.
func llama2cEncode(v *Vocab, text string) []int32 {
	lookup := make(map[string]int32, len(v.Tokens))
	for i, p := range v.Tokens {
		if _, ok := lookup[p]; !ok {
			lookup[p] = int32(i)
		}
	}
	toks := []int32{}
	if text != "" {
		toks = append(toks, lookup[" "])
	}
	// llama2.c groups a byte with up to three following continuation bytes; for valid
	// UTF-8 that is one character.
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := lookup[text[i:j]]; ok {
			toks = append(toks, id)
		} else {
			for k := i; k < j; k++ {
				toks = append(toks, int32(text[k])+3)
			}
		}
		i = j
	}
	for {
		best, bestID, bestIdx := float32(-1e10), int32(-1), -1
		for i := 0; i+1 < len(toks); i++ {
			id, ok := lookup[v.Tokens[toks[i]]+v.Tokens[toks[i+1]]]
			if ok && v.Scores[id] > best {
				best, bestID, bestIdx = v.Scores[id], id, i
			}
		}
		if bestIdx < 0 {
			return toks
		}
		toks[bestIdx] = bestID
		toks = append(toks[:bestIdx+1], toks[bestIdx+2:]...)
	}
}

// randomText mixes words, whitespace runs, punctuation and characters that need byte
// fallback, so that ties and long merges both occur.
func randomText(r *rand.Rand, n int) string {
	parts := []string{"the", "The", " ", "  ", "\n", "\t", "ing", "tion", "a", "e", "x", "zz", "qu",
		"Lily", "once", "upon", ",", ".", "!", "<s>", "</s>", "<0x0A>", "é", "ï", "—", "東", "京",
		"🚀", "👍🏽", "∑", "\\n", "0", "42", "--", "==", "ab", "ba", "aaa"}
	var b strings.Builder
	for range n {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

func TestEncodeMatchesLlama2CReference(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		elems []string
	}{
		{"llama2", 32000, []string{"models", "llama2-tokenizer", "tokenizer.bin"}},
		{"stories260K", 512, []string{"models", "stories260K", "tok512.bin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := loadVocab(t, tc.size, tc.elems...)
			tok, err := New(v)
			require.NoError(t, err)
			// The reference sees the file's own spelling of the specials.
			raw := *v
			raw.Tokens = append([]string(nil), v.Tokens...)
			raw.Tokens[1], raw.Tokens[2] = "\n<s>\n", "\n</s>\n"
			r := rand.New(rand.NewPCG(1, 2))
			for i := range 300 {
				s := randomText(r, 1+r.IntN(60))
				require.Equal(t, llama2cEncode(&raw, s), tok.Encode(s, EncodeOptions{}), fmt.Sprintf("case %d %q", i, s))
			}
			for _, s := range roundTripStrings {
				require.Equal(t, llama2cEncode(&raw, s), tok.Encode(s, EncodeOptions{}), "%q", s)
			}
		})
	}
}

func TestEncodeLargeInputIsFast(t *testing.T) {
	tok := llama2Tok(t)
	r := rand.New(rand.NewPCG(3, 4))
	s := randomText(r, 40000)[:100_000]
	s = strings.ToValidUTF8(s, "")
	ids := tok.Encode(s, withBOS) // an O(n²) encoder takes minutes here
	require.Equal(t, s, tok.Decode(ids))
}

// TestWordSplitIsExact checks the chunked encoder against one queue over the whole text,
// and that a vocabulary with a piece spanning a word boundary turns chunking off.
func TestWordSplitIsExact(t *testing.T) {
	tok := llama2Tok(t)
	require.True(t, tok.wordSplit)
	whole := *tok
	whole.wordSplit = false
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		s := randomText(r, 1+r.IntN(200))
		require.Equal(t, whole.Encode(s, withBOS), tok.Encode(s, withBOS), "case %d %q", i, s)
	}
	text, err := os.ReadFile(shared.Path(t, "eval", "tinystories-valid-part.txt"))
	require.NoError(t, err)
	require.Equal(t, whole.Encode(string(text), withBOS), tok.Encode(string(text), withBOS))

	v := &Vocab{Model: "llama", Tokens: []string{"<unk>", "<s>", "</s>", " ", "a", " a", "a a", " a a"},
		Scores: []float32{0, 0, 0, -1, -1, -3, -2, -1}, UNK: 0, BOS: 1, EOS: 2, AddSpacePrefix: true}
	multi, err := New(v)
	require.NoError(t, err)
	require.False(t, multi.wordSplit)
	require.Equal(t, []int32{7}, multi.Encode("a a", EncodeOptions{}))
	require.Equal(t, llama2cEncode(v, "a a a"), multi.Encode("a a a", EncodeOptions{}))
}
