package loader

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// tinyTokenizerJSON is a SentencePiece-style BPE tokenizer.json of 8 pieces.
const tinyTokenizerJSON = `{
 "version": "1.0",
 "added_tokens": [
  {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
  {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
  {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
 ],
 "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
 "pre_tokenizer": null,
 "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
  "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
 "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
 "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "byte_fallback": true,
  "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "▁": 3, "a": 4, "b": 5, "▁a": 6, "ab": 7},
  "merges": ["▁ a", "a b"]}
}`

// hfSmall is the config of the small HF test model.
var hfSmall = Config{
	Arch: "llama", Dim: 32, HiddenDim: 64, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 8,
	VocabSize: 8, MaxSeqLen: 64, RopeTheta: 10000, RopeStyle: RopeRotateHalf, NormEps: 1e-5,
}

func hfConfigMap(c Config) map[string]any {
	return map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"hidden_size": c.Dim, "intermediate_size": c.HiddenDim, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "vocab_size": c.VocabSize,
		"max_position_embeddings": c.MaxSeqLen, "rope_theta": c.RopeTheta, "rms_norm_eps": c.NormEps,
		"tie_word_embeddings": c.TiedEmbeddings, "attention_bias": false, "mlp_bias": false,
		"rope_scaling": nil, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16",
	}
}

// hfSmallTensors are random tensors for c under HF names, with their values by
// canonical name.
func hfSmallTensors(t testing.TB, c Config, typ DType) ([]*Tensor, map[string][]float32) {
	ts, vals := smallTensors(t, c, 5)
	for i, tt := range ts {
		nt, err := NewTensor(hfName(tt.Name), typ, tt.Shape, vals[tt.Name])
		require.NoError(t, err)
		ts[i] = nt
	}
	return ts, vals
}

func writeJSON(t testing.TB, dir, name string, v any) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	writeFile(t, dir, name, b)
}

// hfDir writes an HF model directory; files maps extra file names to contents (nil
// contents: leave the file out).
func hfDir(t testing.TB, cfg map[string]any, ts []*Tensor, files map[string][]byte) string {
	dir := t.TempDir()
	writeJSON(t, dir, "config.json", cfg)
	all := map[string][]byte{
		"model.safetensors": encodeSafetensors(t, ts),
		"tokenizer.json":    []byte(tinyTokenizerJSON),
		"tokenizer_config.json": []byte(`{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>",
			"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ bos_token }}D"}]}`),
		"generation_config.json": []byte(`{"bos_token_id": 1, "eos_token_id": [2, 7], "do_sample": true, "temperature": 0.6, "top_p": 0.9, "top_k": 40}`),
	}
	maps.Copy(all, files)
	for name, data := range all {
		if data != nil {
			writeFile(t, dir, name, data)
		}
	}
	return dir
}

func checkValues(t *testing.T, ck *Checkpoint, vals map[string][]float32) {
	t.Helper()
	for name, want := range vals {
		tt := ck.Tensors[name]
		require.NotNil(t, tt, name)
		assert.Equal(t, name, tt.Name)
		got, err := tt.Float32()
		require.NoError(t, err)
		require.Equal(t, want, got, name)
	}
}

