package loader

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// GGUFMetadata is the GGUF metadata of a Llama checkpoint, the inverse of what LoadGGUF
// reads: general.architecture and general.name, the llama.* hyper-parameters of c, and
// the tokenizer.ggml.* keys of v with the chat template. c must be in GGUF's row layout
// (RopePairs: an HF checkpoint's q/k rows un-permuted first, PairsFromRotateHalf); Llama
// 3 RoPE scaling travels as the rope_freqs tensor (RopeFreqsLlama3), which the caller
// writes. Of v.EOSIDs, the first two become tokenizer.ggml.eot_token_id and
// eom_token_id (GGUF has no key for more; the tokenizer also stops on end-of-turn
// control tokens by name).
func GGUFMetadata(name string, c Config, v *tokenizer.Vocab, chatTemplate string) ([]KV, error) {
	if c.RopeStyle != RopePairs {
		return nil, fmt.Errorf("gguf metadata: q/k rows must be in the adjacent-pairs RoPE layout GGUF uses")
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("gguf metadata: %w", err)
	}
	if v == nil || len(v.Tokens) != c.VocabSize {
		return nil, fmt.Errorf("gguf metadata: the vocabulary must have the model's %d tokens", c.VocabSize)
	}
	u32 := func(n int) uint32 { return uint32(n) }
	meta := []KV{
		{"general.architecture", "llama"},
		{"general.name", name},
		{"llama.context_length", u32(c.MaxSeqLen)},
		{"llama.embedding_length", u32(c.Dim)},
		{"llama.feed_forward_length", u32(c.HiddenDim)},
		{"llama.block_count", u32(c.Layers)},
		{"llama.attention.head_count", u32(c.Heads)},
		{"llama.attention.head_count_kv", u32(c.KVHeads)},
		{"llama.rope.freq_base", c.RopeTheta},
		{"llama.attention.layer_norm_rms_epsilon", c.NormEps},
		{"llama.rope.dimension_count", u32(c.HeadDim)},
		{"llama.vocab_size", u32(c.VocabSize)},
	}
	if c.HeadDim*c.Heads != c.Dim {
		meta = append(meta, KV{"llama.attention.key_length", u32(c.HeadDim)}, KV{"llama.attention.value_length", u32(c.HeadDim)})
	}
	if v.Model != "llama" && v.Model != "gpt2" {
		return nil, fmt.Errorf("gguf metadata: tokenizer model %q has no GGUF form", v.Model)
	}
	meta = append(meta, KV{"tokenizer.ggml.model", v.Model})
	if v.Model == "gpt2" {
		meta = append(meta, KV{"tokenizer.ggml.pre", v.Pre})
	}
	meta = append(meta, KV{"tokenizer.ggml.tokens", v.Tokens})
	if v.Scores != nil {
		meta = append(meta, KV{"tokenizer.ggml.scores", v.Scores})
	}
	if v.Types != nil {
		tt := make([]int32, len(v.Types))
		for i, t := range v.Types {
			tt[i] = int32(t)
		}
		meta = append(meta, KV{"tokenizer.ggml.token_type", tt})
	}
	if v.Model == "gpt2" {
		meta = append(meta, KV{"tokenizer.ggml.merges", v.Merges})
	}
	ids := []struct {
		key string
		id  int32
	}{{"bos_token_id", v.BOS}, {"eos_token_id", v.EOS}, {"unknown_token_id", v.UNK}}
	// LoadGGUF gives a SentencePiece vocabulary llama.cpp's defaults (BOS 1, EOS 2,
	// UNK 0) when a key is absent: "none" must then be said explicitly.
	for _, e := range ids {
		switch {
		case e.id >= 0:
			meta = append(meta, KV{"tokenizer.ggml." + e.key, uint32(e.id)})
		case v.Model == "llama":
			meta = append(meta, KV{"tokenizer.ggml." + e.key, uint32(math.MaxUint32)})
		}
	}
	for i, key := range []string{"eot_token_id", "eom_token_id"} {
		if i < len(v.EOSIDs) {
			meta = append(meta, KV{"tokenizer.ggml." + key, uint32(v.EOSIDs[i])})
		}
	}
	meta = append(meta, KV{"tokenizer.ggml.add_bos_token", v.AddBOS}, KV{"tokenizer.ggml.add_space_prefix", v.AddSpacePrefix})
	if chatTemplate != "" {
		meta = append(meta, KV{"tokenizer.chat_template", chatTemplate})
	}
	return meta, nil
}

// RopeFreqsLlama3 is the rope_freqs tensor llama.cpp's converter writes for Llama 3 RoPE
// scaling: per rotated pair, the factor dividing its frequency (1 for high frequencies,
// Factor for low ones, blended between). nil when c has no Llama 3 scaling.
func RopeFreqsLlama3(c Config) []float32 {
	s := c.RopeScaling
	if s.Type != "llama3" {
		return nil
	}
	old := float64(s.OriginalMaxPos)
	lowWavelen, highWavelen := old/float64(s.LowFreqFactor), old/float64(s.HighFreqFactor)
	out := make([]float32, c.HeadDim/2)
	for i := range out {
		freq := 1 / math.Pow(float64(c.RopeTheta), float64(2*i)/float64(c.HeadDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = s.Factor
		default:
			smooth := (old/wavelen - float64(s.LowFreqFactor)) / float64(s.HighFreqFactor-s.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/float64(s.Factor) + smooth))
		}
	}
	return out
}

// PairsFromRotateHalf undoes HF's q/k row permutation: rows [heads*headDim][in] stored
// for rotate-half RoPE (row h·hd + j·hd/2 + i holds pair i's element j) come back in
// GGUF's adjacent-pairs order (row h·hd + 2i + j), as llama.cpp's converter does.
func PairsFromRotateHalf(w []float32, heads, headDim, in int) []float32 {
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < headDim/2; i++ {
			for j := 0; j < 2; j++ {
				src := (h*headDim + j*headDim/2 + i) * in
				dst := (h*headDim + 2*i + j) * in
				copy(out[dst:dst+in], w[src:src+in])
			}
		}
	}
	return out
}
