package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/vireo-ai/vireo/runtime/model"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// hfNames maps canonical tensor names to Hugging Face ones.
func hfTensorName(canon string) string {
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
	if _, err := fmt.Sscanf(strings.Replace(canon, ".", " ", 2), "blk %d %s", &l, &rest); err != nil {
		panic(canon)
	}
	hf := map[string]string{
		"attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
		"attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
		"attn_output.weight": "self_attn.o_proj.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
		"ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
	}[rest]
	return fmt.Sprintf("model.layers.%d.%s", l, hf)
}

// permuteHF reorders the rows of a q or k projection [heads*hd][in] as HF's
// convert_llama_weights_to_hf.py permute() does:
// w.view(heads, hd/2, 2, in).transpose(1, 2).reshape(heads*hd, in), so that each head's
// adjacent pairs (2i, 2i+1) become (i, i+hd/2), the rotate-half layout.
func permuteHF(w []float32, heads, hd, in int) []float32 {
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < hd/2; i++ {
			for p := 0; p < 2; p++ {
				src := (h*hd + 2*i + p) * in
				dst := (h*hd + p*hd/2 + i) * in
				copy(out[dst:dst+in], w[src:src+in])
			}
		}
	}
	return out
}

// hfTensors converts canonical (pairs-layout) tensor values to HF tensors: HF names,
// q and k rows permuted, stored as typ (the embedding as embTyp).
func hfTensors(t testing.TB, c model.Config, vals map[string][]float32, shapes map[string][]int, names []string, typ, embTyp loader.DType) []*loader.Tensor {
	var out []*loader.Tensor
	for _, name := range names {
		v := vals[name]
		switch {
		case strings.HasSuffix(name, "attn_q.weight"):
			v = permuteHF(v, c.Heads, c.HeadDim, c.Dim)
		case strings.HasSuffix(name, "attn_k.weight"):
			v = permuteHF(v, c.KVHeads, c.HeadDim, c.Dim)
		}
		d := typ
		if name == "token_embd.weight" || name == "output.weight" {
			d = embTyp
		}
		tt, err := loader.NewTensor(hfTensorName(name), d, shapes[name], v)
		require.NoError(t, err)
		out = append(out, tt)
	}
	return out
}

func hfConfigJSON(c model.Config) map[string]any {
	m := map[string]any{
		"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_act": "silu",
		"hidden_size": c.Dim, "intermediate_size": c.HiddenDim, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "vocab_size": c.VocabSize,
		"max_position_embeddings": c.MaxSeqLen, "rope_theta": c.RopeTheta, "rms_norm_eps": c.NormEps,
		"tie_word_embeddings": c.TiedEmbeddings, "attention_bias": false, "torch_dtype": "float32",
		"rope_scaling": nil,
	}
	if c.HeadDim != c.Dim/c.Heads {
		m["head_dim"] = c.HeadDim
	}
	if s := c.RopeScaling; s.Type != "" {
		m["rope_scaling"] = map[string]any{"rope_type": s.Type, "factor": s.Factor, "low_freq_factor": s.LowFreqFactor,
			"high_freq_factor": s.HighFreqFactor, "original_max_position_embeddings": s.OriginalMaxPos}
	}
	return m
}

