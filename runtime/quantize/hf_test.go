package quantize

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// hfDirFrom writes a GGUF checkpoint as a Hugging Face directory the way HF's converter
// lays one out: HF tensor names, q/k rows permuted for rotate-half RoPE, config.json,
// and the SentencePiece vocabulary as a tokenizer.json (byte_fallback BPE whose merges
// split each piece in two, ordered by the piece's score, as transformers' LlamaConverter
// writes them).
func hfDirFrom(t *testing.T, ck *loader.Checkpoint) string {
	c := ck.Config
	dir := t.TempDir()
	hfName := func(canon string) string {
		switch canon {
		case "token_embd.weight":
			return "model.embed_tokens.weight"
		case "output_norm.weight":
			return "model.norm.weight"
		case "output.weight":
			return "lm_head.weight"
		}
		var l int
		var rest string
		fmt.Sscanf(canon, "blk.%d.%s", &l, &rest)
		return fmt.Sprintf("model.layers.%d.%s", l, map[string]string{
			"attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
			"attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
			"attn_output.weight": "self_attn.o_proj.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
			"ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
		}[rest])
	}
	permute := func(w []float32, heads int) []float32 { // pairs -> rotate-half
		hd, in := c.HeadDim, c.Dim
		out := make([]float32, len(w))
		for h := 0; h < heads; h++ {
			for i := 0; i < hd/2; i++ {
				for j := 0; j < 2; j++ {
					copy(out[(h*hd+j*hd/2+i)*in:][:in], w[(h*hd+2*i+j)*in:][:in])
				}
			}
		}
		return out
	}
	names, shapes := loader.Canonical(c)
	var ts []*loader.Tensor
	for _, name := range names {
		f, err := ck.Tensors[name].Float32()
		require.NoError(t, err)
		switch {
		case strings.HasSuffix(name, "attn_q.weight"):
			f = permute(f, c.Heads)
		case strings.HasSuffix(name, "attn_k.weight"):
			f = permute(f, c.KVHeads)
		}
		tt, err := loader.NewTensor(hfName(name), loader.F32, shapes[name], f)
		require.NoError(t, err)
		ts = append(ts, tt)
	}
	var buf bytes.Buffer
	require.NoError(t, loader.WriteSafetensors(&buf, ts))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), buf.Bytes(), 0o644))
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"hidden_size": c.Dim, "intermediate_size": c.HiddenDim, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "vocab_size": c.VocabSize,
		"max_position_embeddings": c.MaxSeqLen, "rope_theta": c.RopeTheta, "rms_norm_eps": c.NormEps,
		"tie_word_embeddings": c.TiedEmbeddings, "torch_dtype": "float32",
	})

	v := ck.Vocab
	vocab := map[string]int{}
	for i, p := range v.Tokens {
		vocab[p] = i
	}
	type merge struct {
		l, r  string
		score float32
		id    int
	}
	var merges []merge
	for id, p := range v.Tokens {
		if i32 := int32(id); i32 == v.UNK || i32 == v.BOS || i32 == v.EOS || strings.HasPrefix(p, "<0x") {
			continue
		}
		r := []rune(p)
		for k := 1; k < len(r); k++ {
			if _, ok := vocab[string(r[:k])]; ok {
				if _, ok := vocab[string(r[k:])]; ok {
					merges = append(merges, merge{string(r[:k]), string(r[k:]), v.Scores[id], id})
				}
			}
		}
	}
	sort.SliceStable(merges, func(a, b int) bool { return merges[a].score > merges[b].score })
	var ms []string
	for _, m := range merges {
		ms = append(ms, m.l+" "+m.r)
	}
	var added []map[string]any
	for _, id := range []int32{v.UNK, v.BOS, v.EOS} {
		added = append(added, map[string]any{"id": id, "content": v.Tokens[id], "special": true})
	}
	writeJSON(t, filepath.Join(dir, "tokenizer.json"), map[string]any{
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single": []any{map[string]any{"SpecialToken": map[string]any{"id": v.Tokens[v.BOS]}}, map[string]any{"Sequence": map[string]any{"id": "A"}}}},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "unk_token": v.Tokens[v.UNK], "byte_fallback": true, "fuse_unk": true, "vocab": vocab, "merges": ms},
	})
	writeJSON(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>"})
	return dir
}

func writeJSON(t *testing.T, path string, v any) {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestHFDirectory: llama.cpp's F32 fixture model written as an HF directory and
// quantized gives the tensors (q/k rows back in GGUF order) of quantizing the GGUF
// itself, byte for byte, a tokenizer that encodes alike, and the same logits.
func TestHFDirectory(t *testing.T) {
	src := filepath.Join(ggufref.ModelsDir(t), "synth256-F32.gguf")
	ck, err := loader.Open(src, loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	hf := hfDirFrom(t, ck)
	tmp := t.TempDir()
	fromHF, fromGGUF := filepath.Join(tmp, "hf.gguf"), filepath.Join(tmp, "gguf.gguf")
	_, err = Run(hf, fromHF, Options{Type: mustTarget(t, "q5_k_m")})
	require.NoError(t, err)
	_, err = Run(src, fromGGUF, Options{Type: mustTarget(t, "q5_k_m")})
	require.NoError(t, err)

	a, err := loader.Open(fromHF, loader.Options{})
	require.NoError(t, err)
	defer a.Close()
	b, err := loader.Open(fromGGUF, loader.Options{})
	require.NoError(t, err)
	defer b.Close()
	require.Equal(t, b.Config, a.Config)
	require.Equal(t, len(b.Tensors), len(a.Tensors))
	for name, tb := range b.Tensors {
		ta := a.Tensors[name]
		require.NotNil(t, ta, name)
		require.Equal(t, tb.Type, ta.Type, name)
		require.True(t, bytes.Equal(tb.Data, ta.Data), name)
	}
	be := cpu.New(cpu.Options{Threads: 2})
	ma, err := llm.Open(fromHF, "", be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	defer ma.Close()
	mb, err := llm.Open(fromGGUF, "", be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	defer mb.Close()
	for _, s := range []string{"Once upon a time, there was a little girl named Lily.", "Tom and his dog went to the big red house.", "zq\n\t x  y"} {
		ids := ma.Tokenizer.Encode(s, ma.Tokenizer.DefaultOptions())
		require.Equal(t, mb.Tokenizer.Encode(s, mb.Tokenizer.DefaultOptions()), ids, "%q", s)
		la, err := ggufref.Forward(ma.Model, ids)
		require.NoError(t, err)
		lb, err := ggufref.Forward(mb.Model, ids)
		require.NoError(t, err)
		require.Equal(t, lb, la)
	}
}
