package loader

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// smallConfig is a made-up model whose every matrix has a multiple of 32 columns, so
// any tensor can be stored as Q8_0.
var smallConfig = Config{
	Arch: "llama", Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
	VocabSize: 8, MaxSeqLen: 64, RopeTheta: 10000, RopeStyle: RopePairs, NormEps: 1e-5,
	TiedEmbeddings: true,
}

var smallTokens = []string{"<unk>", "<s>", "</s>", "▁a", "▁b", "c", "<0x0A>", "▁ab"}

// smallMeta is the metadata of a valid GGUF for c (tokens must have c.VocabSize entries).
func smallMeta(c Config, tokens []string) []KV {
	scores := make([]float32, len(tokens))
	types := make([]int32, len(tokens))
	for i := range tokens {
		scores[i] = -float32(i)
		types[i] = 1
	}
	types[0], types[1], types[2] = 2, 3, 3
	return []KV{
		{"general.architecture", "llama"},
		{"general.name", "small"},
		{"llama.context_length", uint32(c.MaxSeqLen)},
		{"llama.embedding_length", uint32(c.Dim)},
		{"llama.feed_forward_length", uint32(c.HiddenDim)},
		{"llama.block_count", uint32(c.Layers)},
		{"llama.attention.head_count", uint32(c.Heads)},
		{"llama.attention.head_count_kv", uint32(c.KVHeads)},
		{"llama.rope.freq_base", float32(c.RopeTheta)},
		{"llama.attention.layer_norm_rms_epsilon", float32(c.NormEps)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{"tokenizer.ggml.unknown_token_id", uint32(0)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_space_prefix", false},
		{"tokenizer.chat_template", "{{ messages }}"},
	}
}

// smallTensors returns random F32 tensors for every canonical tensor of c, with their
// float values.
func smallTensors(t testing.TB, c Config, seed uint64) ([]*Tensor, map[string][]float32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	names, shapes := Canonical(c)
	var ts []*Tensor
	vals := map[string][]float32{}
	for _, name := range names {
		n := 1
		for _, d := range shapes[name] {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		tt, err := NewTensor(name, F32, shapes[name], v)
		require.NoError(t, err)
		ts = append(ts, tt)
		vals[name] = v
	}
	return ts, vals
}

func encodeGGUF(t testing.TB, meta []KV, tensors []*Tensor) []byte {
	var buf bytes.Buffer
	require.NoError(t, WriteGGUF(&buf, meta, tensors))
	return buf.Bytes()
}

// smallGGUF is a valid GGUF file for smallConfig.
func smallGGUF(t testing.TB) []byte {
	ts, _ := smallTensors(t, smallConfig, 1)
	return encodeGGUF(t, smallMeta(smallConfig, smallTokens), ts)
}

// llama2cFile encodes a legacy llama2.c checkpoint with header h (dim, hidden, layers,
// heads, kv_heads, vocab, seq) and nFloats weights i*0.001.
func llama2cFile(h [7]int32, nFloats int) []byte {
	b := make([]byte, 28+4*nFloats)
	for i, v := range h {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	for i := 0; i < nFloats; i++ {
		binary.LittleEndian.PutUint32(b[28+4*i:], math.Float32bits(float32(i)*0.001))
	}
	return b
}

// llama2cFloats is the number of floats a legacy file with header h holds.
func llama2cFloats(h [7]int32) int {
	dim, hid, L, heads, kv, vocab, seq := int(h[0]), int(h[1]), int(h[2]), int(h[3]), int(h[4]), int(h[5]), int(h[6])
	hs := dim / heads
	shared := vocab > 0
	if vocab < 0 {
		vocab = -vocab
	}
	n := vocab*dim + L*dim + L*dim*dim + 2*L*dim*kv*hs + L*dim*dim + L*dim + 3*L*dim*hid + dim + seq*hs
	if !shared {
		n += vocab * dim
	}
	return n
}

// smallLlama2CHeader is a valid legacy header: dim 16, hidden 24, 2 layers, 4 heads,
// 2 kv heads, vocab 6, seq 8.
var smallLlama2CHeader = [7]int32{16, 24, 2, 4, 2, 6, 8}

func tokenizerBin(tokens []string) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, int32(8))
	for i, s := range tokens {
		binary.Write(&b, binary.LittleEndian, float32(-i))
		binary.Write(&b, binary.LittleEndian, int32(len(s)))
		b.WriteString(s)
	}
	return b.Bytes()
}

var smallLlama2CTokens = []string{"<unk>", "\n<s>\n", "\n</s>\n", "<0x0A>", " a", "b"}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, data, 0o644))
	return p
}