func writeJSONFile(t testing.TB, path string, v any) {
	b, err := json.MarshalIndent(v, "", " ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func writeSafetensors(t testing.TB, path string, ts []*loader.Tensor) {
	var b bytes.Buffer
	require.NoError(t, loader.WriteSafetensors(&b, ts))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// writeHFWeights writes ts as model.safetensors, or as two shards and an index.
func writeHFWeights(t testing.TB, dir string, ts []*loader.Tensor, sharded bool) {
	if !sharded {
		writeSafetensors(t, filepath.Join(dir, "model.safetensors"), ts)
		return
	}
	names := []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
	half := len(ts) / 2
	wm := map[string]string{}
	for i, tt := range ts {
		wm[tt.Name] = names[min(i/half, 1)]
	}
	writeSafetensors(t, filepath.Join(dir, names[0]), ts[:half])
	writeSafetensors(t, filepath.Join(dir, names[1]), ts[half:])
	writeJSONFile(t, filepath.Join(dir, "model.safetensors.index.json"), map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": wm})
}

// sentencePieceTokenizerJSON writes a SentencePiece BPE vocabulary (pieces spelled with
// "▁") as a tokenizer.json the way transformers' LlamaConverter does: byte_fallback, every
// split of a piece into two pieces a merge, merges ordered by the merged piece's score
// (stable), splits of one piece by the ids of their halves.
func sentencePieceTokenizerJSON(t testing.TB, pieces []string, scores []float32, unk, bos, eos int32) []byte {
	vocab := make(map[string]int, len(pieces))
	for i, p := range pieces {
		vocab[p] = i
	}
	type mg struct {
		l, r  string
		score float32
	}
	var merges []mg
	for id, piece := range pieces {
		if i := int32(id); i == unk || i == bos || i == eos || strings.HasPrefix(piece, "<0x") {
			continue
		}
		runes := []rune(piece)
		var local []mg
		for k := 1; k < len(runes); k++ {
			l, r := string(runes[:k]), string(runes[k:])
			_, okl := vocab[l]
			_, okr := vocab[r]
			if okl && okr {
				local = append(local, mg{l, r, scores[id]})
			}
		}
		sort.SliceStable(local, func(a, b int) bool {
			return vocab[local[a].l] < vocab[local[b].l] || vocab[local[a].l] == vocab[local[b].l] && vocab[local[a].r] < vocab[local[b].r]
		})
		merges = append(merges, local...)
	}
	sort.SliceStable(merges, func(a, b int) bool { return merges[a].score > merges[b].score })
	ms := []string{}
	for _, m := range merges {
		ms = append(ms, m.l+" "+m.r)
	}
	added := []map[string]any{}
	for _, id := range []int32{unk, bos, eos} {
		added = append(added, map[string]any{"id": id, "content": pieces[id], "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	doc := map[string]any{
		"version":      "1.0",
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": pieces[bos], "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{pieces[bos]: map[string]any{"id": pieces[bos], "ids": []int32{bos}, "tokens": []string{pieces[bos]}}}},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": pieces[unk], "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": ms},
	}
	b, err := json.Marshal(doc)
	require.NoError(t, err)
	return b
}

// storiesHFDir writes stories260K (from the llama2.c .bin and tok512.bin) as an HF model
// directory, q/k rows permuted as HF's converter does.
func storiesHFDir(t testing.TB, sharded bool) string {
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	c := ck.Config
	require.Equal(t, loader.RopePairs, c.RopeStyle)
	names, shapes := loader.Canonical(c)
	vals := map[string][]float32{}
	for _, name := range names {
		f, err := ck.Tensors[name].Float32()
		require.NoError(t, err)
		vals[name] = append([]float32(nil), f...)
	}
	dir := t.TempDir()
	writeHFWeights(t, dir, hfTensors(t, c, vals, shapes, names, loader.F32, loader.F32), sharded)
	writeJSONFile(t, filepath.Join(dir, "config.json"), hfConfigJSON(c))

	v := ck.Vocab
	pieces := make([]string, len(v.Tokens))
	for i, p := range v.Tokens {
		pieces[i] = strings.ReplaceAll(p, " ", "▁")
	}
	pieces[v.UNK], pieces[v.BOS], pieces[v.EOS] = "<unk>", "<s>", "</s>"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokenizer.json"), sentencePieceTokenizerJSON(t, pieces, v.Scores, v.UNK, v.BOS, v.EOS), 0o644))
	writeJSONFile(t, filepath.Join(dir, "tokenizer_config.json"), map[string]any{
		"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
		"tokenizer_class": "LlamaTokenizer", "legacy": true,
	})
	writeJSONFile(t, filepath.Join(dir, "generation_config.json"), map[string]any{"bos_token_id": v.BOS, "eos_token_id": v.EOS})
	return dir
}

func openDir(t testing.TB, dir string) *Loaded {
	t.Helper()
	m, err := Open(dir, "", cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// TestStoriesHFGolden: stories260K converted to an HF directory (permuted q/k rows,
// rotate-half RoPE, tokenizer.json) reproduces every golden id; sharded weights give the
// same logits bit for bit.
func TestStoriesHFGolden(t *testing.T) {
	cases := goldenCases(t)
	m := openDir(t, storiesHFDir(t, false))
	require.Equal(t, loader.RopeRotateHalf, m.Config.RopeStyle)
	sharded := openDir(t, storiesHFDir(t, true))
	bin := openStories(t, "stories260K.bin", model.Options{})
	for _, c := range cases {
		got := m.Tokenizer.Encode(c.Prompt, m.Tokenizer.DefaultOptions())
		require.Equal(t, c.PromptIDs, got, "prompt %q", c.Prompt)
		require.Equal(t, c.GreedyIDs, greedy(t, m.Model, c.PromptIDs, len(c.GreedyIDs), 7), "prompt %q", c.Prompt)
		require.Equal(t, strings.ReplaceAll(c.GreedyText, "<0x0A>", "\n"), m.Tokenizer.Decode(c.GreedyIDs))

		seq := append(append([]int32(nil), c.PromptIDs...), c.GreedyIDs...)
		a, b, ref := feedAll(t, m.Model, seq), feedAll(t, sharded.Model, seq), feedAll(t, bin.Model, seq)
		require.Equal(t, a, b, "sharded weights give the same logits")
		requireClose(t, ref, a, 1e-4, "rotate-half with permuted rows agrees with the pairs layout")
	}
	assert.True(t, m.Tokenizer.IsEOS(2))
}

// feedAll feeds seq one chunk at a time and returns the logits after every token past
// the first half, concatenated.
func feedAll(t testing.TB, m *model.Model, seq []int32) []float32 {
	s, err := NewSession(m, 0, 5)
	require.NoError(t, err)
	half := len(seq) / 2
	logits, err := s.Feed(seq[:half])
	require.NoError(t, err)
	out := append([]float32(nil), logits...)
	for _, id := range seq[half:] {
		logits, err = s.Feed([]int32{id})
		require.NoError(t, err)
		out = append(out, logits...)
	}
	return out
}

// requireClose checks |a-b| <= tol * max|want| element-wise.
func requireClose(t testing.TB, want, got []float32, tol float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), msg)
	var scale float64
	for _, x := range want {
		scale = max(scale, math.Abs(float64(x)))
	}
	for i := range want {
		if d := math.Abs(float64(want[i] - got[i])); d > tol*scale {
			require.Failf(t, msg, "element %d: %g vs %g (scale %g, tolerance %g)", i, want[i], got[i], scale, tol)
		}
	}
}

func kv(key string, v any) loader.KV { return loader.KV{Key: key, Value: v} }

// llamaCppRopeFactors computes GGUF's rope_freqs for Llama 3 scaling as llama.cpp's
// convert_hf_to_gguf.py does (LlamaModel.generate_extra_tensors).
func llamaCppRopeFactors(theta float64, headDim int, s model.RopeScaling) []float32 {
	old := float64(s.OriginalMaxPos)
	lowWavelen, highWavelen := old/float64(s.LowFreqFactor), old/float64(s.HighFreqFactor)
	var out []float32
	for i := 0; i < headDim; i += 2 {
		freq := 1 / math.Pow(theta, float64(i)/float64(headDim))
		wavelen := 2 * math.Pi / freq
		switch {
		case wavelen < highWavelen:
			out = append(out, 1)
		case wavelen > lowWavelen:
			out = append(out, s.Factor)
		default:
			smooth := (old/wavelen - float64(s.LowFreqFactor)) / float64(s.HighFreqFactor-s.LowFreqFactor)
			out = append(out, float32(1/((1-smooth)/float64(s.Factor)+smooth)))
		}
	}
	return out
}

// llama3Vocab is the vocabulary of the Llama 3 test: the real Llama 3 tokenizer when the
// tokenizer package's node reference folder ships it, otherwise a small SentencePiece
// vocabulary. It returns the HF tokenizer files and the GGUF tokenizer metadata.
func llama3Vocab(t testing.TB) (size int, tokJSON, tokConfig []byte, meta []loader.KV, real bool) {
	base := filepath.Join("..", "tokenizer", "testdata", "node", "node_modules", "@lenml", "tokenizer-llama3", "models")
	tokJSON, err := os.ReadFile(filepath.Join(base, "tokenizer.json"))
	if err == nil {
		tokConfig, err = os.ReadFile(filepath.Join(base, "tokenizer_config.json"))
		require.NoError(t, err)
		var f struct {
			AddedTokens []struct {
				ID      int    `json:"id"`
				Content string `json:"content"`
				Special bool   `json:"special"`
			} `json:"added_tokens"`
			Model struct {
				Vocab  map[string]int `json:"vocab"`
				Merges []string       `json:"merges"`
			} `json:"model"`
		}
		require.NoError(t, json.Unmarshal(tokJSON, &f))
		size = len(f.Model.Vocab) + len(f.AddedTokens)
		toks := make([]string, size)
		types := make([]int32, size)
		for s, id := range f.Model.Vocab {
			toks[id], types[id] = s, int32(tokenizer.TypeNormal)
		}
		for _, a := range f.AddedTokens {
			toks[a.ID], types[a.ID] = a.Content, int32(tokenizer.TypeUserDefined)
			if a.Special {
				types[a.ID] = int32(tokenizer.TypeControl)
			}
		}
		meta = []loader.KV{
			kv("tokenizer.ggml.model", "gpt2"), kv("tokenizer.ggml.pre", "llama-bpe"),
			kv("tokenizer.ggml.tokens", toks), kv("tokenizer.ggml.token_type", types),
			kv("tokenizer.ggml.merges", f.Model.Merges),
			kv("tokenizer.ggml.bos_token_id", uint32(128000)), kv("tokenizer.ggml.eos_token_id", uint32(128001)),
		}
		return size, tokJSON, tokConfig, meta, true
	}
	t.Logf("Llama 3 tokenizer.json not installed (npm ci --prefix runtime/tokenizer/testdata/node): using a small vocabulary")
	v := tokenizer.SyntheticVocab(300)
	tokJSON = sentencePieceTokenizerJSON(t, v.Tokens, v.Scores, v.UNK, v.BOS, v.EOS)
	types := make([]int32, len(v.Types))
	for i, ty := range v.Types {
		types[i] = int32(ty)
	}
	meta = []loader.KV{
		kv("tokenizer.ggml.model", "llama"), kv("tokenizer.ggml.tokens", v.Tokens), kv("tokenizer.ggml.scores", v.Scores),
		kv("tokenizer.ggml.token_type", types), kv("tokenizer.ggml.bos_token_id", uint32(1)), kv("tokenizer.ggml.eos_token_id", uint32(2)),
	}
	return len(v.Tokens), tokJSON, []byte(`{"bos_token": "<s>", "eos_token": "</s>"}`), meta, false
}

// TestLlama3HFMatchesGGUF: one Llama-3-shaped checkpoint with llama3 RoPE scaling, written
// as an HF directory (permuted rows, rotate-half, rope_scaling) and as GGUF (pairs,
// rope_freqs factors as llama.cpp computes them), gives the same logits through both,
// and the two configurations give the same inverse frequencies.
func TestLlama3HFMatchesGGUF(t *testing.T) {
	vocab, tokJSON, tokConfig, tokMeta, real := llama3Vocab(t)
	c := model.Config{
		Arch: "llama", Dim: 64, HiddenDim: 96, Layers: 2, Heads: 4, KVHeads: 2, HeadDim: 16, VocabSize: vocab,
		MaxSeqLen: 256, RopeTheta: 500000, NormEps: 1e-5, TiedEmbeddings: true,
		// A small original context puts the pairs in all three bands: kept, blended, scaled.
		RopeScaling: model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 64},
	}
	names, shapes := loader.Canonical(c)
	rng := rand.New(rand.NewPCG(3, 7))
	vals := map[string][]float32{}
	for _, name := range names {
		n := 1
		for _, d := range shapes[name] {
			n *= d
		}
		v := make([]float32, n)
		scale := 1 / math.Sqrt(float64(shapes[name][len(shapes[name])-1]))
		for i := range v {
			if len(shapes[name]) == 1 { // norms
				v[i] = float32(1 + 0.1*rng.NormFloat64())
			} else {
				v[i] = float32(scale * rng.NormFloat64())
			}
		}
		if name == "token_embd.weight" { // round through BF16 so both files hold the same values
			tt, err := loader.NewTensor(name, loader.BF16, shapes[name], v)
			require.NoError(t, err)
			v, err = tt.Float32()
			require.NoError(t, err)
		}
		vals[name] = v
	}

	// HF directory.
	hfDir := t.TempDir()
	writeHFWeights(t, hfDir, hfTensors(t, c, vals, shapes, names, loader.F32, loader.BF16), false)
	writeJSONFile(t, filepath.Join(hfDir, "config.json"), hfConfigJSON(c))
	require.NoError(t, os.WriteFile(filepath.Join(hfDir, "tokenizer.json"), tokJSON, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(hfDir, "tokenizer_config.json"), tokConfig, 0o644))

	// GGUF: rows as they are (pairs layout), rope_freqs instead of rope_scaling.
	factors := llamaCppRopeFactors(float64(c.RopeTheta), c.HeadDim, c.RopeScaling)
	var gts []*loader.Tensor
	for _, name := range names {
		d := loader.F32
		if name == "token_embd.weight" {
			d = loader.BF16
		}
		tt, err := loader.NewTensor(name, d, shapes[name], vals[name])
		require.NoError(t, err)
		gts = append(gts, tt)
	}
	rf, err := loader.NewTensor("rope_freqs.weight", loader.F32, []int{c.HeadDim / 2}, factors)
	require.NoError(t, err)
	gts = append(gts, rf)
	meta := append([]loader.KV{
		kv("general.architecture", "llama"),
		kv("llama.context_length", uint32(c.MaxSeqLen)), kv("llama.embedding_length", uint32(c.Dim)),
		kv("llama.feed_forward_length", uint32(c.HiddenDim)), kv("llama.block_count", uint32(c.Layers)),
		kv("llama.attention.head_count", uint32(c.Heads)), kv("llama.attention.head_count_kv", uint32(c.KVHeads)),
		kv("llama.attention.key_length", uint32(c.HeadDim)), kv("llama.attention.value_length", uint32(c.HeadDim)),
		kv("llama.rope.freq_base", c.RopeTheta), kv("llama.attention.layer_norm_rms_epsilon", c.NormEps),
		kv("llama.vocab_size", uint32(c.VocabSize)), kv("llama.rope.dimension_count", uint32(c.HeadDim)),
	}, tokMeta...)
	var buf bytes.Buffer
	require.NoError(t, loader.WriteGGUF(&buf, meta, gts))
	ggufPath := filepath.Join(t.TempDir(), "llama3.gguf")
	require.NoError(t, os.WriteFile(ggufPath, buf.Bytes(), 0o644))
	buf = bytes.Buffer{}

	hf, gg := openDir(t, hfDir), openDir(t, ggufPath)
	require.Equal(t, loader.RopeRotateHalf, hf.Config.RopeStyle)
	require.Equal(t, loader.RopePairs, gg.Config.RopeStyle)
	require.Equal(t, c.RopeScaling, hf.Config.RopeScaling)
	require.Equal(t, factors, gg.Config.RopeFreqFactors)

	// The effective inverse frequencies agree, and scaling changed most of them.
	plain := c
	plain.RopeScaling = model.RopeScaling{}
	rh, rg, r0 := model.RoPEOf(&hf.Config), model.RoPEOf(&gg.Config), model.RoPEOf(&plain)
	scaled := 0
	for i := range rh.InvFreq {
		require.InEpsilon(t, rh.InvFreq[i], rg.InvFreq[i], 1e-6, "pair %d", i)
		if math.Abs(float64(rh.InvFreq[i]/r0.InvFreq[i])-1) > 0.05 {
			scaled++
		}
	}
	assert.Equal(t, float32(1), factors[0], "the fastest pair is kept")
	assert.Equal(t, c.RopeScaling.Factor, factors[len(factors)-1], "the slowest pair is scaled")
	assert.Greater(t, scaled, len(rh.InvFreq)/2)

	var seqs [][]int32
	if real {
		for _, p := range []string{"Hello, world! This is Llama 3.", "The quick brown fox jumps over the lazy dog; 12345 + 678 = ?", "日本語のテキストも。\n\tTabs and   spaces"} {
			opt := tokenizer.EncodeOptions{AddBOS: true}
			ids := hf.Tokenizer.Encode(p, opt)
			require.Equal(t, ids, gg.Tokenizer.Encode(p, opt), "%q", p)
			require.Equal(t, int32(128000), ids[0])
			seqs = append(seqs, ids)
		}
	}
	for n := 0; len(seqs) < 5; n++ { // random ids reach past the original context of 64
		seq := make([]int32, 40+30*n)
		for i := range seq {
			seq[i] = int32(rng.IntN(c.VocabSize))
		}
		seqs = append(seqs, seq)
	}
	for i, seq := range seqs {
		a, b := feedAll(t, gg.Model, seq), feedAll(t, hf.Model, seq)
		requireClose(t, a, b, 1e-4, fmt.Sprintf("sequence %d: HF and GGUF logits", i))
	}

	// Without the scaling the HF model gives other logits: the scaling matters here.
	ck := *hf.ck
	ck.Config.RopeScaling = model.RopeScaling{}
	unscaled, err := model.Load(&ck, cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	a, b := feedAll(t, gg.Model, seqs[len(seqs)-1]), feedAll(t, unscaled, seqs[len(seqs)-1])
	var diff float64
	for i := range a {
		diff = max(diff, math.Abs(float64(a[i]-b[i])))
	}
	assert.Greater(t, diff, 1e-2)
}
