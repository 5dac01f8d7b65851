package tokenizer

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blob builds a llama2.c tokenizer.bin in memory.
type blob []byte

func newBlob(maxLen int32) blob {
	return binary.LittleEndian.AppendUint32(nil, uint32(maxLen))
}

func (b blob) token(score float32, piece string) blob {
	return b.tokenLen(score, int32(len(piece)), piece)
}

// tokenLen writes a length that need not match the piece, for corrupt files.
func (b blob) tokenLen(score float32, n int32, piece string) blob {
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(score))
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, piece...)
}

// tinyBlob is a valid 8-token vocabulary in llama2.c's layout.
func tinyBlob() blob {
	return newBlob(6).token(0, "<unk>").token(0, "\n<s>\n").token(0, "\n</s>\n").
		token(0, "<0x0A>").token(-1, " ").token(-2, "a").token(-3, "b").token(-0.5, " a")
}

func TestParseLlama2CTiny(t *testing.T) {
	v, err := ParseLlama2C(tinyBlob(), 8)
	require.NoError(t, err)
	assert.Equal(t, []string{"<unk>", "<s>", "</s>", "<0x0A>", " ", "a", "b", " a"}, v.Tokens)
	assert.Equal(t, []float32{0, 0, 0, 0, -1, -2, -3, -0.5}, v.Scores)
	assert.Equal(t, "llama", v.Model)
	assert.Equal(t, [3]int32{0, 1, 2}, [3]int32{v.UNK, v.BOS, v.EOS})
	assert.True(t, v.AddBOS)
	assert.True(t, v.AddSpacePrefix)

	tok, err := New(v)
	require.NoError(t, err)
	assert.Equal(t, []int32{1, 7, 6, 3}, tok.Encode("ab\n", withBOS))
	assert.Equal(t, "ab\n", tok.Decode([]int32{1, 7, 6, 3}))
	// No <0x63> piece and no UNK fallback needed: "c" has no byte piece, so UNK.
	assert.Equal(t, []int32{4, 0}, tok.Encode("c", EncodeOptions{}))
}

func TestParseLlama2CErrors(t *testing.T) {
	good := tinyBlob()
	for _, tc := range []struct {
		name      string
		data      []byte
		vocabSize int
		want      string
	}{
		{"empty", nil, 8, "truncated header"},
		{"short header", good[:3], 8, "truncated header"},
		{"truncated token header", good[:len(good)-4], 8, "truncated"},
		{"truncated piece", good[:len(good)-1], 8, "runs past the end"},
		{"negative length", newBlob(6).token(0, "<unk>").tokenLen(0, -1, "").token(0, "x"), 3, "negative length -1"},
		{"huge length", newBlob(6).token(0, "<unk>").tokenLen(0, math.MaxInt32, "abc").token(0, "x"), 3, "runs past the end"},
		{"negative max_token_length", append(newBlob(-5), good[4:]...), 8, "negative max_token_length"},
		{"vocab size too big", good, 9, "truncated"},
		{"vocab size too small", good, 7, "trailing bytes"},
		{"vocab size absurd", good, 1 << 40, "exceeds limit"},
		{"vocab size zero", good, 0, "too small"},
		{"vocab size negative", good, -1, "too small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParseLlama2C(tc.data, tc.vocabSize)
			require.Error(t, err)
			assert.Nil(t, v)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNewErrors(t *testing.T) {
	base := func() *Vocab {
		v, err := ParseLlama2C(tinyBlob(), 8)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		name string
		edit func(v *Vocab) *Vocab
		want string
	}{
		{"nil", func(*Vocab) *Vocab { return nil }, "nil vocab"},
		{"unknown model", func(v *Vocab) *Vocab { v.Model = "bert"; return v }, `unsupported model "bert"`},
		{"empty model", func(v *Vocab) *Vocab { v.Model = ""; return v }, `unsupported model ""`},
		{"empty vocab", func(v *Vocab) *Vocab { v.Tokens, v.Scores = nil, nil; return v }, "empty vocab"},
		{"scores length", func(v *Vocab) *Vocab { v.Scores = v.Scores[:5]; return v }, "8 tokens but 5 scores"},
		{"types length", func(v *Vocab) *Vocab { v.Types = make([]TokenType, 3); return v }, "8 tokens but 3 token types"},
		{"BOS out of range", func(v *Vocab) *Vocab { v.BOS = 8; return v }, "BOS id 8 out of range"},
		{"EOS out of range", func(v *Vocab) *Vocab { v.EOS = -2; return v }, "EOS id -2 out of range"},
		{"UNK out of range", func(v *Vocab) *Vocab { v.UNK = 100; return v }, "UNK id 100 out of range"},
		{"NaN score", func(v *Vocab) *Vocab { v.Scores[5] = float32(math.NaN()); return v }, "NaN score"},
		{"bad byte piece", func(v *Vocab) *Vocab {
			v.Types = make([]TokenType, 8)
			for i := range v.Types {
				v.Types[i] = TypeNormal
			}
			v.Types[5] = TypeByte
			return v
		}, "not <0xXX>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := New(tc.edit(base()))
			require.Error(t, err)
			assert.Nil(t, tok)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNewWithoutSpecials(t *testing.T) {
	tok, err := New(&Vocab{Model: "llama", Tokens: []string{"a", "b", "ab"}, Scores: []float32{0, 0, 1}, BOS: -1, EOS: -1, UNK: -1})
	require.NoError(t, err)
	assert.Equal(t, []int32{2}, tok.Encode("ab", withBOS), "no BOS to add, no dummy prefix asked for")
	assert.Equal(t, []int32{0}, tok.Encode("ac", EncodeOptions{ParseSpecial: true}), "no byte pieces, no UNK: dropped")
	assert.Equal(t, int32(-1), tok.BOS())
	assert.Equal(t, "ab", tok.Decode([]int32{-1, 2}))
}

func TestUnknownWithoutBytePieces(t *testing.T) {
	tok, err := New(&Vocab{Model: "llama", Tokens: []string{"<unk>", "<s>", "</s>", "<0xC3>", "a"},
		Scores: make([]float32, 5), UNK: 0, BOS: 1, EOS: 2})
	require.NoError(t, err)
	assert.Equal(t, []int32{4, 0, 4}, tok.Encode("aéa", EncodeOptions{}), "é lacks <0xA9>: one <unk>, not half its bytes")
	assert.Equal(t, []int32{3, 4}, tok.Encode("\xc3a", EncodeOptions{}), "a lone invalid byte that has its piece")
	assert.Equal(t, "<unk>", tok.Piece(0))
}
