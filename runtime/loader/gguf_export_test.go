package loader

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// TestGGUFMetadataRoundTrip: GGUFMetadata is what LoadGGUF reads back: the same Config
// and the same vocabulary, for SentencePiece and byte-level vocabularies.
func TestGGUFMetadataRoundTrip(t *testing.T) {
	c := smallConfig
	c.HeadDim = 16 // != Dim/Heads: key_length and value_length are written
	c.RopeTheta = 500000
	c.MaxSeqLen = 4096
	ts, _ := smallTensors(t, c, 2)
	sp := &tokenizer.Vocab{Model: "llama", Tokens: smallTokens, Scores: []float32{0, 0, 0, -1, -2, -3, 0, -4},
		Types: []tokenizer.TokenType{2, 3, 3, 1, 1, 1, 6, 1}, BOS: 1, EOS: 2, UNK: -1, AddBOS: true, AddSpacePrefix: true,
		EOSIDs: []int32{7}}
	bl := &tokenizer.Vocab{Model: "gpt2", Pre: "llama-bpe", Tokens: []string{"a", "b", "ab", "Ġ", "Ġa", "<|b|>", "<|e|>", "<|eot|>"},
		Types: []tokenizer.TokenType{1, 1, 1, 1, 1, 3, 3, 3}, Merges: []string{"a b", "Ġ a"}, BOS: 5, EOS: 6, UNK: -1,
		AddBOS: true, EOSIDs: []int32{7}}
	for _, v := range []*tokenizer.Vocab{sp, bl} {
		meta, err := GGUFMetadata("small", c, v, "{{ x }}")
		require.NoError(t, err)
		ck, err := LoadGGUF(encodeGGUF(t, meta, ts))
		require.NoError(t, err, v.Model)
		assert.Equal(t, c, ck.Config)
		assert.Equal(t, "{{ x }}", ck.ChatTemplate)
		got := ck.Vocab
		assert.Equal(t, v, got, v.Model)
		name, _ := ck.GGUF.String("general.name")
		assert.Equal(t, "small", name)
	}

	rot := c
	rot.RopeStyle = RopeRotateHalf
	_, err := GGUFMetadata("x", rot, sp, "")
	assert.ErrorContains(t, err, "adjacent-pairs")
	_, err = GGUFMetadata("x", c, &tokenizer.Vocab{Model: "llama", Tokens: []string{"a"}}, "")
	assert.ErrorContains(t, err, "8 tokens")
}

// TestRopeFreqsLlama3: the factors divide the unscaled frequencies into the ones Llama 3
// scaling gives (the formula of HF's _compute_llama3_parameters, recomputed here).
func TestRopeFreqsLlama3(t *testing.T) {
	c := Config{HeadDim: 128, RopeTheta: 500000, RopeScaling: RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 8192}}
	f := RopeFreqsLlama3(c)
	require.Len(t, f, 64)
	assert.Equal(t, float32(1), f[0])
	assert.Equal(t, float32(8), f[63])
	blended := 0
	for i, x := range f {
		inv := 1 / math.Pow(500000, float64(2*i)/128)
		wl := 2 * math.Pi / inv
		want := inv
		switch {
		case wl > 8192:
			want = inv / 8
		case wl >= 2048:
			s := (8192/wl - 1) / 3
			want = (1-s)*inv/8 + s*inv
			blended++
		}
		assert.InEpsilon(t, want, inv/float64(x), 1e-6, "pair %d", i)
	}
	assert.Positive(t, blended)
	assert.Nil(t, RopeFreqsLlama3(smallConfig))
}

func TestPairsFromRotateHalf(t *testing.T) {
	// 2 heads of 4 (2 pairs), 1 column: HF row h*4 + j*2 + i holds pair i element j.
	hf := []float32{0, 1, 10, 11, 100, 101, 110, 111}
	assert.Equal(t, []float32{0, 10, 1, 11, 100, 110, 101, 111}, PairsFromRotateHalf(hf, 2, 4, 1))
}
