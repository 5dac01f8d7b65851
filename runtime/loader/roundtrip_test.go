package loader

import (
	"bytes"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/half"
)

func TestRoundTripGGUF(t *testing.T) {
	ts, vals := smallTensors(t, smallConfig, 7)
	// Convert some tensors; keep the float values that went in.
	conv := map[string]DType{
		"blk.0.attn_q.weight":   F16,
		"blk.0.ffn_up.weight":   BF16,
		"blk.1.ffn_down.weight": Q8_0,
		"blk.1.attn_k.weight":   Q8_0,
		"token_embd.weight":     F16,
	}
	for i, tt := range ts {
		if d, ok := conv[tt.Name]; ok {
			nt, err := NewTensor(tt.Name, d, tt.Shape, vals[tt.Name])
			require.NoError(t, err)
			ts[i] = nt
		}
	}
	meta := append(smallMeta(smallConfig, smallTokens),
		KV{"general.alignment", uint32(64)},
		KV{"test.nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]bool{true}}}},
		KV{"test.f64", float64(1.5)}, KV{"test.i8", int8(-3)}, KV{"test.u64", uint64(1 << 40)},
		KV{"test.empty", []float64{}},
	)
	// rope_freqs fills Config.RopeFreqFactors and is kept as a tensor too.
	extra, err := NewTensor("rope_freqs.weight", F32, []int{4}, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	ts = append(ts, extra)

	path := writeFile(t, t.TempDir(), "small.gguf", encodeGGUF(t, meta, ts))
	ck, err := Open(path, Options{})
	require.NoError(t, err)
	defer ck.Close()

	want := smallConfig
	want.RopeFreqFactors = []float32{1, 2, 3, 4}
	assert.Equal(t, want, ck.Config)
	assert.Equal(t, "{{ messages }}", ck.ChatTemplate)
	assert.Equal(t, smallTokens, ck.Vocab.Tokens)
	assert.False(t, ck.Vocab.AddSpacePrefix)
	assert.True(t, ck.Vocab.AddBOS)
	assert.Equal(t, 64, ck.GGUF.Alignment)
	assert.Equal(t, []any{[]int32{1, 2}, []string{"x"}, []any{[]bool{true}}}, ck.GGUF.Metadata["test.nested"])
	assert.Equal(t, int8(-3), ck.GGUF.Metadata["test.i8"])
	assert.Equal(t, []float64{}, ck.GGUF.Metadata["test.empty"])
	f, _ := ck.GGUF.Float("test.f64")
	assert.Equal(t, 1.5, f)
	u, _ := ck.GGUF.Int("test.u64")
	assert.Equal(t, int64(1<<40), u)
	assert.Zero(t, ck.GGUF.DataOffset%64)
	for _, tt := range ck.GGUF.Tensors { // the mapping is page-aligned
		assert.Zero(t, uintptr(unsafe.Pointer(&tt.Data[0]))%64, tt.Name)
	}
	require.Contains(t, ck.Tensors, "rope_freqs.weight")

	for name, want := range vals {
		tt := ck.Tensors[name]
		require.NotNil(t, tt, name)
		got, err := tt.Float32()
		require.NoError(t, err, name)
		require.Len(t, got, len(want))
		assert.Equal(t, len(want)/tt.Cols(), tt.Rows(), name)
		switch d := conv[name]; {
		case !inConv(conv, name):
			assert.Equal(t, F32, tt.Type)
			assert.True(t, bitsEqual(want, got), name)
		case d == F16:
			for i := range want {
				assert.Equal(t, half.F16ToF32(half.F32ToF16(want[i])), got[i])
				assert.InEpsilon(t, want[i], got[i], 1.0/2048+1e-7, "%s[%d]", name, i)
			}
		case d == BF16:
			for i := range want {
				assert.InEpsilon(t, want[i], got[i], 1.0/256+1e-7, "%s[%d]", name, i)
			}
		case d == Q8_0:
			scales, q, err := tt.Q8_0Blocks()
			require.NoError(t, err)
			require.Len(t, scales, len(want)/32)
			for i := range want {
				s := scales[i/32]
				assert.Equal(t, s*float32(q[i]), got[i])
				// ggml's quantizer rounds against the unrounded scale amax/127, which
				// the fp16 scale s misses by at most s/2048: 127 steps of that on top of
				// the half step.
				assert.LessOrEqual(t, math.Abs(float64(want[i]-got[i])), float64(s)*(0.5+127.0/2048)*(1+1e-6), "%s[%d]", name, i)
			}
		}
	}

	// Float32 copies when Data is not 4-byte aligned.
	raw := make([]byte, 17)
	tt := &Tensor{Name: "x", Type: F32, Shape: []int{4}, Data: raw[1:17]}
	copy(tt.Data, ck.Tensors["rope_freqs.weight"].Data)
	v, err := tt.Float32()
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4}, v)
}

