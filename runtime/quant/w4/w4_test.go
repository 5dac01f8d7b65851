package w4

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/quant"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(shared.Path(t, "golden", "gguf-quants", "blocks"), name))
	require.NoError(t, err)
	return raw
}

func f32s(t *testing.T, raw []byte) []float32 {
	require.Zero(t, len(raw)%4)
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func requireBits(t *testing.T, want, got []float32, what string) {
	t.Helper()
	require.Equal(t, len(want), len(got), what)
	for i := range want {
		if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%s: value %d: got %g (%#08x), want %g (%#08x)", what, i, got[i], math.Float32bits(got[i]), want[i],
				math.Float32bits(want[i]))
		}
	}
}

// TestConvertFixtures: Q4_0 and Q4_K fixture blocks (ggml's own quantization of
// input.f32) convert to values equal bit for bit to ggml's dequantization (T.f32), under
// every row shape the 4,096 values allow, through Dequantize, DequantRow and Value.
func TestConvertFixtures(t *testing.T) {
	for _, typ := range []ggml.Type{ggml.Q4_0, ggml.Q4_K} {
		blocks := fixture(t, typ.String()+".bin")
		want := f32s(t, fixture(t, typ.String()+".f32"))
		require.Len(t, want, 4096)
		for _, in := range []int{256, 512, 1024, 4096} {
			out := 4096 / in
			w, err := FromBlocks(typ, out, in, blocks)
			require.NoError(t, err, "%s [%d][%d]", typ, out, in)
			require.NoError(t, w.Check())
			requireBits(t, want, w.Dequantize(), typ.String())
			for r := range out {
				for k := range in {
					if v := w.Value(r, k); math.Float32bits(v) != math.Float32bits(want[r*in+k]) {
						t.Fatalf("%s [%d][%d] Value(%d, %d) = %g, ggml %g", typ, out, in, r, k, v, want[r*in+k])
					}
				}
			}
		}
		// The fixture holds the cases the README lists (d = 0 super-block, constant and
		// all-positive blocks, tiny magnitudes): the conversion also matches ggml's
		// dequantizer here.
		got := make([]float32, 4096)
		require.NoError(t, ggml.Dequantize(typ, got, blocks))
		requireBits(t, want, got, typ.String()+" ggml")
	}
}

// TestConvertRandom: random matrices quantized by ggml's quantizer (odd row counts, every
// row length a multiple of the block) convert exactly, and the level layout is the one
// the package documents (checked from the bytes, not through Pos).
func TestConvertRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(26, 4))
	for _, typ := range []ggml.Type{ggml.Q4_0, ggml.Q4_K} {
		for _, shape := range [][2]int{{1, 256}, {3, 512}, {7, 768}, {13, 1280}} {
			out, in := shape[0], shape[1]
			src := make([]float32, out*in)
			for i := range src {
				src[i] = float32(rng.NormFloat64()) * float32(1+i%5)
			}
			rb, err := typ.RowBytes(in)
			require.NoError(t, err)
			blocks := make([]byte, out*rb)
			require.NoError(t, ggml.Quantize(typ, blocks, src))
			want := make([]float32, out*in)
			require.NoError(t, ggml.Dequantize(typ, want, blocks))
			w, err := FromBlocks(typ, out, in, blocks)
			require.NoError(t, err)
			requireBits(t, want, w.Dequantize(), typ.String())
			// The documented interleave: word t of chunk c holds inputs 32c+8t+o, o even in
			// nibble o/2, o odd in nibble 4+o/2.
			for r := range out {
				for c := 0; c < in/Group; c++ {
					for wt := range 4 {
						word := binary.LittleEndian.Uint32(w.Q[r*in/2+16*c+4*wt:])
						for o := range 8 {
							nib := o / 2
							if o%2 == 1 {
								nib += 4
							}
							q := uint8(word >> (4 * nib) & 15)
							require.Equal(t, w.Level(r, 32*c+8*wt+o), q)
						}
					}
				}
			}
		}
	}
}

// TestPos: every input of a row has its own nibble inside the row's In/2 bytes, and a
// group's 32 inputs fill exactly its 16-byte chunk.
func TestPos(t *testing.T) {
	const in = 512
	seen := map[[2]int]int{}
	for k := range in {
		b, sh := Pos(k)
		require.True(t, b >= 0 && b < in/2 && (sh == 0 || sh == 4), "k %d: byte %d shift %d", k, b, sh)
		require.Equal(t, k/Group, b/16, "k %d leaves its group's chunk", k)
		key := [2]int{b, int(sh)}
		prev, dup := seen[key]
		require.False(t, dup, "k %d and %d share byte %d shift %d", k, prev, b, sh)
		seen[key] = k
	}
	require.Len(t, seen, in)
}

