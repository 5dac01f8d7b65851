package tokenizer

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

func llama2Model(tb testing.TB) *Vocab {
	tb.Helper()
	data, err := os.ReadFile(shared.Path(tb, "models", "llama2-tokenizer", "tokenizer.model"))
	require.NoError(tb, err)
	v, err := FromSentencePieceModel(data)
	require.NoError(tb, err)
	return v
}

func TestSentencePieceModelMatchesBin(t *testing.T) {
	v := llama2Model(t)
	bin := loadVocab(t, 32000, "models", "llama2-tokenizer", "tokenizer.bin")
	require.Len(t, v.Tokens, 32000)
	assert.Equal(t, [3]int32{0, 1, 2}, [3]int32{v.UNK, v.BOS, v.EOS})
	assert.True(t, v.AddSpacePrefix)
	assert.Equal(t, TypeUnknown, v.Types[0])
	assert.Equal(t, TypeControl, v.Types[1])
	assert.Equal(t, TypeByte, v.Types[3+'\n'])
	for i := range v.Tokens {
		require.Equal(t, bin.Tokens[i], strings.ReplaceAll(v.Tokens[i], "▁", " "), "piece %d", i)
		require.Equal(t, bin.Scores[i], v.Scores[i], "score %d", i)
	}

	tok, err := New(v)
	require.NoError(t, err)
	var g struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		} `json:"cases"`
	}
	readJSON(t, &g, "golden", "llama2-tokenizer.json")
	for _, c := range g.Cases {
		assert.Equal(t, c.IDs, tok.Encode(c.Text, EncodeOptions{}), "%q", c.Text)
	}
	binTok := llama2Tok(t)
	for _, s := range append(genStrings(500), roundTripStrings...) {
		require.Equal(t, binTok.Encode(s, withBOS), tok.Encode(s, withBOS), "%q", s)
	}
}

// protoMsg builds protobuf messages for the error tests.
type protoMsg []byte

func (m protoMsg) varint(field int, v uint64) protoMsg {
	m = appendUvarint(m, uint64(field)<<3|wireVarint)
	return appendUvarint(m, v)
}

func (m protoMsg) bytes(field int, b []byte) protoMsg {
	m = appendUvarint(m, uint64(field)<<3|wireBytes)
	m = appendUvarint(m, uint64(len(b)))
	return append(m, b...)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func tinyModel(modelType uint64) protoMsg {
	var m protoMsg
	for i, p := range []string{"<unk>", "<s>", "</s>", "▁", "a", "▁a"} {
		piece := protoMsg{}.bytes(1, []byte(p))
		if i < 3 {
			piece = piece.varint(3, []uint64{2, 3, 3}[i])
		}
		m = m.bytes(1, piece)
	}
	m = m.bytes(2, protoMsg{}.varint(3, modelType))
	return m.bytes(3, protoMsg{}.bytes(1, []byte("identity")).varint(4, 0))
}

func TestSentencePieceModelTiny(t *testing.T) {
	v, err := FromSentencePieceModel(tinyModel(2))
	require.NoError(t, err)
	tok, err := New(v)
	require.NoError(t, err)
	assert.Equal(t, []int32{1, 5, 5}, tok.Encode("a a", withBOS))
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no pieces"},
		{"unigram", tinyModel(1), "model_type 1 UNIGRAM not supported"},
		{"default normalizer", append(tinyModel(2), protoMsg{}.bytes(3, protoMsg{}.bytes(1, []byte("nmt_nfkc")))...), `normalizer "nmt_nfkc"`},
		{"truncated", tinyModel(2)[:7], "runs past the end"},
		{"bad varint", []byte{0x08, 0xff}, "bad varint"},
		{"group", []byte{0x0b}, "unsupported wire type 3"},
		{"field zero", []byte{0x00, 0x01}, "bad field number 0"},
		{"bad piece type", protoMsg{}.bytes(1, protoMsg{}.varint(3, 9)), "piece type 9"},
		{"pieces not bytes", protoMsg{}.varint(1, 1), "pieces: wire type 0"},
		{"bos out of range", append(tinyModel(2), protoMsg{}.bytes(2, protoMsg{}.varint(41, 99))...), "bos_id 99 outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := FromSentencePieceModel(tc.data)
			require.Error(t, err)
			assert.Nil(t, v)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func FuzzSentencePieceModel(f *testing.F) {
	f.Add([]byte(tinyModel(2)))
	f.Add([]byte(tinyModel(1)))
	f.Add([]byte{0x0a, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := FromSentencePieceModel(data)
		if err != nil {
			return
		}
		if tok, err := New(v); err == nil {
			tok.Decode(tok.Encode("a <s> \xff", EncodeOptions{AddBOS: true, ParseSpecial: true}))
		}
	})
}