func TestHFDirectory(t *testing.T) {
	ts, vals := hfSmallTensors(t, hfSmall, F32)
	inv, err := NewTensor("model.layers.0.self_attn.rotary_emb.inv_freq", F32, []int{4}, []float32{1, 2, 3, 4})
	require.NoError(t, err)
	dir := hfDir(t, hfConfigMap(hfSmall), append(ts, inv), nil)
	ck, err := Open(dir, Options{})
	require.NoError(t, err)
	defer ck.Close()
	assert.Equal(t, "hf", ck.Format)
	assert.Equal(t, dir, ck.Path)
	assert.Equal(t, hfSmall, ck.Config)
	assert.Equal(t, RopeRotateHalf, ck.Config.RopeStyle)
	assert.Len(t, ck.Tensors, len(vals), "inv_freq is not kept")
	checkValues(t, ck, vals)
	require.NotNil(t, ck.Tokenizer)
	assert.Nil(t, ck.Vocab)
	assert.Equal(t, 8, ck.Tokenizer.VocabSize())
	assert.Equal(t, []int32{1, 6, 7}, ck.Tokenizer.Encode("aab", ck.Tokenizer.DefaultOptions()))
	assert.Equal(t, "{{ bos_token }}D", ck.ChatTemplate)
	assert.Equal(t, []int32{2, 7}, ck.EOSIDs)
	g := ck.GenerationDefaults
	require.NotNil(t, g.DoSample)
	require.NotNil(t, g.Temperature)
	require.NotNil(t, g.TopP)
	require.NotNil(t, g.TopK)
	assert.True(t, *g.DoSample)
	assert.Equal(t, 0.6, *g.Temperature)
	assert.Equal(t, 0.9, *g.TopP)
	assert.Equal(t, 40, *g.TopK)
	assert.Nil(t, g.MaxNewTokens)
	require.NoError(t, ck.Close())

	// Tied embeddings: a stored lm_head is ignored, as transformers does; BF16 weights;
	// head_dim differing from hidden/heads; Mistral without a sliding window; the chat
	// template as a string; config.json's eos_token_id when there is no generation config.
	c := hfSmall
	c.TiedEmbeddings, c.HeadDim = true, 16
	ts, vals = hfSmallTensors(t, c, BF16)
	lm, err := NewTensor("lm_head.weight", BF16, []int{c.VocabSize, c.Dim}, make([]float32, c.VocabSize*c.Dim))
	require.NoError(t, err)
	cfg := hfConfigMap(c)
	cfg["model_type"], cfg["architectures"], cfg["head_dim"], cfg["sliding_window"] = "mistral", []string{"MistralForCausalLM"}, 16, nil
	dir = hfDir(t, cfg, append(ts, lm), map[string][]byte{
		"generation_config.json": nil,
		"tokenizer_config.json":  []byte(`{"chat_template": "S", "eos_token": "</s>"}`),
	})
	ck, err = Open(dir, Options{})
	require.NoError(t, err)
	defer ck.Close()
	assert.Equal(t, c, ck.Config)
	assert.NotContains(t, ck.Tensors, "output.weight")
	for name, v := range vals {
		vals[name] = bf16Round(v)
	}
	checkValues(t, ck, vals)
	assert.Equal(t, "S", ck.ChatTemplate)
	assert.Equal(t, []int32{2}, ck.EOSIDs)
	assert.Nil(t, ck.GenerationDefaults.Temperature)

	// Llama 3 rope scaling, and a sliding window as wide as the context.
	cfg = hfConfigMap(hfSmall)
	cfg["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
	cfg["sliding_window"] = 64
	ts, _ = hfSmallTensors(t, hfSmall, F32)
	ck, err = Open(hfDir(t, cfg, ts, nil), Options{})
	require.NoError(t, err)
	defer ck.Close()
	assert.Equal(t, RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 16}, ck.Config.RopeScaling)
}

func bf16Round(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		t, _ := NewTensor("x", BF16, []int{1}, []float32{x})
		f, _ := t.Float32()
		out[i] = f[0]
	}
	return out
}

// shard splits tensors into two safetensors files and an index.
func shard(t testing.TB, ts []*Tensor) map[string][]byte {
	names := [2]string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	half := len(ts) / 2
	wm := map[string]string{}
	for i, tt := range ts {
		wm[tt.Name] = names[min(i/half, 1)]
	}
	idx, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": wm})
	require.NoError(t, err)
	return map[string][]byte{
		"model.safetensors":            nil,
		"model.safetensors.index.json": idx,
		names[0]:                       encodeSafetensors(t, ts[:half]),
		names[1]:                       encodeSafetensors(t, ts[half:]),
	}
}