func inConv(m map[string]DType, k string) bool { _, ok := m[k]; return ok }

func TestUntiedAndVersion2(t *testing.T) {
	c := smallConfig
	c.TiedEmbeddings = false
	ts, _ := smallTensors(t, c, 3)
	data := encodeGGUF(t, smallMeta(c, smallTokens), ts)
	data[4] = 2 // v2 has the same layout as v3 for little-endian files
	ck, err := LoadGGUF(data)
	require.NoError(t, err)
	assert.Equal(t, c, ck.Config)
	assert.EqualValues(t, 2, ck.GGUF.Version)
}

// TestKeyLength: attention.key_length sets HeadDim even when heads*head_dim != dim.
func TestKeyLength(t *testing.T) {
	c := smallConfig
	c.HeadDim = 16
	ts, _ := smallTensors(t, c, 4)
	ck, err := LoadGGUF(encodeGGUF(t, append(smallMeta(c, smallTokens), KV{"llama.attention.key_length", uint32(16)},
		KV{"llama.attention.value_length", uint32(16)}), ts))
	require.NoError(t, err)
	assert.Equal(t, c, ck.Config)
	assert.Equal(t, []int{64, 32}, ck.Tensors["blk.0.attn_q.weight"].Shape)
}

func TestHalfConversions(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {float32(math.Inf(-1)), 0xfc00},
		{5.960464477539063e-08, 0x0001}, {6.097555160522461e-05, 0x03ff}, {6.103515625e-05, 0x0400},
		{2.98e-08, 0}, {1.0009765625, 0x3c01}, {1.00048828125, 0x3c00}, {1.00146484375, 0x3c02},
	}
	for _, c := range cases {
		assert.Equal(t, c.h, half.F32ToF16(c.f), "%g", c.f)
	}
	assert.True(t, math.IsNaN(float64(half.F16ToF32(half.F32ToF16(float32(math.NaN()))))))
	// Every half round-trips through float32.
	for h := 0; h < 1<<16; h++ {
		f := half.F16ToF32(uint16(h))
		if f != f {
			continue
		}
		require.Equal(t, uint16(h), half.F32ToF16(f), "%#04x", h)
	}
	// Random floats: the nearest half.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		f := float32(rng.NormFloat64() * 100)
		h := half.F32ToF16(f)
		got := half.F16ToF32(h)
		for _, nb := range []uint16{h - 1, h + 1} {
			other := half.F16ToF32(nb)
			require.LessOrEqual(t, math.Abs(float64(got-f)), math.Abs(float64(other-f)), "%g", f)
		}
	}
	assert.Equal(t, uint16(0x3f80), half.F32ToBF16(1))
	assert.Equal(t, uint16(0x3f80), half.F32ToBF16(math.Float32frombits(0x3f808000))) // tie to even
	assert.Equal(t, uint16(0x3f82), half.F32ToBF16(math.Float32frombits(0x3f818000)))
}

