package compress_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/compress"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/quantize"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

const text = "Once upon a time, there was a little girl named Lily. She loved to play outside with her friends. One day, she found a shiny red ball in the garden and ran to show her mother."

// logits runs the model over text (BOS first) and returns every position's logits.
func logits(t *testing.T, path string, w model.WeightType) []float32 {
	t.Helper()
	m, err := llm.Open(path, "", cpu.New(cpu.Options{}), model.Options{Weights: w})
	require.NoError(t, err)
	defer m.Close()
	ids := append([]int32{m.Tokenizer.BOS()}, m.Tokenizer.Encode(text, tokenizer.EncodeOptions{})...)
	ws, err := m.NewWorkspace(len(ids), len(ids))
	require.NoError(t, err)
	nb := (len(ids) + model.DefaultBlockSize - 1) / model.DefaultBlockSize
	kv, err := m.NewKVCache(nb, model.DefaultBlockSize)
	require.NoError(t, err)
	blocks := make([]int32, nb)
	for i := range blocks {
		blocks[i] = int32(i)
	}
	out, err := m.Forward(ws, kv, []model.Seq{{Tokens: ids, Blocks: blocks, Logits: model.LogitsAll}})
	require.NoError(t, err)
	return append([]float32(nil), out...)
}

func requireLogitsNear(t *testing.T, want, got []float32, tol float64, msg string) {
	t.Helper()
	require.Len(t, got, len(want))
	var worst float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(want[i]-got[i])))
	}
	t.Logf("%s: largest logit difference %g (tolerance %g)", msg, worst, tol)
	require.LessOrEqual(t, worst, tol, "%s: largest logit difference %g", msg, worst)
}

func stories(t *testing.T) string { return shared.Path(t, "models", "stories260K", "stories260K.gguf") }

// Low-rank at full rank reproduces every layer, so the model's logits, within float
// rounding; the checkpoint round-trips through the GGUF file and the loader.
func TestFullRankRoundTrip(t *testing.T) {
	in := stories(t)
	out := filepath.Join(t.TempDir(), "full.gguf")
	rep, err := compress.Run(in, out, compress.Options{Rank: compress.RankRule{Fraction: 1}, AllowLarger: true})
	require.NoError(t, err)
	require.Len(t, rep.Matrices, 5*7)
	for _, m := range rep.Matrices {
		require.Equal(t, "low-rank", m.FormStr, m.Name)
		require.Equal(t, min(m.Out, m.In), m.Rank, m.Name)
		require.InDelta(t, 1, m.Energy, 1e-9, m.Name)
	}
	ck, err := loader.Open(out, loader.Options{})
	require.NoError(t, err)
	v, _ := ck.GGUF.Int(loader.KeyCompressVersion)
	require.EqualValues(t, 1, v)
	recipe, _ := ck.GGUF.String(loader.KeyCompressRecipe)
	require.Equal(t, rep.Recipe, recipe)
	require.Nil(t, ck.Tensors["blk.2.ffn_down.weight"])
	require.Equal(t, []int{64, 172}, ck.Tensors["blk.2.ffn_down.weight.lowrank_a"].Shape)
	require.Equal(t, []int{64, 64}, ck.Tensors["blk.2.ffn_down.weight.lowrank_b"].Shape)
	require.NoError(t, ck.Close())
	requireLogitsNear(t, logits(t, in, model.WeightsF32), logits(t, out, model.WeightsF32), 2e-4, "full-rank factors, f32")
	// A file compressed once is not compressed again, nor requantized.
	_, err = compress.Run(out, filepath.Join(t.TempDir(), "x.gguf"), compress.Options{Prune: compress.PruneMagnitude})
	require.ErrorContains(t, err, "already compressed")
	_, err = quantize.Run(out, filepath.Join(t.TempDir(), "q.gguf"), quantize.Options{Type: mustTarget(t, "q8_0")})
	require.ErrorContains(t, err, "compressed by vireo compress")
}

func mustTarget(t *testing.T, name string) quantize.Target {
	tg, err := quantize.ParseTarget(name)
	require.NoError(t, err)
	return tg
}

