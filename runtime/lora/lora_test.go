package lora_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
)

// base is a small Llama shape with grouped-query attention and a hidden width unlike
// the model width, so every target has its own [out][in].
func base(style loader.RopeStyle) *loader.Config {
	return &loader.Config{Arch: "llama", Dim: 16, HiddenDim: 24, Layers: 3, Heads: 4, KVHeads: 2, HeadDim: 4,
		VocabSize: 32, MaxSeqLen: 64, RopeTheta: 10000, RopeStyle: style, NormEps: 1e-5}
}

// checkDeltas compares every module's ΔW with the writer's own reference.
func checkDeltas(t *testing.T, a *lora.Adapter, made *loratest.Made, c *loader.Config) {
	t.Helper()
	require.Len(t, a.Modules, len(made.Modules))
	for key := range made.Modules {
		m := a.Module(key[0], lora.Target(key[1]))
		require.NotNil(t, m, "module %v", key)
		want := made.Delta(key[0], lora.Target(key[1]), c.RopeStyle)
		got := m.Delta()
		require.Len(t, got, len(want))
		for i := range want {
			require.InDelta(t, want[i], got[i], 1e-9*(1+math.Abs(want[i])), "module %v element %d", key, i)
		}
	}
}

func TestPEFTRoundTrip(t *testing.T) {
	for _, style := range []loader.RopeStyle{loader.RopePairs, loader.RopeRotateHalf} {
		for _, rs := range []bool{false, true} {
			c := base(style)
			dir := t.TempDir()
			made, err := loratest.WritePEFT(dir, c, loratest.Options{Rank: 4, Alpha: 8, RSLoRA: rs, Seed: 1}, nil)
			require.NoError(t, err)
			a, err := lora.Load(dir, c, 16)
			require.NoError(t, err)
			assert.Equal(t, "peft", a.Format)
			assert.Equal(t, 4, a.Rank)
			assert.Equal(t, rs, a.RSLoRA)
			wantScale := 8.0 / 4
			if rs {
				wantScale = 8 / math.Sqrt(4)
			}
			for _, m := range a.Modules {
				assert.InDelta(t, wantScale, m.Scale, 1e-7)
			}
			assert.Len(t, a.Targets(), int(lora.NumTargets))
			checkDeltas(t, a, made, c)
			// Loading through adapter_config.json's path is the same.
			b, err := lora.Load(filepath.Join(dir, "adapter_config.json"), c, 16)
			require.NoError(t, err)
			assert.Equal(t, a.Modules, b.Modules)
		}
	}
}

// The q and k rows of a PEFT adapter are permuted for a GGUF-ordered base and kept for
// an HF-ordered one; the other targets never are.
func TestPEFTRowOrder(t *testing.T) {
	dir := t.TempDir()
	c := base(loader.RopeRotateHalf)
	_, err := loratest.WritePEFT(dir, c, loratest.Options{Rank: 2, Seed: 3}, nil)
	require.NoError(t, err)
	hf, err := lora.Load(dir, c, 0)
	require.NoError(t, err)
	gg, err := lora.Load(dir, base(loader.RopePairs), 0)
	require.NoError(t, err)
	for i := range hf.Modules {
		h, g := &hf.Modules[i], &gg.Modules[i]
		assert.Equal(t, h.A, g.A)
		if h.Target == lora.TargetQ || h.Target == lora.TargetK {
			assert.NotEqual(t, h.B, g.B, "%s", h.Target)
			heads := c.Heads
			if h.Target == lora.TargetK {
				heads = c.KVHeads
			}
			assert.Equal(t, loader.PairsFromRotateHalf(h.B, heads, c.HeadDim, h.Rank), g.B)
		} else {
			assert.Equal(t, h.B, g.B, "%s", h.Target)
		}
	}
}

func TestGGUFRoundTrip(t *testing.T) {
	for _, style := range []loader.RopeStyle{loader.RopePairs, loader.RopeRotateHalf} {
		c := base(style)
		path := filepath.Join(t.TempDir(), "a.gguf")
		made, err := loratest.WriteGGUF(path, c, loratest.Options{Rank: 3, Alpha: 6, Seed: 2, DType: loader.F16})
		require.NoError(t, err)
		a, err := lora.Load(path, c, 3)
		require.NoError(t, err)
		assert.Equal(t, "gguf", a.Format)
		for _, m := range a.Modules {
			assert.InDelta(t, 2.0, m.Scale, 1e-7)
		}
		checkDeltas(t, a, made, c)
	}
}

