package loader

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tensorInfoAt returns the byte position of the offset field of the tensor info of
// name in a GGUF file written by WriteGGUF.
func tensorInfoAt(t testing.TB, data []byte, name string, ndims int) int {
	var key bytes.Buffer
	binary.Write(&key, binary.LittleEndian, uint64(len(name)))
	key.WriteString(name)
	binary.Write(&key, binary.LittleEndian, uint32(ndims))
	i := bytes.Index(data, key.Bytes())
	require.GreaterOrEqual(t, i, 0, name)
	return i + key.Len() + 8*ndims + 4
}

// metaAt returns the position of the value type of metadata key.
func metaAt(t testing.TB, data []byte, key string) int {
	var k bytes.Buffer
	binary.Write(&k, binary.LittleEndian, uint64(len(key)))
	k.WriteString(key)
	i := bytes.Index(data, k.Bytes())
	require.GreaterOrEqual(t, i, 0, key)
	return i + k.Len()
}

func withMeta(meta []KV, key string, v any) []KV {
	out := slices.Clone(meta)
	for i := range out {
		if out[i].Key == key {
			if v == nil {
				return slices.Delete(out, i, i+1)
			}
			out[i].Value = v
			return out
		}
	}
	return append(out, KV{key, v})
}

func TestBadInput(t *testing.T) {
	good := smallGGUF(t)
	meta := smallMeta(smallConfig, smallTokens)
	ts, _ := smallTensors(t, smallConfig, 1)
	gguf := func(m []KV, tensors []*Tensor) []byte { return encodeGGUF(t, m, tensors) }
	patch := func(at int, v uint64, size int) []byte {
		b := slices.Clone(good)
		if size == 4 {
			binary.LittleEndian.PutUint32(b[at:], uint32(v))
		} else {
			binary.LittleEndian.PutUint64(b[at:], v)
		}
		return b
	}
	retyped := func(name string, typ uint32) []*Tensor {
		out := slices.Clone(ts)
		for i, tt := range out {
			if tt.Name == name {
				c := *tt
				c.GGMLType = typ
				out[i] = &c
			}
		}
		return out
	}
	without := func(name string) []*Tensor {
		return slices.DeleteFunc(slices.Clone(ts), func(tt *Tensor) bool { return tt.Name == name })
	}
	reshaped := func(name string, shape []int) []*Tensor {
		out := slices.Clone(ts)
		for i, tt := range out {
			if tt.Name == name {
				nt, err := NewTensor(name, F32, shape, make([]float32, 16*32))
				require.NoError(t, err)
				out[i] = nt
			}
		}
		return out
	}
	attnQ := tensorInfoAt(t, good, "blk.0.attn_q.weight", 2)
	attnQOff := binary.LittleEndian.Uint64(good[attnQ:])

	h := smallLlama2CHeader
	l2c := func(h [7]int32) []byte { return llama2cFile(h, llama2cFloats(h)) }
	hdr := func(i int, v int32) []byte {
		hh := h
		hh[i] = v
		return llama2cFile(hh, 100)
	}
	tok := tokenizerBin(smallLlama2CTokens)
	gpt2 := withMeta(meta, "tokenizer.ggml.model", "gpt2")

	cases := []struct {
		name string
		file string
		data []byte
		tok  []byte // written as tok6.bin beside a llama2.c file
		want []string
	}{
		{"empty", "m.gguf", nil, nil, []string{"empty"}},
		{"wrong magic", "m.gguf", append([]byte("GGUX"), good[4:]...), nil, []string{"not a model file", `starts with "GGUX", not "GGUF"`}},
		{"short magic", "m.gguf", []byte("GG"), nil, []string{"truncated"}},
		{"version 1", "m.gguf", patch(4, 1, 4), nil, []string{"version 1 is not supported"}},
		{"version 4", "m.gguf", patch(4, 4, 4), nil, []string{"unsupported version 4"}},
		{"big endian", "m.gguf", patch(4, 3<<24, 4), nil, []string{"big-endian"}},
		{"absurd tensor count", "m.gguf", patch(8, 1<<60, 8), nil, []string{"tensor count", "absurd"}},
		{"absurd metadata count", "m.gguf", patch(16, 1<<40, 8), nil, []string{"metadata count", "absurd"}},
		{"absurd key length", "m.gguf", patch(24, 1<<62, 8), nil, []string{"metadata key 0 length", "absurd"}},
		{"absurd string length", "m.gguf", patch(metaAt(t, good, "general.architecture")+4, 1<<50, 8), nil,
			[]string{`value of "general.architecture" length`, "absurd"}},
		{"absurd array length", "m.gguf", patch(metaAt(t, good, "tokenizer.ggml.tokens")+8, 1<<40, 8), nil,
			[]string{`array length of "tokenizer.ggml.tokens"`, "absurd"}},
		{"unknown value type", "m.gguf", patch(metaAt(t, good, "general.name"), 13, 4), nil,
			[]string{`metadata "general.name": unknown value type 13`}},
		{"bad bool", "m.gguf", patch(metaAt(t, good, "tokenizer.ggml.add_bos_token")+4, 7, 4), nil, []string{"bool byte 7"}},
		{"duplicate key", "m.gguf", gguf(append(slices.Clone(meta), KV{"general.name", "again"}), ts), nil,
			[]string{`duplicate metadata key "general.name"`}},
		{"duplicate tensor", "m.gguf", gguf(meta, append(slices.Clone(ts), ts[3])), nil,
			[]string{"duplicate tensor name", ts[3].Name}},
		{"unsupported tensor type", "m.gguf", gguf(meta, retyped("blk.0.attn_q.weight", 20)), nil,
			[]string{`tensor "blk.0.attn_q.weight": type IQ4_NL (20) not supported`, "supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K"}},
		{"activation-only tensor type", "m.gguf", gguf(meta, retyped("blk.0.attn_q.weight", 15)), nil,
			[]string{`tensor "blk.0.attn_q.weight": type Q8_K (15) not supported`}},
		{"K-quant row not whole super-blocks", "m.gguf", gguf(meta, retyped("blk.0.attn_q.weight", 12)), nil,
			[]string{`tensor "blk.0.attn_q.weight"`, "Q4_K needs the innermost dimension to be a multiple of 256, got 32"}},
		{"unnamed tensor type", "m.gguf", gguf(meta, retyped("blk.1.attn_k.weight", 99)), nil,
			[]string{`tensor "blk.1.attn_k.weight": type unknown (99) not supported`}},
		{"misaligned offset", "m.gguf", patch(attnQ, attnQOff+4, 8), nil,
			[]string{`tensor "blk.0.attn_q.weight"`, "not a multiple of the alignment 32"}},
		{"overlapping tensors", "m.gguf", patch(attnQ, 0, 8), nil, []string{"overlap", "blk.0.attn_q.weight"}},
		{"data past EOF", "m.gguf", patch(attnQ, 1<<40, 8), nil, []string{`tensor "blk.0.attn_q.weight"`, "past the end of the file"}},
		{"offset overflow", "m.gguf", patch(attnQ, 1<<63, 8), nil, []string{`tensor "blk.0.attn_q.weight"`, "past the end"}},
		{"zero dimension", "m.gguf", patch(attnQ-12, 0, 8), nil, []string{`tensor "blk.0.attn_q.weight" has dimension 0`}},
		{"too many dims", "m.gguf", patch(attnQ-4-16-4, 9, 4), nil, []string{`tensor "blk.0.attn_q.weight" has 9 dimensions`}},
		{"bad alignment", "m.gguf", func() []byte {
			b := gguf(withMeta(meta, "general.alignment", uint32(32)), ts)
			binary.LittleEndian.PutUint32(b[metaAt(t, b, "general.alignment")+4:], 3)
			return b
		}(), nil, []string{"general.alignment 3 is not a positive power of two"}},
		{"architecture", "m.gguf", gguf(withMeta(meta, "general.architecture", "falcon"), ts), nil,
			[]string{`architecture "falcon" not supported`}},
		{"no architecture", "m.gguf", gguf(withMeta(meta, "general.architecture", nil), ts), nil,
			[]string{`missing metadata "general.architecture"`}},
		{"architecture not a string", "m.gguf", gguf(withMeta(meta, "general.architecture", uint32(1)), ts), nil,
			[]string{`"general.architecture" is uint32, want a string`}},
		{"missing block_count", "m.gguf", gguf(withMeta(meta, "llama.block_count", nil), ts), nil,
			[]string{`missing metadata "llama.block_count"`}},
		{"per-layer head_count_kv", "m.gguf", gguf(withMeta(meta, "llama.attention.head_count_kv", []uint32{2, 2}), ts), nil,
			[]string{`"llama.attention.head_count_kv" is []uint32, want an integer`}},
		{"heads do not divide dim", "m.gguf", gguf(withMeta(meta, "llama.attention.head_count", uint32(5)), ts), nil,
			[]string{"head_count 5 does not divide embedding_length 32"}},
		{"kv heads do not divide heads", "m.gguf", gguf(withMeta(meta, "llama.attention.head_count_kv", uint32(3)), ts), nil,
			[]string{"n_kv_heads 3 does not divide n_heads 4"}},
		{"zero layers", "m.gguf", gguf(withMeta(meta, "llama.block_count", uint32(0)), ts), nil,
			[]string{`"llama.block_count" is 0`}},
		{"bad epsilon", "m.gguf", gguf(withMeta(meta, "llama.attention.layer_norm_rms_epsilon", float32(-1)), ts), nil,
			[]string{`"llama.attention.layer_norm_rms_epsilon" is -1`}},
		{"missing tensor", "m.gguf", gguf(meta, without("blk.1.ffn_up.weight")), nil, []string{`missing tensor "blk.1.ffn_up.weight"`}},
		{"wrong shape", "m.gguf", gguf(meta, reshaped("blk.0.attn_k.weight", []int{32, 16})), nil,
			[]string{`tensor "blk.0.attn_k.weight" has shape [32 16], expected [16 32]`}},
		{"more layers than tensors", "m.gguf", gguf(withMeta(meta, "llama.block_count", uint32(3)), ts), nil,
			[]string{`missing tensor "blk.2.attn_norm.weight"`}},
		{"vocab mismatch", "m.gguf", gguf(withMeta(meta, "tokenizer.ggml.tokens", smallTokens[:5]), ts), nil,
			[]string{"vocabulary has 5 tokens but the model expects 8"}},
		{"vocab_size vs embedding", "m.gguf", gguf(withMeta(meta, "llama.vocab_size", uint32(32000)), ts), nil,
			[]string{`tensor "token_embd.weight" has shape [8 32], expected [32000 32]`}},
		{"scores length", "m.gguf", gguf(withMeta(meta, "tokenizer.ggml.scores", []float32{1}), ts), nil,
			[]string{`"tokenizer.ggml.scores" must be 8 float32`}},
		{"bos out of range", "m.gguf", gguf(withMeta(meta, "tokenizer.ggml.bos_token_id", uint32(99)), ts), nil,
			[]string{`"tokenizer.ggml.bos_token_id": token id 99 is outside the vocabulary of 8`}},
		{"gpt2 tokenizer", "m.gguf", gguf(gpt2, ts), nil, []string{`metadata "tokenizer.ggml.merges" is missing`}},
		{"rope scaling", "m.gguf", gguf(withMeta(meta, "llama.rope.scaling.type", "yarn"), ts), nil,
			[]string{`llama.rope.scaling.type "yarn" not supported`}},
		{"odd head dim", "m.gguf", gguf(withMeta(meta, "llama.attention.key_length", uint32(7)), ts), nil,
			[]string{"head_dim 7 is odd"}},
		{"key_length disagrees with tensors", "m.gguf", gguf(withMeta(meta, "llama.attention.key_length", uint32(16)), ts), nil,
			[]string{`tensor "blk.0.attn_q.weight" has shape [32 32], expected [64 32]`}},
		{"no tokenizer", "m.gguf", gguf(withMeta(meta, "tokenizer.ggml.model", nil), ts), nil,
			[]string{`missing metadata "tokenizer.ggml.model"`}},

		{"llama2c short header", "m.bin", []byte{1, 2, 3}, tok, []string{"truncated", "header needs 28"}},
		{"llama2c zero dim", "m.bin", hdr(0, 0), tok, []string{"dim is 0"}},
		{"llama2c negative layers", "m.bin", hdr(2, -3), tok, []string{"n_layers is -3"}},
		{"llama2c too large", "m.bin", hdr(6, 1<<30), tok, []string{"seq_len is 1073741824 (too large)"}},
		{"llama2c min vocab", "m.bin", hdr(5, -1<<31), tok, []string{"vocab_size is -2147483648"}},
		{"version 0", "m.gguf", patch(4, 0, 4), nil, []string{"unsupported version 0"}},
		{"llama2c zero vocab", "m.bin", hdr(5, 0), tok, []string{"vocab_size is 0"}},
		{"llama2c vocab past the sampler", "m.bin", hdr(5, 1<<23+1), tok, []string{"vocab_size 8388609 exceeds the sampler's limit of 8388608"}},
		{"llama2c heads do not divide dim", "m.bin", hdr(3, 5), tok, []string{"n_heads 5 does not divide dim 16"}},
		{"llama2c kv heads do not divide heads", "m.bin", hdr(4, 3), tok, []string{"n_kv_heads 3 does not divide n_heads 4"}},
		{"llama2c more kv heads than heads", "m.bin", hdr(4, 8), tok, []string{"n_kv_heads 8 does not divide n_heads 4"}},
		{"llama2c odd head size", "m.bin", llama2cFile([7]int32{12, 24, 2, 4, 2, 6, 8}, 10), tok, []string{"head size 3"}},
		{"llama2c sizes overflow", "m.bin", llama2cFile([7]int32{1 << 29, 1 << 29, 1 << 29, 2, 2, 1 << 29, 8}, 10), tok,
			[]string{"overflow"}},
		{"llama2c huge but no overflow", "m.bin", llama2cFile([7]int32{1 << 20, 1 << 20, 64, 2, 2, 1 << 20, 8}, 10), tok,
			[]string{"truncated"}},
		{"llama2c short file", "m.bin", l2c(h)[:len(l2c(h))-4], tok, []string{"truncated", "implies"}},
		{"llama2c trailing bytes", "m.bin", append(l2c(h), 0, 0, 0, 0), tok, []string{"4 unexpected trailing bytes"}},
		{"llama2c versioned export", "m.bin", append([]byte("24ka\x01\x00\x00\x00"), make([]byte, 256)...), tok,
			[]string{`magic "ak42"`, "not supported"}},
		{"llama2c missing tokenizer", "m.bin", l2c(h), nil, []string{"no tokenizer", "tok6.bin", "tokenizer.bin"}},
		{"llama2c vocab mismatch", "m.bin", l2c(h), tokenizerBin(smallLlama2CTokens[:5]), []string{"tok6.bin", "vocabulary has 5 tokens but the model expects 6"}},
		{"llama2c truncated tokenizer", "m.bin", l2c(h), tok[:len(tok)-1], []string{"tok6.bin", "truncated"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, c.file, c.data)
			if c.tok != nil {
				writeFile(t, dir, "tok6.bin", c.tok)
			}
			ck, err := Open(path, Options{})
			if ck != nil {
				ck.Close()
			}
			require.Error(t, err)
			assert.ErrorContains(t, err, path)
			for _, w := range c.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

// tinyConfig keeps the truncation loop short: every prefix is parsed.
var tinyConfig = Config{
	Arch: "llama", Dim: 8, HiddenDim: 16, Layers: 1, Heads: 2, KVHeads: 1, HeadDim: 4,
	VocabSize: 8, MaxSeqLen: 16, RopeTheta: 10000, RopeStyle: RopePairs, NormEps: 1e-5,
	TiedEmbeddings: true,
}

func TestMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope.gguf")
	_, err := Open(p, Options{})
	require.Error(t, err)
	assert.ErrorContains(t, err, p)
}

// TestTruncatedGGUF cuts a valid file at every length: each prefix must be an error.
func TestTruncatedGGUF(t *testing.T) {
	c := tinyConfig
	ts, _ := smallTensors(t, c, 5)
	good := encodeGGUF(t, smallMeta(c, smallTokens), ts)
	_, err := LoadGGUF(good)
	require.NoError(t, err)
	for n := 0; n < len(good); n++ {
		_, err := LoadGGUF(good[:n])
		if !assert.Error(t, err, "prefix of %d bytes", n) {
			break
		}
	}
	// Through Open, a few cut points name the file.
	dir := t.TempDir()
	for _, n := range []int{1, 4, 7, 23, 100, 700, len(good) / 2, len(good) - 1} {
		p := writeFile(t, dir, "cut.gguf", good[:n])
		_, err := Open(p, Options{})
		require.Error(t, err)
		assert.ErrorContains(t, err, p)
		assert.Regexp(t, "truncated|past the end", err.Error())
	}
}

// TestTruncatedLlama2C cuts a valid llama2.c file at many lengths.
func TestTruncatedLlama2C(t *testing.T) {
	h := smallLlama2CHeader
	good := llama2cFile(h, llama2cFloats(h))
	tok := tokenizerBin(smallLlama2CTokens)
	_, err := LoadLlama2C(good, tok)
	require.NoError(t, err)
	for n := 0; n < len(good); n++ {
		_, err := LoadLlama2C(good[:n], tok)
		require.Error(t, err, "prefix of %d bytes", n)
		assert.Contains(t, err.Error(), "truncated")
	}
	for n := 0; n < len(tok); n++ {
		_, err := LoadLlama2C(good, tok[:n])
		require.Error(t, err, "tokenizer prefix of %d bytes", n)
	}
}