func TestHFSharded(t *testing.T) {
	ts, vals := hfSmallTensors(t, hfSmall, F32)
	dir := hfDir(t, hfConfigMap(hfSmall), nil, shard(t, ts))
	_, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	require.ErrorIs(t, err, os.ErrNotExist)
	ck, err := Open(dir, Options{})
	require.NoError(t, err)
	defer ck.Close()
	assert.Len(t, ck.Tensors, len(vals))
	checkValues(t, ck, vals)
}

func TestHFBadInput(t *testing.T) {
	ts, _ := hfSmallTensors(t, hfSmall, F32)
	edit := func(kv ...any) map[string]any {
		m := hfConfigMap(hfSmall)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	replaced := func(name string, nt *Tensor) []*Tensor {
		out := slices.Clone(ts)
		for i, tt := range out {
			if tt.Name == name {
				if nt == nil {
					return slices.Delete(out, i, i+1)
				}
				out[i] = nt
			}
		}
		return out
	}
	f32 := func(name string, shape ...int) *Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		tt, err := NewTensor(name, F32, shape, make([]float32, n))
		require.NoError(t, err)
		return tt
	}
	good := encodeSafetensors(t, ts)
	sharded := shard(t, ts)
	llama3 := map[string]any{"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 16}
	withRope := func(kv ...any) map[string]any {
		m := maps.Clone(llama3)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	cases := []struct {
		name  string
		cfg   map[string]any
		ts    []*Tensor
		files map[string][]byte
		want  []string
	}{
		{"no config.json", nil, ts, nil, []string{"without config.json is not a Hugging Face model"}},
		{"config not JSON", nil, ts, map[string][]byte{"config.json": []byte("{")}, []string{"config.json:", "unexpected EOF"}},
		{"missing hidden_size", edit("hidden_size", nil), ts, nil, []string{`config.json: missing "hidden_size"`}},
		{"missing num_hidden_layers", edit("num_hidden_layers", nil), ts, nil, []string{`config.json: missing "num_hidden_layers"`}},
		{"missing vocab_size", edit("vocab_size", nil), ts, nil, []string{`config.json: missing "vocab_size"`}},
		{"missing max_position_embeddings", edit("max_position_embeddings", nil), ts, nil, []string{`config.json: missing "max_position_embeddings"`}},
		{"string size", edit("hidden_size", "32"), ts, nil, []string{`config.json: "hidden_size" is "32", want an integer`}},
		{"float size", edit("intermediate_size", 6.5), ts, nil, []string{`config.json: "intermediate_size" is 6.5, want an integer`}},
		{"zero heads", edit("num_attention_heads", 0), ts, nil, []string{`config.json: implausible "num_attention_heads": 0`}},
		{"kv heads", edit("num_key_value_heads", 3), ts, nil, []string{"config.json: num_key_value_heads 3 does not divide num_attention_heads 4"}},
		{"heads do not divide", edit("num_attention_heads", 5, "num_key_value_heads", 5), ts, nil, []string{"config.json: num_attention_heads 5 does not divide hidden_size 32"}},
		{"odd head_dim", edit("head_dim", 7), ts, nil, []string{"config.json: head dimension 7 is odd"}},
		{"negative eps", edit("rms_norm_eps", -1), ts, nil, []string{`config.json: implausible "rms_norm_eps": -1`}},
		{"no model type", edit("model_type", nil, "architectures", nil), ts, nil, []string{"config.json: no model_type or architectures"}},
		{"mixtral", edit("model_type", "mixtral", "architectures", []string{"MixtralForCausalLM"}, "num_local_experts", 8), ts, nil,
			[]string{`config.json: model_type "mixtral" not supported (mixture of experts)`}},
		{"experts in a llama config", edit("num_local_experts", 8), ts, nil, []string{"config.json: num_local_experts 8: mixture of experts not supported"}},
		{"qwen2", edit("model_type", "qwen2"), ts, nil, []string{`model_type "qwen2" not supported (biases`}},
		{"gemma", edit("model_type", "gemma"), ts, nil, []string{`model_type "gemma" not supported (Gemma's`}},
		{"unknown type", edit("model_type", "rwkv"), ts, nil, []string{`model_type "rwkv" not supported (only "llama" and "mistral")`}},
		{"architecture", edit("architectures", []string{"LlamaForSequenceClassification"}), ts, nil,
			[]string{`architectures ["LlamaForSequenceClassification"] not supported`}},
		{"sliding window", edit("model_type", "mistral", "sliding_window", 16), ts, nil,
			[]string{"config.json: sliding_window 16 is smaller than the context of 64: sliding-window attention not supported"}},
		{"mistral default window", edit("model_type", "mistral", "max_position_embeddings", 32768, "sliding_window", nil), ts, nil,
			[]string{"config.json: sliding_window 4096 is smaller than the context of 32768"}},
		{"activation", edit("hidden_act", "gelu"), ts, nil, []string{`config.json: hidden_act "gelu" not supported`}},
		{"attention bias", edit("attention_bias", true), ts, nil, []string{"config.json: attention_bias is true: biases are not supported"}},
		{"mlp bias", edit("mlp_bias", true), ts, nil, []string{"config.json: mlp_bias is true"}},
		{"rope yarn", edit("rope_scaling", map[string]any{"type": "yarn", "factor": 4}), ts, nil, []string{`config.json rope_scaling: rope_type "yarn" not supported (only llama3)`}},
		{"rope linear", edit("rope_scaling", map[string]any{"rope_type": "linear", "factor": 2}), ts, nil, []string{`rope_type "linear" not supported`}},
		{"rope no type", edit("rope_scaling", map[string]any{"factor": 2}), ts, nil, []string{"config.json rope_scaling: no rope_type"}},
		{"rope not an object", edit("rope_scaling", "llama3"), ts, nil, []string{`config.json: "rope_scaling" is "llama3", want an object`}},
		{"rope missing factor", edit("rope_scaling", withRope("factor", nil)), ts, nil, []string{`config.json rope_scaling: missing "factor"`}},
		{"rope missing original", edit("rope_scaling", withRope("original_max_position_embeddings", nil)), ts, nil,
			[]string{`config.json rope_scaling: missing "original_max_position_embeddings"`}},
		{"rope factor below 1", edit("rope_scaling", withRope("factor", 0.5)), ts, nil, []string{"factor 0.5 is below 1"}},
		{"rope freq factors", edit("rope_scaling", withRope("high_freq_factor", 1)), ts, nil, []string{"high_freq_factor 1 must exceed low_freq_factor 1"}},
		{"no weights", nil, ts, map[string][]byte{"model.safetensors": nil}, []string{"no model.safetensors or model.safetensors.index.json"}},
		{"pytorch weights", nil, ts, map[string][]byte{"model.safetensors": nil, "pytorch_model.bin": []byte("x")}, []string{"found pytorch_model.bin"}},
		{"missing tensor", nil, replaced("model.layers.1.mlp.up_proj.weight", nil), nil, []string{`missing tensor "model.layers.1.mlp.up_proj.weight"`}},
		{"missing lm_head", nil, replaced("lm_head.weight", nil), nil, []string{`missing tensor "lm_head.weight" (tie_word_embeddings is false)`}},
		{"wrong shape", nil, replaced("model.layers.0.self_attn.k_proj.weight", f32("model.layers.0.self_attn.k_proj.weight", 32, 32)), nil,
			[]string{`model.safetensors: tensor "model.layers.0.self_attn.k_proj.weight" has shape [32 32], expected [16 32] from config.json`}},
		{"transposed", nil, replaced("model.layers.0.mlp.down_proj.weight", f32("model.layers.0.mlp.down_proj.weight", 64, 32)), nil,
			[]string{`"model.layers.0.mlp.down_proj.weight" has shape [64 32], expected [32 64]`}},
		{"bias tensor", nil, append(slices.Clone(ts), f32("model.layers.0.self_attn.q_proj.bias", 32)), nil,
			[]string{`model.safetensors: tensor "model.layers.0.self_attn.q_proj.bias" is not part of a Llama model`}},
		{"extra layer", nil, append(slices.Clone(ts), f32("model.layers.2.mlp.up_proj.weight", 64, 32)), nil,
			[]string{`tensor "model.layers.2.mlp.up_proj.weight" is for layer 2 but num_hidden_layers is 2`}},
		{"wrong dtype", nil, ts, map[string][]byte{"model.safetensors": func() []byte {
			b := slices.Clone(good)
			i := strings.Index(string(b), `"dtype":"F32"`)
			copy(b[i:], `"dtype":"I32"`)
			return b
		}()}, []string{"model.safetensors: safetensors: tensor", "has dtype I32, not supported"}},
		{"truncated safetensors", nil, ts, map[string][]byte{"model.safetensors": good[:len(good)-100]}, []string{"model.safetensors: safetensors: tensor", "outside the", "truncated file"}},
		{"header overflow", nil, ts, map[string][]byte{"model.safetensors": append([]byte{0, 0, 0, 0, 0, 0, 0, 0x80}, good[8:]...)}, []string{"model.safetensors: safetensors: header length", "exceeds the limit"}},
		{"empty safetensors", nil, ts, map[string][]byte{"model.safetensors": {}}, []string{"model.safetensors: file is empty"}},
		{"index names a missing shard", nil, ts, func() map[string][]byte {
			m := maps.Clone(sharded)
			m["model-00002-of-00002.safetensors"] = nil
			return m
		}(), []string{"model.safetensors.index.json names a shard that cannot be read: model-00002-of-00002.safetensors: no such file or directory"}},
		{"index maps a tensor to the wrong shard", nil, ts, func() map[string][]byte {
			m := maps.Clone(sharded)
			m["model-00001-of-00002.safetensors"], m["model-00002-of-00002.safetensors"] = m["model-00002-of-00002.safetensors"], m["model-00001-of-00002.safetensors"]
			return m
		}(), []string{"model.safetensors.index.json maps tensor", "which does not hold it"}},
		{"index escapes the directory", nil, ts, map[string][]byte{"model.safetensors": nil,
			"model.safetensors.index.json": []byte(`{"weight_map": {"model.norm.weight": "../model.safetensors"}}`)},
			[]string{`model.safetensors.index.json: shard name "../model.safetensors" is not a file name in the model directory`}},
		{"index without weight_map", nil, ts, map[string][]byte{"model.safetensors": nil, "model.safetensors.index.json": []byte(`{"metadata": {}}`)},
			[]string{"model.safetensors.index.json: empty or missing weight_map"}},
		{"index not JSON", nil, ts, map[string][]byte{"model.safetensors": nil, "model.safetensors.index.json": []byte(`{"weight_map": [}`)},
			[]string{"model.safetensors.index.json: invalid character"}},
		{"eos out of range", nil, ts, map[string][]byte{"generation_config.json": []byte(`{"eos_token_id": [2, 8]}`)},
			[]string{`generation_config.json: "eos_token_id": token id 8 is outside the vocabulary of 8`}},
		{"eos not an id", nil, ts, map[string][]byte{"generation_config.json": []byte(`{"eos_token_id": "</s>"}`)},
			[]string{`generation_config.json: "eos_token_id" holds "</s>", want token ids`}},
		{"bad temperature", nil, ts, map[string][]byte{"generation_config.json": []byte(`{"temperature": "hot"}`)},
			[]string{`generation_config.json: "temperature" is "hot", want a number`}},
		{"no tokenizer", nil, ts, map[string][]byte{"tokenizer.json": nil}, []string{"no tokenizer.json or tokenizer.model"}},
		{"bad tokenizer", nil, ts, map[string][]byte{"tokenizer.json": []byte(`{"model": {"type": "WordPiece"}}`)}, []string{`tokenizer.json: model type "WordPiece" not supported`}},
		{"bad tokenizer config", nil, ts, map[string][]byte{"tokenizer_config.json": []byte(`{"chat_template": 3}`)},
			[]string{"tokenizer_config.json: chat_template is 3, want a string or a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == nil {
				cfg = hfConfigMap(hfSmall)
			}
			dir := hfDir(t, cfg, tc.ts, tc.files)
			if tc.name == "no config.json" {
				require.NoError(t, os.Remove(filepath.Join(dir, "config.json")))
			}
			ck, err := Open(dir, Options{})
			if err == nil {
				ck.Close()
			}
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), dir+": "), "the error starts with the directory: %v", err)
			assert.Equal(t, 1, strings.Count(err.Error(), dir), "and names it once: %v", err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	// No tokenizer at all wraps ErrNoTokenizer.
	_, err := Open(hfDir(t, hfConfigMap(hfSmall), ts, map[string][]byte{"tokenizer.json": nil}), Options{})
	assert.True(t, errors.Is(err, ErrNoTokenizer))
}

// TestGGUFRopeFreqs: rope_freqs.weight fills Config.RopeFreqFactors; its length and
// values are checked, and RoPE scaling keys are accepted or refused by name.
func TestGGUFRopeFreqs(t *testing.T) {
	meta := smallMeta(smallConfig, smallTokens)
	ts, _ := smallTensors(t, smallConfig, 1)
	freqs := func(v ...float32) []*Tensor {
		tt, err := NewTensor("rope_freqs.weight", F32, []int{len(v)}, v)
		require.NoError(t, err)
		return append(slices.Clone(ts), tt)
	}
	open := func(m []KV, tensors []*Tensor) (*Checkpoint, error) {
		ck, err := Open(writeFile(t, t.TempDir(), "m.gguf", encodeGGUF(t, m, tensors)), Options{})
		if err == nil {
			t.Cleanup(func() { ck.Close() })
		}
		return ck, err
	}
	ck, err := open(withMeta(meta, "llama.rope.scaling.type", "none"), freqs(1, 1.5, 4, 8))
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 1.5, 4, 8}, ck.Config.RopeFreqFactors)
	ck, err = open(withMeta(meta, "llama.rope.scaling.type", "linear"), ts) // factor absent: 1
	require.NoError(t, err)
	assert.Nil(t, ck.Config.RopeFreqFactors)

	for _, tc := range []struct {
		name string
		meta []KV
		ts   []*Tensor
		want string
	}{
		{"short", meta, freqs(1, 2, 3), `tensor "rope_freqs.weight" has shape [3], expected [4] (head_dim/2)`},
		{"zero factor", meta, freqs(1, 0, 3, 4), `tensor "rope_freqs.weight": factor 1 is 0`},
		{"linear", withMeta(withMeta(meta, "llama.rope.scaling.type", "linear"), "llama.rope.scaling.factor", float32(4)), ts,
			`llama.rope.scaling.type "linear" with factor 4: linear RoPE scaling not supported`},
		{"scale_linear", withMeta(meta, "llama.rope.scale_linear", float32(2)), ts, "llama.rope.scale_linear 2: linear RoPE scaling not supported"},
		{"yarn", withMeta(meta, "llama.rope.scaling.type", "yarn"), ts, `llama.rope.scaling.type "yarn" not supported (only Llama 3 scaling, via rope_freqs.weight)`},
		{"partial rope", withMeta(meta, "llama.rope.dimension_count", uint32(4)), ts, "llama.rope.dimension_count 4 differs from the head dimension 8: partial RoPE not supported"},
		{"llama3 without factors", withMeta(meta, "llama.rope.scaling.type", "llama3"), ts, `without a rope_freqs.weight tensor`},
	} {
		_, err := open(tc.meta, tc.ts)
		assert.ErrorContains(t, err, tc.want, tc.name)
		assert.ErrorContains(t, err, "m.gguf", tc.name)
	}
}

