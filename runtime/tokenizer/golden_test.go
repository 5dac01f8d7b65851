package tokenizer

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStories260KGolden(t *testing.T) {
	v := loadVocab(t, 512, "models", "stories260K", "tok512.bin")
	tok, err := New(v)
	require.NoError(t, err)
	var g struct {
		Cases []struct {
			Prompt     string  `json:"prompt"`
			PromptIDs  []int32 `json:"prompt_ids"`
			GreedyIDs  []int32 `json:"greedy_ids"`
			GreedyText string  `json:"greedy_text"`
		} `json:"cases"`
	}
	readJSON(t, &g, "golden", "stories260K.json")
	require.NotEmpty(t, g.Cases)
	for _, c := range g.Cases {
		t.Run(fmt.Sprintf("%q", c.Prompt), func(t *testing.T) {
			assert.Equal(t, c.PromptIDs, tok.Encode(c.Prompt, withBOS))
			assert.Equal(t, c.Prompt, tok.Decode(c.PromptIDs), "BOS then prompt: the dummy space is dropped")

			// greedy_text is the raw pieces of greedy_ids joined: the continuation keeps
			// its leading space (it follows the prompt, not BOS), and byte pieces stay
			// spelled "<0x0A>" (what llama2.c printed before its decode learned bytes).
			var raw strings.Builder
			for _, id := range c.GreedyIDs {
				raw.WriteString(v.Tokens[id])
			}
			require.Equal(t, c.GreedyText, raw.String())
			want := strings.ReplaceAll(c.GreedyText, "<0x0A>", "\n")
			assert.Equal(t, want, tok.Decode(c.GreedyIDs))

			all := append(append([]int32{}, c.PromptIDs...), c.GreedyIDs...)
			if c.Prompt == "" {
				want = strings.TrimPrefix(want, " ") // the continuation directly follows BOS
			}
			assert.Equal(t, c.Prompt+want, tok.Decode(all))
		})
	}
}

func TestLlama2Golden(t *testing.T) {
	tok := llama2Tok(t)
	require.Equal(t, 32000, tok.VocabSize())
	var g struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		} `json:"cases"`
	}
	readJSON(t, &g, "golden", "llama2-tokenizer.json")
	require.NotEmpty(t, g.Cases)
	for _, c := range g.Cases {
		t.Run(c.Text, func(t *testing.T) {
			assert.Equal(t, c.IDs, tok.Encode(c.Text, EncodeOptions{}))
			assert.Equal(t, " "+c.Text, tok.Decode(c.IDs))
			assert.Equal(t, append([]int32{1}, c.IDs...), tok.Encode(c.Text, withBOS))
		})
	}
}

// toSentencePieceForm rewrites a llama2.c vocabulary the way GGUF stores it: "▁" for
// space and explicit token types.
func toSentencePieceForm(v *Vocab) *Vocab {
	g := *v
	g.Tokens = make([]string, len(v.Tokens))
	g.Types = make([]TokenType, len(v.Tokens))
	for i, p := range v.Tokens {
		g.Tokens[i] = strings.ReplaceAll(p, " ", "▁")
		g.Types[i] = TypeNormal
		if _, ok := parseBytePiece(p); ok {
			g.Types[i] = TypeByte
		}
	}
	g.Types[0], g.Types[1], g.Types[2] = TypeUnknown, TypeControl, TypeControl
	return &g
}

func TestSpaceConventionsAgree(t *testing.T) {
	v := loadVocab(t, 32000, "models", "llama2-tokenizer", "tokenizer.bin")
	plain, err := New(v)
	require.NoError(t, err)
	g := toSentencePieceForm(v)
	require.Contains(t, g.Tokens, "▁the")
	marker, err := New(g)
	require.NoError(t, err)
	for _, s := range roundTripStrings {
		ids := plain.Encode(s, withBOS)
		require.Equal(t, ids, marker.Encode(s, withBOS), "%q", s)
		require.Equal(t, plain.Decode(ids), marker.Decode(ids), "%q", s)
	}
	for id := int32(0); int(id) < plain.VocabSize(); id++ {
		require.Equal(t, plain.Piece(id), marker.Piece(id), "id %d", id)
	}
	require.Equal(t, " the", marker.Piece(278))
}

