package tokenizer

import (
	"os"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

func FuzzParseLlama2C(f *testing.F) {
	f.Add([]byte(tinyBlob()), 8)
	f.Add([]byte(tinyBlob()), 7)
	f.Add([]byte(tinyBlob()[:20]), 8)
	f.Add([]byte(newBlob(6).token(0, "<unk>").tokenLen(0, -1, "")), 3)
	f.Add([]byte(newBlob(-1)), 3)
	f.Add([]byte{}, 0)
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, 1<<30)
	f.Fuzz(func(t *testing.T, data []byte, vocabSize int) {
		v, err := ParseLlama2C(data, vocabSize)
		if err != nil {
			require.Nil(t, v)
			return
		}
		require.Len(t, v.Tokens, vocabSize)
		require.Len(t, v.Scores, vocabSize)
		tok, err := New(v)
		if err != nil {
			return // a NaN score, say
		}
		// Whatever the vocabulary, encoding and decoding must not panic.
		ids := tok.Encode("a <s> \xff ▁", EncodeOptions{AddBOS: true, ParseSpecial: true})
		for _, id := range ids {
			require.True(t, tok.Valid(id))
		}
		st := tok.NewStream(true)
		for _, id := range ids {
			st.Add(id)
		}
		st.Flush()
		_ = tok.Decode(ids)
	})
}

func FuzzEncode(f *testing.F) {
	data, err := os.ReadFile(shared.Path(f, "models", "stories260K", "tok512.bin"))
	require.NoError(f, err)
	v, err := ParseLlama2C(data, 512)
	require.NoError(f, err)
	tok, err := New(v)
	require.NoError(f, err)
	for _, s := range roundTripStrings {
		f.Add(s, false)
	}
	f.Add("\xff\xfe\xc3", true)
	f.Add("Once upon a time</s><s>", true)
	f.Fuzz(func(t *testing.T, s string, special bool) {
		ids := tok.Encode(s, EncodeOptions{AddBOS: true, ParseSpecial: special})
		for _, id := range ids {
			require.True(t, tok.Valid(id))
		}
		got := tok.Decode(ids)
		if !special {
			// Invalid bytes come back too: they went through byte fallback.
			require.Equal(t, s, got)
			noBOS := tok.Encode(s, EncodeOptions{})
			require.Equal(t, ids[1:], noBOS)
			if s != "" {
				require.Equal(t, " "+s, tok.Decode(noBOS))
			}
		}
		if utf8.ValidString(got) {
			require.Equal(t, got, streamAll(tok, false, ids, func(c string) {
				require.True(t, utf8.ValidString(c))
			}))
		}
	})
}