// TestGGUFByteLevelVocab: a "gpt2" vocabulary (merges, pre-tokenizer) loads and builds a
// tokenizer; end-of-turn ids join the end-of-sequence list.
func TestGGUFByteLevelVocab(t *testing.T) {
	c := smallConfig
	c.VocabSize = 6
	toks := []string{"a", "b", "ab", "Ġ", "Ġab", "<|eot_id|>"}
	meta := smallMeta(c, toks)
	meta = withMeta(meta, "tokenizer.ggml.model", "gpt2")
	meta = withMeta(meta, "tokenizer.ggml.scores", nil)
	meta = withMeta(meta, "tokenizer.ggml.token_type", []int32{1, 1, 1, 1, 1, 3})
	meta = withMeta(meta, "tokenizer.ggml.unknown_token_id", nil)
	meta = withMeta(meta, "tokenizer.ggml.add_bos_token", nil)
	meta = withMeta(meta, "tokenizer.ggml.add_space_prefix", nil)
	meta = withMeta(meta, "tokenizer.ggml.bos_token_id", uint32(5))
	meta = withMeta(meta, "tokenizer.ggml.eos_token_id", uint32(5))
	meta = append(meta, KV{"tokenizer.ggml.merges", []string{"a b", "Ġ ab"}}, KV{"tokenizer.ggml.pre", "llama-bpe"}, KV{"tokenizer.ggml.eot_token_id", uint32(5)})
	ts, _ := smallTensors(t, c, 1)
	ck, err := Open(writeFile(t, t.TempDir(), "m.gguf", encodeGGUF(t, meta, ts)), Options{})
	require.NoError(t, err)
	defer ck.Close()
	v := ck.Vocab
	assert.Equal(t, "gpt2", v.Model)
	assert.Equal(t, "llama-bpe", v.Pre)
	assert.Equal(t, []string{"a b", "Ġ ab"}, v.Merges)
	assert.Equal(t, int32(-1), v.UNK)
	assert.True(t, v.AddBOS, "Llama 3's pre-tokenizer adds BOS by default")
	assert.False(t, v.AddSpacePrefix)
	assert.Equal(t, []int32{5}, v.EOSIDs)
	assert.Nil(t, v.Scores)
}

