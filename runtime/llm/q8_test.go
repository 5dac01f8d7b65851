package llm

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// storiesQ8GGUF writes stories260K.gguf again with every matrix whose rows are whole
// Q8_0 blocks stored as Q8_0 (ffn_down, 172 wide, stays F32), as llama.cpp's quantizer
// would, and returns its path.
func storiesQ8GGUF(t testing.TB) string {
	t.Helper()
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.gguf"), loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	g := ck.GGUF
	var meta []loader.KV
	for _, k := range g.Keys {
		if k == "general.alignment" {
			continue
		}
		meta = append(meta, loader.KV{Key: k, Value: g.Metadata[k]})
	}
	var ts []*loader.Tensor
	for _, tn := range g.Tensors {
		f, err := tn.Float32()
		require.NoError(t, err)
		typ := loader.F32
		if len(tn.Shape) == 2 && tn.Cols()%32 == 0 {
			typ = loader.Q8_0
		}
		nt, err := loader.NewTensor(tn.Name, typ, tn.Shape, f)
		require.NoError(t, err)
		ts = append(ts, nt)
	}
	var buf bytes.Buffer
	require.NoError(t, loader.WriteGGUF(&buf, meta, ts))
	path := filepath.Join(t.TempDir(), "stories260K-q8_0.gguf")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	return path
}

func openPath(t testing.TB, path string, opt model.Options) *Loaded {
	t.Helper()
	m, err := Open(path, "", cpu.New(cpu.Options{}), opt)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// TestQ8_0Native: a Q8_0 GGUF's matrices reach the CPU backend as Q8_0 blocks (no float
// copy, no second quantization) with auto weights, and as floats when f32 weights are
// asked for; the two agree closely, and the native model predicts like the f32
// reference teacher-forced.
func TestQ8_0Native(t *testing.T) {
	path := storiesQ8GGUF(t)
	q := openPath(t, path, model.Options{Weights: model.WeightsAuto})
	f := openPath(t, path, model.Options{Weights: model.WeightsF32})
	// auto: every Q8_0 matrix reaches the backend as the file's blocks, the embedding
	// and classifier included; ffn_down (172 wide: F32 in the file) stays f32.
	require.Equal(t, "q8_0 ×32, f32 ×5", q.WeightTypes())
	require.Equal(t, "f32 ×37", f.WeightTypes())
	// q8_0 keeps the file's blocks too (ffn_down, not whole blocks, goes per row); int8
	// requantizes everything per row, as asked.
	require.Equal(t, "q8_0 ×32, int8 ×5", openPath(t, path, model.Options{Weights: model.WeightsQ8_0}).WeightTypes())
	require.Equal(t, "int8 ×37", openPath(t, path, model.Options{Weights: model.WeightsInt8}).WeightTypes())
	require.Less(t, q.WeightBytes, f.WeightBytes/2)

	ref := openStories(t, "stories260K.bin", model.Options{})
	ctx := ref.Config.MaxSeqLen
	positions, agree, agreeDeq := 0, 0, 0
	for _, text := range evalTexts {
		runes := []rune(strings.TrimLeftFunc(readEval(t, text), unicode.IsSpace))
		toks := ref.Tokenizer.Encode(string(runes[:min(len(runes), 6000)]), tokenizer.EncodeOptions{})
		var nllR, nllQ float64
		n := 0
		for _, w := range StridedWindows(int32(ref.Tokenizer.BOS()), toks[:min(len(toks), 1100)], ctx, ctx/2) {
			a, pa := scoreAll(t, ref.Model, w.IDs)
			b, pb := scoreAll(t, q.Model, w.IDs)
			_, pd := scoreAll(t, f.Model, w.IDs)
			for i := w.ScoreFrom; i < len(a); i++ {
				nllR += a[i]
				nllQ += b[i]
				n++
				if pa[i] == pb[i] {
					agree++
				}
				if pd[i] == pb[i] {
					agreeDeq++
				}
			}
		}
		positions += n
		pr, pq := math.Exp(nllR/float64(n)), math.Exp(nllQ/float64(n))
		t.Logf("%s: %d positions, perplexity f32 %.4f Q8_0 native %.4f (%+.3f%%)", text, n, pr, pq, 100*(pq/pr-1))
		require.Less(t, math.Abs(pq/pr-1), 0.005, "%s: Q8_0 perplexity %.4f vs f32 %.4f", text, pq, pr)
	}
	rate, rateDeq := float64(agree)/float64(positions), float64(agreeDeq)/float64(positions)
	t.Logf("teacher-forced argmax agreement, Q8_0 native (W8A8) vs f32: %.4f; vs the same file's weights dequantized to f32: %.4f", rate, rateDeq)
	// Measured: 97.58% against f32 and 98.64% against the dequantized weights (auto:
	// ffn_down, 172 wide, stays f32; activations quantized as llama.cpp does); the gap
	// to per-row int8 weights with float activations (98.00% against f32) is the
	// activation quantization, which costs most on a model this narrow (64 wide: one
	// outlier sets the scale of a block). The bars hold the measured levels, less a
	// near-tie or two, so a regression fails.
	require.GreaterOrEqual(t, rate, 0.972)
	require.GreaterOrEqual(t, rateDeq, 0.982)
}

// TestRolesAgree: on the CPU a token's numerics do not depend on its role. The logits
// after each generated token (decode: one row per pass) are bit for bit the logits of
// the same position scored teacher-forced (the whole sequence as one prompt), for f32,
// per-row int8 and Q8_0 (W8A8) weights alike. So speculative verification rows, which
// run as a prompt-like chunk, reproduce decode exactly.
func TestRolesAgree(t *testing.T) {
	prompt := goldenCases(t)[0].PromptIDs
	for _, c := range []struct {
		name string
		m    *Loaded
	}{
		{"f32", openStories(t, "stories260K.bin", model.Options{})},
		{"int8", openStories(t, "stories260K.bin", model.Options{Weights: model.WeightsInt8})},
		{"q8_0", openPath(t, storiesQ8GGUF(t), model.Options{Weights: model.WeightsAuto})},
	} {
		t.Run(c.name, func(t *testing.T) {
			V := c.m.Config.VocabSize
			s, err := NewSession(c.m.Model, 0, 512)
			require.NoError(t, err)
			logits, err := s.Feed(prompt)
			require.NoError(t, err)
			seq := append([]int32(nil), prompt...)
			var decoded [][]float32
			for i := 0; i < 24; i++ {
				decoded = append(decoded, append([]float32(nil), logits...))
				next := int32(argmax(logits))
				seq = append(seq, next)
				if logits, err = s.Feed([]int32{next}); err != nil {
					t.Fatal(err)
				}
			}
			sc, err := NewScorer(c.m.Model, len(seq))
			require.NoError(t, err)
			all, err := c.m.Forward(sc.ws, sc.kv, []model.Seq{{Tokens: seq, Blocks: sc.blocks, Logits: model.LogitsAll}})
			require.NoError(t, err)
			for i, want := range decoded {
				pos := len(prompt) - 1 + i
				got := all[pos*V : (pos+1)*V]
				for j := range want {
					if math.Float32bits(want[j]) != math.Float32bits(got[j]) {
						t.Fatalf("position %d logit %d: decode %g, teacher-forced %g", pos, j, want[j], got[j])
					}
				}
			}
		})
	}
}