func TestWriteGGUFRefuses(t *testing.T) {
	var buf bytes.Buffer
	assert.ErrorContains(t, WriteGGUF(&buf, []KV{{"x", 3}}, nil), "cannot write a int")
	bad := &Tensor{Name: "t", Type: F32, Shape: []int{4}, Data: make([]byte, 3)}
	assert.ErrorContains(t, WriteGGUF(&buf, nil, []*Tensor{bad}), `tensor "t"`)
	_, err := NewTensor("q", Q8_0, []int{2, 16}, make([]float32, 32))
	assert.ErrorContains(t, err, "multiple of 32")
}

func TestLlama2CInMemory(t *testing.T) {
	h := smallLlama2CHeader
	model := llama2cFile(h, llama2cFloats(h))
	ck, err := LoadLlama2C(model, tokenizerBin(smallLlama2CTokens))
	require.NoError(t, err)
	assert.Equal(t, Config{Arch: "llama", Dim: 16, HiddenDim: 24, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 4,
		VocabSize: 6, MaxSeqLen: 8, RopeTheta: 10000, RopeStyle: RopePairs, NormEps: 1e-5, TiedEmbeddings: true}, ck.Config)
	// Layout: embedding (6*16 floats), then rms_att for 2 layers (2*16), then wq.
	q1, err := ck.Tensors["blk.1.attn_q.weight"].Float32()
	require.NoError(t, err)
	assert.Equal(t, float32(6*16+2*16+16*16)*0.001, q1[0])
	assert.Nil(t, ck.Tensors["output.weight"])

	// Negative vocab: a separate classifier after freq_cis.
	h[5] = -6
	n := llama2cFloats(h)
	ck, err = LoadLlama2C(llama2cFile(h, n), tokenizerBin(smallLlama2CTokens))
	require.NoError(t, err)
	assert.False(t, ck.Config.TiedEmbeddings)
	w, err := ck.Tensors["output.weight"].Float32()
	require.NoError(t, err)
	assert.Equal(t, float32(n-6*16)*0.001, w[0])
	assert.Equal(t, []int{6, 16}, ck.Tensors["output.weight"].Shape)

	// Tokenizer found beside the model, tok<vocab>.bin first.
	dir := t.TempDir()
	p := writeFile(t, dir, "model.bin", model)
	writeFile(t, dir, "tok6.bin", tokenizerBin(smallLlama2CTokens))
	ck, err = Open(p, Options{})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "model.bin"), ck.Path)
	require.NoError(t, ck.Close())
}

// TestVocabDefaults: absent tokenizer keys take llama.cpp's SentencePiece defaults;
// 0xFFFFFFFF means "no such token".
func TestVocabDefaults(t *testing.T) {
	meta := smallMeta(tinyConfig, smallTokens)
	for _, k := range []string{"tokenizer.ggml.scores", "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id",
		"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix",
		"tokenizer.chat_template", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
		"llama.attention.head_count_kv"} {
		meta = withMeta(meta, k, nil)
	}
	meta = withMeta(meta, "tokenizer.ggml.eos_token_id", uint32(0xFFFFFFFF))
	c := tinyConfig
	c.KVHeads = c.Heads // head_count_kv defaults to head_count
	ts, _ := smallTensors(t, c, 2)
	ck, err := LoadGGUF(encodeGGUF(t, meta, ts))
	require.NoError(t, err)
	assert.Equal(t, c, ck.Config)
	v := ck.Vocab
	assert.Equal(t, make([]float32, len(smallTokens)), v.Scores)
	assert.Nil(t, v.Types)
	assert.Equal(t, []int32{1, -1, 0}, []int32{v.BOS, v.EOS, v.UNK})
	assert.True(t, v.AddBOS)
	assert.True(t, v.AddSpacePrefix)
	assert.Equal(t, "", ck.ChatTemplate)
}