// llama.cpp scales by 1 when adapter.lora.alpha is 0 (or absent).
func TestGGUFZeroAlpha(t *testing.T) {
	c := base(loader.RopePairs)
	path := filepath.Join(t.TempDir(), "a.gguf")
	_, err := loratest.WriteGGUF(path, c, loratest.Options{Rank: 3, Alpha: math.SmallestNonzeroFloat32 / 2, Seed: 2})
	require.NoError(t, err)
	a, err := lora.Load(path, c, 0)
	require.NoError(t, err)
	for _, m := range a.Modules {
		assert.Equal(t, float32(1), m.Scale)
	}
}

func TestPartialAndPatterns(t *testing.T) {
	c := base(loader.RopePairs)
	dir := t.TempDir()
	made, err := loratest.WritePEFT(dir, c, loratest.Options{Rank: 4, Alpha: 4, Seed: 5, DType: loader.BF16,
		Targets: []lora.Target{lora.TargetV, lora.TargetDown}, Layers: []int{1},
		Ranks: map[string]int{"down_proj": 2}}, nil)
	require.NoError(t, err)
	a, err := lora.Load(dir, c, 4)
	require.NoError(t, err)
	require.Len(t, a.Modules, 2)
	assert.Equal(t, []lora.Target{lora.TargetV, lora.TargetDown}, a.Targets())
	assert.Nil(t, a.Module(0, lora.TargetV))
	v, d := a.Module(1, lora.TargetV), a.Module(1, lora.TargetDown)
	require.NotNil(t, v)
	require.NotNil(t, d)
	assert.Equal(t, 4, v.Rank)
	assert.Equal(t, 2, d.Rank)
	assert.InDelta(t, 1.0, v.Scale, 1e-7)
	assert.InDelta(t, 2.0, d.Scale, 1e-7) // alpha 4 over its own rank 2
	checkDeltas(t, a, made, c)
	assert.Equal(t, int64(4*(4*16+8*4)+4*(2*24+16*2)), a.Bytes())
}

// refused runs Load and checks the error names what is wrong.
func refused(t *testing.T, path string, c *loader.Config, maxRank int, want ...string) {
	t.Helper()
	a, err := lora.Load(path, c, maxRank)
	require.Error(t, err)
	assert.Nil(t, a)
	for _, w := range want {
		assert.Contains(t, err.Error(), w)
	}
}