// maskedDense writes the dense checkpoint a 2:4 checkpoint stands for: every 2:4 matrix
// expanded to its masked weights.
func maskedDense(t *testing.T, sparsePath, out string) {
	t.Helper()
	g, err := loader.OpenGGUF(sparsePath)
	require.NoError(t, err)
	defer g.Close()
	var meta []loader.KV
	for _, k := range g.Keys {
		if k != loader.KeyCompressVersion && k != loader.KeyCompressRecipe {
			meta = append(meta, loader.KV{Key: k, Value: g.Metadata[k]})
		}
	}
	var ts []*loader.Tensor
	for _, tn := range g.Tensors {
		name, isVals := cutSuffix(tn.Name, loader.SuffixSparse24)
		switch {
		case isVals:
			vals, err := tn.Float32()
			require.NoError(t, err)
			m := g.Tensor(name + loader.SuffixSparse24Meta)
			outDim, in := tn.Shape[0], 2*tn.Shape[1]
			d, err := loader.NewTensor(name, loader.F32, []int{outDim, in}, backend.ExpandSparse24(vals, m.Data, outDim, in))
			require.NoError(t, err)
			ts = append(ts, d)
		case len(tn.Name) > len(loader.SuffixSparse24Meta) && tn.Name[len(tn.Name)-len(loader.SuffixSparse24Meta):] == loader.SuffixSparse24Meta:
		default:
			ts = append(ts, tn)
		}
	}
	f, err := os.Create(out)
	require.NoError(t, err)
	require.NoError(t, loader.WriteGGUF(f, meta, ts))
	require.NoError(t, f.Close())
}

func cutSuffix(s, suf string) (string, bool) {
	if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
		return s[:len(s)-len(suf)], true
	}
	return "", false
}

// A 2:4 checkpoint runs the 2:4 kernels and gives the logits of the dense model with the
// masked weights (f32, and int8 where the kept values' row scales are the masked rows'),
// for magnitude and Wanda masks, in F32 and F16 storage.
func TestSparse24MatchesMaskedDense(t *testing.T) {
	in := stories(t)
	calib := shared.Path(t, "eval", "tinystories-train-prefix.txt")
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		opt  compress.Options
	}{
		{"magnitude", compress.Options{Prune: compress.PruneMagnitude}},
		{"wanda-ffn-f16", compress.Options{Prune: compress.PruneWanda, Sparse: []string{"ffn_gate", "ffn_up", "ffn_down"}, Type: ggml.F16,
			Calib: compress.CalibOptions{Path: calib, Skip: 8192, Tokens: 1024}}},
	} {
		sp := filepath.Join(dir, c.name+".gguf")
		rep, err := compress.Run(in, sp, c.opt)
		require.NoError(t, err, c.name)
		for _, m := range rep.Matrices {
			require.Equal(t, "2:4", m.FormStr, m.Name)
			require.EqualValues(t, m.Out*m.In/2, m.Params)
		}
		dense := filepath.Join(dir, c.name+"-dense.gguf")
		maskedDense(t, sp, dense)
		for _, w := range []model.WeightType{model.WeightsF32, model.WeightsInt8} {
			requireLogitsNear(t, logits(t, dense, w), logits(t, sp, w), 2e-4, c.name+" "+w.String())
		}
		// The kernels read half the block weights (and metadata) per token.
		m, err := llm.Open(sp, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsF32})
		require.NoError(t, err)
		md, err := llm.Open(dense, "", cpu.New(cpu.Options{}), model.Options{Weights: model.WeightsF32})
		require.NoError(t, err)
		require.Less(t, m.WeightBytes, md.WeightBytes)
		m.Close()
		md.Close()
	}
}

