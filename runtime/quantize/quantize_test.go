package quantize

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/ggufref"
	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
)

// fixtureTarget maps a fixture variant to the --type (and --pure) that made it.
func fixtureTarget(t *testing.T, variant string) (Target, bool) {
	pure := strings.HasSuffix(variant, "_pure")
	name := strings.ToLower(strings.TrimSuffix(variant, "_pure"))
	if pure && name != "q2_k" {
		name += "_m" // llama-quantize --pure with Q3_K_M, Q4_K_M, Q5_K_M
	}
	tg, err := ParseTarget(name)
	require.NoError(t, err)
	return tg, pure
}

// TestLlamaCppFiles: quantizing llama.cpp's F32 fixture model reproduces every file
// llama-quantize made from it byte for byte — metadata, the type of every tensor (the
// mixes' choices), tensor order and every block (the K-quants included). And the round
// trip: the file loads and gives the logits of llama.cpp's file of the same type bit
// for bit, within 1e-4 of llama.cpp's dequantized-f32 logits.
func TestLlamaCppFiles(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	files := ggufref.Files(t)
	for _, v := range ggufref.Variants(t) {
		t.Run(v, func(t *testing.T) {
			tg, pure := fixtureTarget(t, v)
			out := filepath.Join(t.TempDir(), "out.gguf")
			rep, err := Run(filepath.Join(dir, "synth256-F32.gguf"), out, Options{Type: tg, Pure: pure, Threads: 2})
			require.NoError(t, err)
			want := files["synth256-"+v+".gguf"]
			for _, tr := range rep.Tensors {
				require.Equal(t, want.Types[tr.Name], tr.To.String(), tr.Name)
			}
			got, err := os.ReadFile(out)
			require.NoError(t, err)
			require.Equal(t, int64(len(got)), rep.Bytes)
			sum := sha256.Sum256(got)
			if hex.EncodeToString(sum[:]) == want.SHA256 {
				roundTrip(t, out, filepath.Join(dir, "synth256-"+v+".gguf"), "synth256-"+v+".deq-f32.logits.json")
				return
			}
			// Say where it differs.
			ref, err := os.ReadFile(filepath.Join(dir, "synth256-"+v+".gguf"))
			require.NoError(t, err)
			g, err := loader.ParseGGUF(got)
			require.NoError(t, err)
			r, err := loader.ParseGGUF(ref)
			require.NoError(t, err)
			require.Equal(t, r.Keys, g.Keys, "metadata keys")
			for i, rt := range r.Tensors {
				gt := g.Tensors[i]
				require.Equal(t, rt.Name, gt.Name, "tensor %d", i)
				require.Equal(t, rt.GGMLType, gt.GGMLType, rt.Name)
				require.True(t, bytes.Equal(rt.Data, gt.Data), "tensor %s data", rt.Name)
			}
			t.Fatalf("files differ outside the tensors (%d vs %d bytes)", len(got), len(ref))
		})
	}
}

// roundTrip loads ours and theirs with f32 weights: the same logits bit for bit, and
// within 1e-4 of the reference logits ref.
func roundTrip(t *testing.T, ours, theirs, ref string) {
	a, b := loadF32(t, ours), loadF32(t, theirs)
	want := ggufref.ReadLogits(t, ref)
	for _, p := range want.Prompts {
		la, err := ggufref.Forward(a, p.IDs)
		require.NoError(t, err)
		lb, err := ggufref.Forward(b, p.IDs)
		require.NoError(t, err)
		require.Equal(t, lb, la)
	}
	d, where, err := ggufref.MaxAbsDiff(a, want)
	require.NoError(t, err)
	require.LessOrEqual(t, d, 1e-4, where)
}