func TestRefused(t *testing.T) {
	c := base(loader.RopePairs)
	peft := func(t *testing.T, o loratest.Options, extra map[string]any) string {
		dir := t.TempDir()
		_, err := loratest.WritePEFT(dir, c, o, extra)
		require.NoError(t, err)
		return dir
	}
	t.Run("rank above the maximum", func(t *testing.T) {
		refused(t, peft(t, loratest.Options{Rank: 8}, nil), c, 4, "rank 8", "maximum LoRA rank 4", "--max-lora-rank")
	})
	t.Run("shape of another model", func(t *testing.T) {
		other := *c
		other.Dim, other.Heads, other.HeadDim = 32, 8, 4
		dir := t.TempDir()
		_, err := loratest.WritePEFT(dir, &other, loratest.Options{Rank: 2}, nil)
		require.NoError(t, err)
		refused(t, dir, c, 0, "q_proj", "shape [2 32]", "takes 16 inputs")
	})
	t.Run("more layers than the base", func(t *testing.T) {
		other := *c
		other.Layers = 5
		dir := t.TempDir()
		_, err := loratest.WritePEFT(dir, &other, loratest.Options{Rank: 2, Layers: []int{4}}, nil)
		require.NoError(t, err)
		refused(t, dir, c, 0, "layer 4", "has 3 layers")
	})
	t.Run("unknown target in the config", func(t *testing.T) {
		refused(t, peft(t, loratest.Options{}, map[string]any{"target_modules": []string{"q_proj", "lm_head"}}), c, 0, `"lm_head"`, "cannot adapt")
	})
	for field, v := range map[string]any{"use_dora": true, "peft_type": "IA3", "fan_in_fan_out": true, "bias": "all",
		"modules_to_save": []string{"lm_head"}, "lora_bias": true, "r": 0} {
		t.Run(field, func(t *testing.T) {
			refused(t, peft(t, loratest.Options{}, map[string]any{field: v}), c, 0, field)
		})
	}
	t.Run("rank disagrees with r", func(t *testing.T) {
		refused(t, peft(t, loratest.Options{Rank: 4}, map[string]any{"r": 2}), c, 0, "rank 4", "declares 2")
	})
	t.Run("ambiguous rank_pattern", func(t *testing.T) {
		refused(t, peft(t, loratest.Options{Rank: 4}, map[string]any{"rank_pattern": map[string]int{"q_proj": 4, "self_attn.q_proj": 2}}), c, 0, "rank_pattern keys", "both match")
	})
	// Tensors Vireo cannot apply, added to a valid adapter.
	extraTensor := func(t *testing.T, name string, shape []int) string {
		dir := peft(t, loratest.Options{Rank: 2, Layers: []int{0}}, nil)
		st, err := loader.OpenSafetensors(filepath.Join(dir, "adapter_model.safetensors"))
		require.NoError(t, err)
		ts := st.Tensors
		n := 1
		for _, d := range shape {
			n *= d
		}
		x, err := loader.NewTensor(name, loader.F32, shape, make([]float32, n))
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, loader.WriteSafetensors(&buf, append(ts, x)))
		require.NoError(t, st.Close())
		require.NoError(t, os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), buf.Bytes(), 0o644))
		return dir
	}
	for name, want := range map[string]string{
		"base_model.model.lm_head.lora_A.weight":                           "classifier (lm_head)",
		"base_model.model.model.embed_tokens.lora_embedding_A":             "token embedding",
		"base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias":     "biases",
		"base_model.model.model.layers.0.mlp.q_proj.lora_A.weight":         "belongs to self_attn",
		"base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight": "qkv_proj",
		"base_model.model.model.norm.weight":                               "not a LoRA matrix",
	} {
		t.Run(name, func(t *testing.T) { refused(t, extraTensor(t, name, []int{2, 16}), c, 0, name, want) })
	}
	t.Run("A without B", func(t *testing.T) {
		refused(t, extraTensor(t, "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight", []int{2, 16}), c, 0, "no matching B")
	})
	t.Run("NaN", func(t *testing.T) {
		dir := peft(t, loratest.Options{Rank: 2, Layers: []int{0}, Targets: []lora.Target{lora.TargetQ}}, nil)
		path := filepath.Join(dir, "adapter_model.safetensors")
		st, err := loader.OpenSafetensors(path)
		require.NoError(t, err)
		a, err := st.Tensors[0].Float32()
		require.NoError(t, err)
		a = append([]float32(nil), a...)
		a[3] = float32(math.NaN())
		x, err := loader.NewTensor(st.Tensors[0].Name, loader.F32, st.Tensors[0].Shape, a)
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, loader.WriteSafetensors(&buf, []*loader.Tensor{x, st.Tensors[1]}))
		require.NoError(t, st.Close())
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		refused(t, dir, c, 0, "NaN", "element 3")
	})
	t.Run("not an adapter", func(t *testing.T) {
		dir := t.TempDir()
		refused(t, dir, c, 0, "no adapter_config.json")
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644))
		refused(t, dir, c, 0, "model directory")
		bare := filepath.Join(t.TempDir(), "x.safetensors")
		require.NoError(t, os.WriteFile(bare, []byte("12345678{}"), 0o644))
		refused(t, bare, c, 0, "bare safetensors")
		txt := filepath.Join(t.TempDir(), "notes.txt")
		require.NoError(t, os.WriteFile(txt, []byte("hello"), 0o644))
		refused(t, txt, c, 0, "neither a PEFT adapter directory nor a GGUF adapter")
		refused(t, filepath.Join(dir, "missing"), c, 0, "no such file")
	})
	t.Run("pickle", func(t *testing.T) {
		dir := peft(t, loratest.Options{Rank: 2}, nil)
		require.NoError(t, os.Rename(filepath.Join(dir, "adapter_model.safetensors"), filepath.Join(dir, "adapter_model.bin")))
		refused(t, dir, c, 0, "adapter_model.bin", "PyTorch pickle")
	})
	t.Run("gguf model", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "m.gguf")
		_, err := loratest.WriteGGUF(path, c, loratest.Options{Rank: 2}, loader.KV{Key: "general.type", Value: "model"})
		require.NoError(t, err)
		// The writer put general.type twice; a file the loader refuses is refused too.
		_, err = lora.Load(path, c, 0)
		require.Error(t, err)
	})
	t.Run("gguf other", func(t *testing.T) {
		var buf bytes.Buffer
		require.NoError(t, loader.WriteGGUF(&buf, []loader.KV{{Key: "general.architecture", Value: "llama"}, {Key: "general.type", Value: "model"}}, nil))
		path := filepath.Join(t.TempDir(), "m.gguf")
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		refused(t, path, c, 0, "general.type = model", "want adapter")
		buf.Reset()
		require.NoError(t, loader.WriteGGUF(&buf, []loader.KV{{Key: "general.architecture", Value: "llama"}}, nil))
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		refused(t, path, c, 0, "without general.type = adapter")
	})
	t.Run("gguf architecture", func(t *testing.T) {
		other := *c
		other.Arch = "qwen2"
		path := filepath.Join(t.TempDir(), "a.gguf")
		_, err := loratest.WriteGGUF(path, &other, loratest.Options{Rank: 2})
		require.NoError(t, err)
		refused(t, path, c, 0, "architecture qwen2", "base model is llama")
	})
	t.Run("gguf alora", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.gguf")
		_, err := loratest.WriteGGUF(path, c, loratest.Options{Rank: 2}, loader.KV{Key: "adapter.alora.invocation_tokens", Value: []uint32{1, 2}})
		require.NoError(t, err)
		refused(t, path, c, 0, "aLoRA")
	})
	t.Run("gguf rank", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a.gguf")
		_, err := loratest.WriteGGUF(path, c, loratest.Options{Rank: 9})
		require.NoError(t, err)
		refused(t, path, c, 8, "rank 9", "maximum LoRA rank 8")
	})
	t.Run("gguf unknown tensor", func(t *testing.T) {
		var buf bytes.Buffer
		x, err := loader.NewTensor("token_embd.weight.lora_a", loader.F32, []int{2, 16}, make([]float32, 32))
		require.NoError(t, err)
		require.NoError(t, loader.WriteGGUF(&buf, []loader.KV{{Key: "general.architecture", Value: "llama"}, {Key: "general.type", Value: "adapter"}, {Key: "adapter.type", Value: "lora"}}, []*loader.Tensor{x}))
		path := filepath.Join(t.TempDir(), "a.gguf")
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		refused(t, path, c, 0, "token_embd.weight.lora_a")
	})
}