// Wanda, calibrated on the training text, keeps a different mask than magnitude (its
// input norms are not uniform), and whitening changes the factors; both need the text.
func TestCalibration(t *testing.T) {
	in := stories(t)
	calib := shared.Path(t, "eval", "tinystories-train-prefix.txt")
	mag, err := compress.Compress(in, compress.Options{Prune: compress.PruneMagnitude})
	require.NoError(t, err)
	wanda, err := compress.Compress(in, compress.Options{Prune: compress.PruneWanda, Calib: compress.CalibOptions{Path: calib, Tokens: 2048}})
	require.NoError(t, err)
	require.Equal(t, 2048, wanda.Report.CalibTokens)
	differ := 0
	for i, tn := range mag.Tensors {
		if _, ok := cutSuffix(tn.Name, loader.SuffixSparse24Meta); ok {
			require.Equal(t, tn.Name, wanda.Tensors[i].Name)
			for k := range tn.Data {
				if tn.Data[k] != wanda.Tensors[i].Data[k] {
					differ++
				}
			}
		}
	}
	require.Greater(t, differ, 1000, "metadata bytes where Wanda's mask differs from magnitude's")
	_, err = compress.Compress(in, compress.Options{Prune: compress.PruneWanda, Calib: compress.CalibOptions{Path: calib, Skip: 1 << 20}})
	require.ErrorContains(t, err, "need more")
	_, err = compress.Compress(in, compress.Options{Rank: compress.RankRule{Budget: 0.5}, Whiten: true,
		Calib: compress.CalibOptions{Path: calib, Tokens: 1024, MaxBytes: 1000}})
	require.ErrorContains(t, err, "input statistics would take more than 1000 bytes")
}

func TestOptionErrors(t *testing.T) {
	in := stories(t)
	for _, c := range []struct {
		opt  compress.Options
		want string
	}{
		{compress.Options{}, "nothing to do"},
		{compress.Options{Rank: compress.RankRule{Budget: 0.5, Energy: 0.9}}, "exactly one"},
		{compress.Options{Rank: compress.RankRule{Budget: 3}}, "outside (0, 1]"},
		{compress.Options{Prune: "random"}, "unknown 2:4 criterion"},
		{compress.Options{Prune: compress.PruneWanda}, "need calibration text"},
		{compress.Options{Prune: compress.PruneMagnitude, Calib: compress.CalibOptions{Path: "x"}}, "neither whitening nor Wanda"},
		{compress.Options{Rank: compress.RankRule{Budget: 0.5}, Prune: compress.PruneMagnitude}, "name which matrices get which"},
		{compress.Options{Rank: compress.RankRule{Budget: 0.5}, LowRank: []string{"ffn_up"}, Prune: compress.PruneMagnitude, Sparse: []string{"ffn_up"}}, "both low-rank and 2:4"},
		{compress.Options{Prune: compress.PruneMagnitude, Sparse: []string{"output"}}, "unknown matrix"},
		{compress.Options{Prune: compress.PruneMagnitude, Type: ggml.Q8_0}, "F32, F16 or BF16"},
		{compress.Options{Whiten: true}, "nothing to do"},
	} {
		_, err := compress.Compress(in, c.opt)
		require.ErrorContains(t, err, c.want, "%+v", c.opt)
	}
	_, err := compress.Run(in, in, compress.Options{Prune: compress.PruneMagnitude})
	require.ErrorContains(t, err, "OUT")
	_, err = compress.Compress("/nonexistent.gguf", compress.Options{Prune: compress.PruneMagnitude})
	require.Error(t, err)
}

// A mixed recipe (low-rank attention, 2:4 FFN) on a synthetic shape loads and runs.
func TestMixedSynthetic(t *testing.T) {
	res, err := compress.Compress("synthetic:tiny", compress.Options{
		Rank: compress.RankRule{Budget: 0.5}, LowRank: []string{"attn_q", "attn_k", "attn_v", "attn_output"},
		Prune: compress.PruneMagnitude, Sparse: []string{"ffn_gate", "ffn_up", "ffn_down"}, Type: ggml.BF16})
	require.NoError(t, err)
	forms := map[string]int{}
	for _, m := range res.Report.Matrices {
		forms[m.FormStr]++
	}
	require.Positive(t, forms["low-rank"])
	require.Positive(t, forms["2:4"])
	out := filepath.Join(t.TempDir(), "mixed.gguf")
	_, err = res.Write(out)
	require.NoError(t, err)
	for _, w := range []model.WeightType{model.WeightsF32, model.WeightsInt8} {
		m, err := llm.Open(out, "", cpu.New(cpu.Options{}), model.Options{Weights: w})
		require.NoError(t, err)
		s, err := llm.NewSession(m.Model, 16, 8)
		require.NoError(t, err)
		lg, err := s.Feed([]int32{1, 2, 3})
		require.NoError(t, err)
		for _, v := range lg {
			require.False(t, math.IsNaN(float64(v)))
		}
		m.Close()
	}
}
