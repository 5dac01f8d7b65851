package loader

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

func TestStories260KBinMatchesGGUF(t *testing.T) {
	binPath := shared.Path(t, "models", "stories260K", "stories260K.bin")
	ggufPath := shared.Path(t, "models", "stories260K", "stories260K.gguf")

	b, err := Open(binPath, Options{})
	require.NoError(t, err)
	defer b.Close()
	g, err := Open(ggufPath, Options{})
	require.NoError(t, err)
	defer g.Close()

	assert.Equal(t, "llama2c", b.Format)
	assert.Equal(t, "gguf", g.Format)
	want := Config{
		Arch: "llama", Dim: 64, HiddenDim: 172, Layers: 5, Heads: 8, KVHeads: 4, HeadDim: 8,
		VocabSize: 512, MaxSeqLen: 512, RopeTheta: 10000, RopeStyle: RopePairs, NormEps: 1e-5,
		TiedEmbeddings: true,
	}
	assert.Equal(t, want, b.Config)

	// The GGUF (made by llama.cpp's llama2.c converter) differs in two fields only: it
	// records context_length 2048 rather than the trained 512, and it stores the
	// classifier as its own output.weight (a copy of the embedding), so it is untied.
	gc := g.Config
	assert.Equal(t, 2048, gc.MaxSeqLen)
	assert.False(t, gc.TiedEmbeddings)
	gc.MaxSeqLen, gc.TiedEmbeddings = want.MaxSeqLen, want.TiedEmbeddings
	assert.Equal(t, want, gc)

	names, _ := Canonical(b.Config)
	require.Len(t, b.Tensors, len(names))
	for _, name := range names {
		bt, gt := b.Tensors[name], g.Tensors[name]
		require.NotNil(t, gt, name)
		assert.Equal(t, bt.Shape, gt.Shape, name)
		bf, err := bt.Float32()
		require.NoError(t, err)
		gf, err := gt.Float32()
		require.NoError(t, err)
		// F32 tensors of both files alias the mapping.
		assert.Equal(t, unsafe.Pointer(&bt.Data[0]), unsafe.Pointer(&bf[0]), name)
		assert.Equal(t, unsafe.Pointer(&gt.Data[0]), unsafe.Pointer(&gf[0]), name)
		assert.True(t, bitsEqual(bf, gf), "tensor %s differs between .bin and .gguf", name)
	}
	ef, err := b.Tensors["token_embd.weight"].Float32()
	require.NoError(t, err)
	of, err := g.Tensors["output.weight"].Float32()
	require.NoError(t, err)
	assert.True(t, bitsEqual(ef, of), "gguf output.weight is not the embedding")

	bv, gv := b.Vocab, g.Vocab
	require.Len(t, bv.Tokens, 512)
	require.Len(t, gv.Tokens, 512)
	for i := range bv.Tokens {
		// tok512.bin stores <s> and </s> as "\n<s>\n" and "\n</s>\n";
		// tokenizer.ParseLlama2C normalizes them.
		assert.Equal(t, strings.ReplaceAll(gv.Tokens[i], "▁", " "), bv.Tokens[i], "token %d", i)
	}
	assert.True(t, bitsEqual(bv.Scores, gv.Scores))
	assert.Nil(t, bv.Types) // derived by the tokenizer from the pieces
	assert.Len(t, gv.Types, 512)
	assert.Equal(t, []int32{1, 2, 0}, []int32{bv.BOS, bv.EOS, bv.UNK})
	assert.Equal(t, []int32{1, 2, 0}, []int32{gv.BOS, gv.EOS, gv.UNK})
	assert.True(t, bv.AddBOS && gv.AddBOS && bv.AddSpacePrefix && gv.AddSpacePrefix)
	assert.Equal(t, "llama", gv.Model)
	assert.Equal(t, "llama", bv.Model)
	assert.Equal(t, "", g.ChatTemplate)

	// The lower-level reader sees the same file.
	gf, err := OpenGGUF(ggufPath)
	require.NoError(t, err)
	defer gf.Close()
	assert.EqualValues(t, 3, gf.Version)
	assert.Len(t, gf.Tensors, 48)
	arch, _ := gf.String("general.architecture")
	assert.Equal(t, "llama", arch)
	n, ok := gf.Int("llama.block_count")
	assert.True(t, ok)
	assert.EqualValues(t, 5, n)

	require.NoError(t, b.Close())
	require.NoError(t, b.Close()) // idempotent
}

func TestStories260KExplicitTokenizer(t *testing.T) {
	binPath := shared.Path(t, "models", "stories260K", "stories260K.bin")
	tok := shared.Path(t, "models", "stories260K", "tok512.bin")
	ck, err := Open(binPath, Options{TokenizerPath: tok})
	require.NoError(t, err)
	defer ck.Close()
	assert.Len(t, ck.Vocab.Tokens, 512)

	_, err = Open(binPath, Options{TokenizerPath: tok + ".missing"})
	require.ErrorIs(t, err, ErrNoTokenizer)
	assert.ErrorContains(t, err, "stories260K.bin")
	assert.ErrorContains(t, err, "tok512.bin.missing")
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestOpenErrorTexts: what a user reads for the common mistakes — a file that is no
// model, a missing file (its path said once), a llama2.c checkpoint without its
// tokenizer (the flag a command passes named by Hint).
func TestOpenErrorTexts(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("# Vireo\n\nVireo is an LLM inference runtime and server written in Go. Go orchestrates; the\n"), 0o644))
	_, err := Open(readme, Options{})
	require.ErrorIs(t, err, ErrNotModel)
	assert.EqualError(t, err, readme+": not a model file (expected GGUF, llama2.c .bin or a Hugging Face directory)")

	missing := filepath.Join(dir, "nope.gguf")
	_, err = Open(missing, Options{})
	assert.EqualError(t, err, missing+": no such file or directory")

	bin := shared.Path(t, "models", "stories260K", "stories260K.bin")
	lonely := filepath.Join(dir, "lonely.bin")
	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(lonely, data, 0o644))
	_, err = Open(lonely, Options{})
	require.ErrorIs(t, err, ErrNoTokenizer)
	var nt *NoTokenizerError
	require.ErrorAs(t, err, &nt)
	assert.Equal(t, "no tokenizer file for this llama2.c checkpoint: put tok512.bin or tokenizer.bin beside the model, or give its path with -tokenizer FILE", nt.Hint("-tokenizer FILE"))

	garbage := filepath.Join(dir, "garbage.bin")
	require.NoError(t, os.WriteFile(garbage, data[:100], 0o644))
	_, err = Open(garbage, Options{})
	require.ErrorIs(t, err, ErrNotModel)
	assert.ErrorContains(t, err, "read as a llama2.c .bin: llama2c: file is 100 bytes")
}