func TestTargetNames(t *testing.T) {
	var names []string
	for tg := lora.Target(0); tg < lora.NumTargets; tg++ {
		names = append(names, tg.String())
	}
	assert.Equal(t, "q_proj k_proj v_proj o_proj gate_proj up_proj down_proj", strings.Join(names, " "))
}

// A rooted source reads only inside its root: ".." and symbolic links out of it are
// refused, links that stay inside are followed.
func TestRootedSource(t *testing.T) {
	c := base(loader.RopePairs)
	root := t.TempDir()
	outside := t.TempDir()
	_, err := loratest.WritePEFT(filepath.Join(root, "good"), c, loratest.Options{Rank: 2}, nil)
	require.NoError(t, err)
	_, err = loratest.WritePEFT(filepath.Join(outside, "secret"), c, loratest.Options{Rank: 2}, nil)
	require.NoError(t, err)
	_, err = loratest.WriteGGUF(filepath.Join(outside, "x.gguf"), c, loratest.Options{Rank: 2})
	require.NoError(t, err)
	// A directory link out, a file link out inside an otherwise good directory, and a
	// link that stays in.
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "escape")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "x.gguf"), filepath.Join(root, "x.gguf")))
	_, err = loratest.WritePEFT(filepath.Join(root, "mixed"), c, loratest.Options{Rank: 2}, nil)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(root, "mixed", "adapter_model.safetensors")))
	require.NoError(t, os.Symlink(filepath.Join(outside, "secret", "adapter_model.safetensors"), filepath.Join(root, "mixed", "adapter_model.safetensors")))
	require.NoError(t, os.Symlink("good", filepath.Join(root, "alias")))

	r, err := os.OpenRoot(root)
	require.NoError(t, err)
	defer r.Close()
	load := func(p string) (*lora.Adapter, error) { return lora.LoadFrom(lora.Source{Path: p, Root: r}, c, 0) }
	a, err := load("good")
	require.NoError(t, err)
	b, err := load("alias")
	require.NoError(t, err)
	require.Equal(t, a.Sum(), b.Sum())
	for _, p := range []string{"escape", "x.gguf", "mixed", "../" + filepath.Base(outside) + "/secret", filepath.Join(outside, "secret")} {
		_, err := load(p)
		require.Error(t, err, p)
	}
	// The same adapter read again has the same sum; another one does not.
	other, err := lora.Load(filepath.Join(outside, "secret"), c, 0)
	require.NoError(t, err)
	require.Equal(t, a.Sum(), other.Sum(), "same seed, same values") // loratest's default seed
	_, err = loratest.WritePEFT(filepath.Join(outside, "seed2"), c, loratest.Options{Rank: 2, Seed: 2}, nil)
	require.NoError(t, err)
	third, err := lora.Load(filepath.Join(outside, "seed2"), c, 0)
	require.NoError(t, err)
	require.NotEqual(t, a.Sum(), third.Sum())
}