var roundTripStrings = []string{
	"",
	"a",
	" ",
	"  ",
	"\n",
	"Hello world",
	" leading space",
	"trailing space ",
	"tabs\tand\nnew\r\nlines\n\n",
	"     many     spaces     ",
	"naïve café — 東京 🚀",
	"emoji: 👍🏽 👨‍👩‍👧‍👦 🇯🇵 🤖",
	"Ελληνικά, русский, العربية, עברית, हिन्दी, 한국어",
	"math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ",
	"<s> not special </s> <unk> <0x0A>",
	"\x00\x01\x7f control bytes",
	"U+FFFD: \uFFFD and U+2581: ▁ marker",
	"def f(x):\n    return x**2  # square",
	strings.Repeat("The quick brown fox jumps over the lazy dog. ", 50),
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		tok  func(testing.TB) *Tokenizer
	}{{"llama2", llama2Tok}, {"stories260K", storiesTok}} {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.tok(t)
			for _, s := range roundTripStrings {
				assert.Equal(t, s, tok.Decode(tok.Encode(s, withBOS)), "with BOS: %q", s)
				want := s
				if s != "" {
					want = " " + s // the dummy prefix stays without BOS to drop it
				}
				assert.Equal(t, want, tok.Decode(tok.Encode(s, EncodeOptions{})), "no BOS: %q", s)
			}
		})
	}
}

func TestEncodeEdgeCases(t *testing.T) {
	tok := llama2Tok(t)
	assert.Empty(t, tok.Encode("", EncodeOptions{}))
	assert.Equal(t, []int32{1}, tok.Encode("", withBOS))
	assert.Equal(t, []int32{259}, tok.Encode(" ", EncodeOptions{}), "dummy prefix and the space merge")
	// Invalid UTF-8 bytes go through byte fallback (id = byte+3 in this vocab).
	assert.Equal(t, []int32{29871, 0xff + 3, 0xfe + 3}, tok.Encode("\xff\xfe", EncodeOptions{}))
	assert.Equal(t, " \xff\xfe", tok.Decode(tok.Encode("\xff\xfe", EncodeOptions{})))
	// A character missing from the vocabulary: its UTF-8 bytes.
	assert.Equal(t, []int32{29871, 0xf0 + 3, 0x9f + 3, 0x9a + 3, 0x80 + 3}, tok.Encode("🚀", EncodeOptions{}))
}

func TestParseSpecial(t *testing.T) {
	tok := llama2Tok(t)
	plain := tok.Encode("Hi</s>", EncodeOptions{})
	assert.NotContains(t, plain, tok.EOS(), "special text is ordinary text by default")
	assert.Equal(t, " Hi</s>", tok.Decode(plain))

	assert.Equal(t, append(tok.Encode("Hi", EncodeOptions{}), 2), tok.Encode("Hi</s>", EncodeOptions{ParseSpecial: true}))
	assert.Equal(t, tok.Encode("Hello", withBOS), tok.Encode("<s>Hello", EncodeOptions{ParseSpecial: true}))
	got := tok.Encode("a</s><s>b<unk>", EncodeOptions{ParseSpecial: true})
	want := append(tok.Encode("a", EncodeOptions{}), 2, 1)
	want = append(want, 29890, 0) // "b" without a dummy prefix: only the first text gets one
	assert.Equal(t, want, got)
	assert.Equal(t, []int32{1, 2}, tok.Encode("</s>", EncodeOptions{AddBOS: true, ParseSpecial: true}))
}

func TestDecodeAndAccessors(t *testing.T) {
	tok := llama2Tok(t)
	assert.Equal(t, int32(1), tok.BOS())
	assert.Equal(t, int32(2), tok.EOS())
	assert.Equal(t, int32(0), tok.UNK())
	assert.True(t, tok.IsControl(1))
	assert.True(t, tok.IsControl(2))
	assert.False(t, tok.IsControl(0))
	assert.False(t, tok.IsControl(278))
	assert.False(t, tok.IsControl(-1))
	assert.Equal(t, TypeByte, tok.Type(3+'\n'))
	assert.True(t, tok.DefaultOptions().AddBOS)

	assert.Equal(t, "", tok.Piece(1))
	assert.Equal(t, "", tok.Piece(2))
	assert.Equal(t, "\n", tok.Piece(3+'\n'))
	assert.Equal(t, " the", tok.Piece(278))
	for _, id := range []int32{-1, 32000, math.MaxInt32} {
		assert.False(t, tok.Valid(id))
		assert.Equal(t, "", tok.Piece(id))
	}
	assert.True(t, tok.Valid(0) && tok.Valid(31999))
	assert.Equal(t, "the", tok.Decode([]int32{1, 278}), "one space dropped after BOS")
	assert.Equal(t, " the the", tok.Decode([]int32{278, 278}))
	assert.Equal(t, " the", tok.Decode([]int32{1, 259, 1552}), "only one of two spaces dropped") // "  " + "the"
	assert.Equal(t, "the", tok.Decode([]int32{-5, 1, 278, 2, 99999}))
}
