package tokenizer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func streamAll(tok *Tokenizer, skip bool, ids []int32, each func(string)) string {
	st := tok.NewStream(skip)
	var b strings.Builder
	for _, id := range ids {
		s := st.Add(id)
		each(s)
		b.WriteString(s)
	}
	s := st.Flush()
	each(s)
	b.WriteString(s)
	return b.String()
}

func TestStreamEmoji(t *testing.T) {
	tok := llama2Tok(t)
	for _, text := range append([]string{"🚀🚀 go 👨‍👩‍👧‍👦 東京 naïve", "🇯🇵\n🤖"}, roundTripStrings...) {
		ids := tok.Encode(text, withBOS)
		var chunks int
		got := streamAll(tok, false, ids, func(s string) {
			require.True(t, utf8.ValidString(s), "chunk %q of %q", s, text)
			if s != "" {
				chunks++
			}
		})
		require.Equal(t, tok.Decode(ids), got)
		require.Equal(t, text, got)
		// Without BOS in the ids, skipLeadingSpace stands in for it.
		require.Equal(t, text, streamAll(tok, true, ids[1:], func(string) {}))
		require.Equal(t, tok.Decode(ids[1:]), streamAll(tok, false, ids[1:], func(string) {}))
	}
	// The rocket is four byte tokens: nothing comes out until the last one.
	ids := tok.Encode("🚀", EncodeOptions{})
	require.Equal(t, []int32{29871, 243, 162, 157, 131}, ids)
	st := tok.NewStream(true)
	var outs []string
	for _, id := range ids {
		outs = append(outs, st.Add(id))
	}
	assert.Equal(t, []string{"", "", "", "", "🚀"}, outs)
	assert.Equal(t, "", st.Flush())
}

func TestStreamInvalidBytes(t *testing.T) {
	tok := llama2Tok(t)
	b := func(x byte) int32 { return int32(x) + 3 }
	st := tok.NewStream(false)
	// A 4-byte lead, two continuations, then a normal token: the sequence can never
	// complete, so each held byte becomes U+FFFD (as ranging over the string would).
	assert.Equal(t, "", st.Add(b(0xF0)))
	assert.Equal(t, "", st.Add(b(0x9F)))
	assert.Equal(t, "\uFFFD\uFFFD the", st.Add(278))
	assert.Equal(t, "\uFFFD", st.Add(b(0x80)), "a stray continuation is invalid at once")
	assert.Equal(t, "", st.Add(b(0xE6)))
	assert.Equal(t, "\uFFFD", st.Flush(), "an incomplete tail at the end")
	assert.Equal(t, "", st.Flush())
	assert.Equal(t, "é", st.Add(b(0xC3))+st.Add(b(0xA9)), "the stream goes on after Flush")
	assert.Equal(t, "", st.Add(-1))
}

// TestRawStreamKeepsBytes: the raw stream returns bytes that never complete a
// character as they are, so its outputs add up to Decode byte for byte (what a file
// written by the CLI holds), while characters still come out whole.
func TestRawStreamKeepsBytes(t *testing.T) {
	tok := llama2Tok(t)
	b := func(x byte) int32 { return int32(x) + 3 }
	st := tok.NewRawStream(false)
	assert.Equal(t, "", st.Add(b(0xF0)))
	assert.Equal(t, "", st.Add(b(0x9F)))
	assert.Equal(t, "\xf0\x9f the", st.Add(278))
	assert.Equal(t, "\x80", st.Add(b(0x80)))
	assert.Equal(t, "", st.Add(b(0xE6)))
	assert.Equal(t, "\xe6", st.Flush())
	ids := []int32{b(0xF0), b(0x9F), 278, b(0x80), b(0xE2), b(0x82), b(0xAC), b(0xFF), 278}
	got := streamAllRaw(tok, ids, func(s string) {})
	require.Equal(t, tok.Decode(ids), got)
	require.Equal(t, "\xf0\x9f the\x80€\xff the", got)
}

func streamAllRaw(tok *Tokenizer, ids []int32, each func(string)) string {
	st := tok.NewRawStream(false)
	var b strings.Builder
	for _, id := range ids {
		s := st.Add(id)
		each(s)
		b.WriteString(s)
	}
	b.WriteString(st.Flush())
	return b.String()
}