// TestHFSentencePieceModel: a directory with only tokenizer.model (no tokenizer.json)
// yields a Vocab for tokenizer.New; files may be symlinks, as in the Hugging Face cache.
func TestHFSentencePieceModel(t *testing.T) {
	sp, err := os.ReadFile(shared.Path(t, "models", "llama2-tokenizer", "tokenizer.model"))
	require.NoError(t, err)
	c := hfSmall
	c.VocabSize, c.TiedEmbeddings = 32000, true
	ts, vals := hfSmallTensors(t, c, BF16)
	blobs := t.TempDir()
	writeFile(t, blobs, "weights", encodeSafetensors(t, ts))
	writeFile(t, blobs, "sp", sp)
	dir := hfDir(t, hfConfigMap(c), nil, map[string][]byte{"model.safetensors": nil, "tokenizer.json": nil, "tokenizer_config.json": nil})
	require.NoError(t, os.Symlink(filepath.Join(blobs, "weights"), filepath.Join(dir, "model.safetensors")))
	require.NoError(t, os.Symlink(filepath.Join(blobs, "sp"), filepath.Join(dir, "tokenizer.model")))
	ck, err := Open(dir, Options{})
	require.NoError(t, err)
	defer ck.Close()
	assert.Nil(t, ck.Tokenizer)
	require.NotNil(t, ck.Vocab)
	assert.Len(t, ck.Vocab.Tokens, 32000)
	assert.Equal(t, "llama", ck.Vocab.Model)
	assert.Equal(t, int32(1), ck.Vocab.BOS)
	assert.Equal(t, "", ck.ChatTemplate)
	assert.Len(t, ck.Tensors, len(vals))
}