// TestMatMulReference: the reference product equals the float32 product of ggml's
// dequantized weights (bit for bit: the same k order, products rounded before adding),
// on odd row counts, and a NaN placed in x reaches exactly that row's outputs.
func TestMatMulReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 26))
	for _, typ := range []ggml.Type{ggml.Q4_0, ggml.Q4_K} {
		out, in := 9, 768
		src := make([]float32, out*in)
		for i := range src {
			src[i] = float32(rng.NormFloat64())
		}
		rb, _ := typ.RowBytes(in)
		blocks := make([]byte, out*rb)
		require.NoError(t, ggml.Quantize(typ, blocks, src))
		deq := make([]float32, out*in)
		require.NoError(t, ggml.Dequantize(typ, deq, blocks))
		w, err := FromBlocks(typ, out, in, blocks)
		require.NoError(t, err)
		for _, n := range []int{1, 5, 17} {
			x := make([]float32, n*in)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			x[(n-1)*in+3] = float32(math.NaN())
			got := make([]float32, n*out)
			require.NoError(t, MatMul(got, x, n, w))
			want := make([]float32, n*out)
			for i := range n {
				for j := range out {
					var s float32
					for k := range in {
						s += float32(x[i*in+k] * deq[j*in+k])
					}
					want[i*out+j] = s
				}
			}
			requireBits(t, want, got, typ.String())
			for j := range out {
				require.True(t, math.IsNaN(float64(got[(n-1)*out+j])))
				if n > 1 {
					require.False(t, math.IsNaN(float64(got[j])))
				}
			}
		}
	}
}

// TestBadInput: unsupported types, shapes that are not whole blocks, and byte counts that
// do not match are errors, not panics; MatMul refuses short buffers.
func TestBadInput(t *testing.T) {
	q40 := make([]byte, 18*8)
	_, err := FromBlocks(ggml.Q5_K, 1, 256, make([]byte, 176))
	require.ErrorContains(t, err, "do not convert")
	_, err = FromBlocks(ggml.Q4_0, 1, 48, q40)
	require.ErrorContains(t, err, "whole blocks")
	_, err = FromBlocks(ggml.Q4_0, 2, 128, q40[:18*7])
	require.ErrorContains(t, err, "need 2 rows")
	_, err = FromBlocks(ggml.Q4_0, 0, 256, nil)
	require.Error(t, err)
	_, err = FromBlocks(ggml.Q4_0, math.MaxInt/2, 256, q40)
	require.Error(t, err)
	_, err = FromBlocks(ggml.Q4_K, 1, 256, q40[:100])
	require.ErrorContains(t, err, "need 1 rows of 144")
	w, err := FromBlocks(ggml.Q4_0, 2, 128, q40)
	require.NoError(t, err)
	require.Error(t, MatMul(make([]float32, 3), make([]float32, 128), 2, w))
	w.S = w.S[:3]
	require.Error(t, w.Check())
	require.Error(t, MatMul(make([]float32, 4), make([]float32, 256), 2, w))
}

// TestAffineScalesNotF16: why Q4_K keeps its two-level scales: on the fixture, most of
// its non-zero group scales d·sc (and offsets dmin·mn) are not representable in f16, so
// per-group f16 scales would change the dequantized values.
func TestAffineScalesNotF16(t *testing.T) {
	w, err := FromBlocks(ggml.Q4_K, 16, 256, fixture(t, "Q4_K.bin"))
	require.NoError(t, err)
	var groups, inexact int
	for r := range w.Out {
		for g := 0; g < w.In/Group; g++ {
			s, m := w.GroupScale(r, g)
			if s == 0 && m == 0 {
				continue
			}
			groups++
			if half.F16ToF32(half.F32ToF16(s)) != s || half.F16ToF32(half.F32ToF16(m)) != m {
				inexact++
			}
		}
	}
	t.Logf("Q4_K fixture: %d of %d groups' scale or offset is not an f16", inexact, groups)
	require.Greater(t, 2*inexact, groups)
}

// TestQ5KStaysInt8: the measurement behind keeping Q5_K at int8: rounding the fixture's
// Q5_K values to 4 bits (ggml's Q4_K quantizer) moves them further from the Q5_K values
// than the CUDA backend's int8 form (one scale per row of 256) does.
func TestQ5KStaysInt8(t *testing.T) {
	y := f32s(t, fixture(t, "Q5_K.f32"))
	rows, cols := len(y)/256, 256
	blocks := make([]byte, rows*144)
	require.NoError(t, ggml.Quantize(ggml.Q4_K, blocks, y))
	four := make([]float32, len(y))
	require.NoError(t, ggml.Dequantize(ggml.Q4_K, four, blocks))
	q, sc := quant.QuantizeRows(y, rows, cols)
	eight := quant.Dequantize(q, sc, rows, cols)
	rms := func(a []float32) float64 {
		var s float64
		for i := range y {
			d := float64(a[i] - y[i])
			s += d * d
		}
		return math.Sqrt(s / float64(len(y)))
	}
	e4, e8 := rms(four), rms(eight)
	t.Logf("Q5_K fixture: rms error of 4-bit rounding %.3g, of per-row int8 %.3g", e4, e8)
	require.Greater(t, e4, e8)
}