func loadF32(t *testing.T, path string) *model.Model {
	t.Helper()
	ck, err := loader.Open(path, loader.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(ck, cpu.New(cpu.Options{Threads: 2}), model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	return m
}

// TestSyntheticRoundTrip: synthetic:tiny written as f32 GGUF holds exactly the weights
// and vocabulary of the in-memory synthetic model: same logits bit for bit, same ids.
func TestSyntheticRoundTrip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tiny.gguf")
	rep, err := Run("synthetic:tiny", out, Options{Type: mustTarget(t, "f32")})
	require.NoError(t, err)
	require.Len(t, rep.Tensors, 2+9*4, "embedding, output norm, 9 per layer (tied: no output.weight)")
	be := cpu.New(cpu.Options{Threads: 2})
	want, err := llm.Open("synthetic:tiny", "", be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	got, err := llm.Open(out, "", be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	defer got.Close()
	require.Equal(t, want.Config, got.Config)
	ids := got.Tokenizer.Encode("Once upon a time, 42 €", got.Tokenizer.DefaultOptions())
	require.Equal(t, want.Tokenizer.Encode("Once upon a time, 42 €", want.Tokenizer.DefaultOptions()), ids)
	a, err := ggufref.Forward(want.Model, ids)
	require.NoError(t, err)
	b, err := ggufref.Forward(got.Model, ids)
	require.NoError(t, err)
	require.Equal(t, a, b)

	// And a mix of it loads: the K-quant rules on a tied 4-layer model, rows of 256.
	out2 := filepath.Join(t.TempDir(), "tiny-q4km.gguf")
	rep, err = Run("synthetic:tiny", out2, Options{Type: mustTarget(t, "q4_k_m")})
	require.NoError(t, err)
	types := map[string]string{}
	for _, tr := range rep.Tensors {
		types[tr.Name] = tr.To.String()
	}
	require.Equal(t, "Q6_K", types["token_embd.weight"], "tied: the embedding is the output")
	// use_more_bits(i, 4): i >= 7*4/8 or (i - 4/8)%3 == 2, so layers 2 and 3.
	require.Equal(t, "Q4_K", types["blk.0.attn_v.weight"])
	require.Equal(t, "Q4_K", types["blk.1.ffn_down.weight"])
	require.Equal(t, "Q6_K", types["blk.2.attn_v.weight"])
	require.Equal(t, "Q6_K", types["blk.3.ffn_down.weight"])
	q, err := llm.Open(out2, "", be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	defer q.Close()
}

func mustTarget(t *testing.T, s string) Target {
	tg, err := ParseTarget(s)
	require.NoError(t, err)
	return tg
}

// TestRefusals: what Run refuses, with errors naming the problem, and no OUT (nor a
// partial file) left behind.
func TestRefusals(t *testing.T) {
	dir := ggufref.ModelsDir(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out.gguf")
	q4km := filepath.Join(dir, "synth256-Q4_K_M.gguf")

	_, err := Run(q4km, out, Options{Type: mustTarget(t, "q8_0")})
	require.ErrorContains(t, err, `tensor "output.weight" is already Q6_K: requantizing to Q8_0 rounds twice`)

	// A NaN weight: refused naming the tensor and the row.
	ck, err := loader.Open(filepath.Join(dir, "synth256-F32.gguf"), loader.Options{})
	require.NoError(t, err)
	g := ck.GGUF
	var meta []loader.KV
	for _, k := range g.Keys {
		meta = append(meta, loader.KV{Key: k, Value: g.Metadata[k]})
	}
	var ts []*loader.Tensor
	for _, tt := range g.Tensors {
		f, err := tt.Float32()
		require.NoError(t, err)
		f = append([]float32(nil), f...)
		if tt.Name == "blk.1.ffn_up.weight" {
			f[5*256+3] = float32(math.NaN())
		}
		nt, err := loader.NewTensor(tt.Name, loader.F32, tt.Shape, f)
		require.NoError(t, err)
		ts = append(ts, nt)
	}
	ck.Close()
	var buf bytes.Buffer
	require.NoError(t, loader.WriteGGUF(&buf, meta, ts))
	bad := filepath.Join(tmp, "nan.gguf")
	require.NoError(t, os.WriteFile(bad, buf.Bytes(), 0o644))
	_, err = Run(bad, out, Options{Type: mustTarget(t, "q4_0")})
	require.ErrorContains(t, err, `tensor "blk.1.ffn_up.weight" row 5`)
	require.ErrorContains(t, err, "value 3 is NaN")

	_, err = Run(bad, bad, Options{Type: mustTarget(t, "q4_0")})
	require.ErrorContains(t, err, "is IN")
	_, err = Run(shared.Path(t, "models", "stories260K", "stories260K.bin"), out, Options{Type: mustTarget(t, "q4_0")})
	require.ErrorContains(t, err, "is not a GGUF file")
	_, err = Run("synthetic:nope", out, Options{Type: mustTarget(t, "q4_0")})
	require.ErrorContains(t, err, `unknown synthetic model "synthetic:nope"`)
	_, err = Run(filepath.Join(tmp, "missing.gguf"), out, Options{Type: mustTarget(t, "q4_0")})
	require.ErrorContains(t, err, "missing.gguf")
	_, err = Run(q4km, filepath.Join(tmp, "no", "such", "dir.gguf"), Options{Type: mustTarget(t, "q4_k_m")})
	require.Error(t, err)
	_, err = ParseTarget("q4_k_xl")
	require.ErrorContains(t, err, `unknown type "q4_k_xl" (one of f32, f16, bf16, q8_0`)

	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	for _, e := range left {
		require.Contains(t, []string{"nan.gguf"}, e.Name(), "nothing but the input is left")
	}
}

// TestKeepsQuantizedTensors: a tensor whose type stays is copied as it is, so
// quantizing llama.cpp's Q4_K_M file to q4_k_m gives that file back unchanged, and
// allowing requantization turns it into f16 of its dequantized values.
func TestKeepsQuantizedTensors(t *testing.T) {
	src := filepath.Join(ggufref.ModelsDir(t), "synth256-Q4_K_M.gguf")
	out := filepath.Join(t.TempDir(), "out.gguf")
	_, err := Run(src, out, Options{Type: mustTarget(t, "q4_k_m")})
	require.NoError(t, err)
	a, err := os.ReadFile(src)
	require.NoError(t, err)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(a, b))

	_, err = Run(src, out, Options{Type: mustTarget(t, "f16"), AllowRequantize: true})
	require.NoError(t, err)
	ck, err := loader.Open(out, loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	orig, err := loader.Open(src, loader.Options{})
	require.NoError(t, err)
	defer orig.Close()
	for name, tt := range ck.Tensors {
		want, err := orig.Tensors[name].Float32()
		require.NoError(t, err)
		got, err := tt.Float32()
		require.NoError(t, err)
		if len(tt.Shape) == 1 {
			require.Equal(t, loader.F32, tt.Type, name)
		} else {
			require.Equal(t, loader.F16, tt.Type, name)
		}
		for i := range want {
			require.Equal(t, half.F16ToF32(half.F32ToF16(want[i])), got[i], "%s[%d]", name, i)
		}
	}
	ft, _ := ck.GGUF.Int("general.file_type")
	require.Equal(t, int64(1), ft)
}
