package ggml

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// fixtureTypes are the types of ../shared/golden/gguf-quants/blocks, with the ggml
// type ids and block shapes its manifest.json gives.
var fixtureTypes = []Type{Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}

func blocksDir(t *testing.T) string {
	return shared.Path(t, "golden", "gguf-quants", "blocks")
}

func readF32(t *testing.T, path string) []float32 {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Zero(t, len(raw)%4, path)
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// TestManifest: the layouts here agree with the fixture's manifest (type ids, values and
// bytes per block).
func TestManifest(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(blocksDir(t), "manifest.json"))
	require.NoError(t, err)
	var m []struct {
		Type      string `json:"type"`
		ID        uint32 `json:"ggml_type_id"`
		BlockSize int    `json:"block_size"`
		TypeSize  int    `json:"type_size"`
	}
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Len(t, m, len(fixtureTypes))
	for _, e := range m {
		typ, ok := ParseType(e.Type)
		require.True(t, ok, e.Type)
		require.Equal(t, e.ID, uint32(typ), e.Type)
		require.Equal(t, e.BlockSize, typ.BlockSize(), e.Type)
		require.Equal(t, e.TypeSize, typ.BlockBytes(), e.Type)
		require.True(t, typ.Quantized(), e.Type)
	}
}

// TestDequantizeFixtures: every fixture block dequantizes bit for bit to ggml's to_float.
func TestDequantizeFixtures(t *testing.T) {
	dir := blocksDir(t)
	for _, typ := range fixtureTypes {
		t.Run(typ.String(), func(t *testing.T) {
			blocks, err := os.ReadFile(filepath.Join(dir, typ.String()+".bin"))
			require.NoError(t, err)
			want := readF32(t, filepath.Join(dir, typ.String()+".f32"))
			got := make([]float32, len(want))
			require.NoError(t, Dequantize(typ, got, blocks))
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("value %d (block %d): got %g (%#08x), ggml %g (%#08x)", i, i/typ.BlockSize(),
						got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
				}
			}
		})
	}
}

// TestQuantizeFixtures: quantizing input.f32 reproduces ggml's reference quantizer byte
// for byte (Q8_K: its bsums of an all-zero block are left unset by ggml, so only the
// blocks with a non-zero value are compared there).
func TestQuantizeFixtures(t *testing.T) {
	dir := blocksDir(t)
	input := readF32(t, filepath.Join(dir, "input.f32"))
	for _, typ := range fixtureTypes {
		t.Run(typ.String(), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, typ.String()+".bin"))
			require.NoError(t, err)
			got := make([]byte, len(want))
			require.NoError(t, Quantize(typ, got, input))
			bs, bb := typ.BlockSize(), typ.BlockBytes()
			for b := 0; b < len(want)/bb; b++ {
				if typ == Q8_K && allZero(input[b*bs:(b+1)*bs]) {
					continue
				}
				g, w := got[b*bb:(b+1)*bb], want[b*bb:(b+1)*bb]
				for k := range g {
					if g[k] != w[k] {
						t.Fatalf("block %d (values %d..%d) byte %d: got %#02x, ggml %#02x\n got  % x\n ggml % x",
							b, b*bs, (b+1)*bs-1, k, g[k], w[k], g, w)
					}
				}
			}
		})
	}
}

func allZero(x []float32) bool {
	for _, v := range x {
		if v != 0 {
			return false
		}
	}
	return true
}

// TestErrors: wrong sizes, unknown types and non-finite values are errors, never a panic.
func TestErrors(t *testing.T) {
	_, err := Q4_K.RowBytes(100)
	require.ErrorContains(t, err, "Q4_K needs rows of a multiple of 256 values, got 100")
	_, err = Type(20).RowBytes(32)
	require.ErrorContains(t, err, "IQ4_NL has no known layout")
	require.Equal(t, "unknown", Type(99).String())
	require.ErrorContains(t, Dequantize(Q4_0, make([]float32, 32), make([]byte, 17)), "32 values of Q4_0 take 18 bytes, got 17")
	require.ErrorContains(t, Quantize(Q6_K, make([]byte, 210), make([]float32, 255)), "multiple of 256")
	x := make([]float32, 256)
	x[7] = float32(math.Inf(-1))
	require.ErrorContains(t, Quantize(Q5_K, make([]byte, 176), x), "value 7 is -Inf")
	x[7] = float32(math.NaN())
	require.ErrorContains(t, Quantize(Q8_0, make([]byte, 8*34), x), "value 7 is NaN")
	require.NoError(t, Quantize(F16, make([]byte, 512), x), "float types convert non-finite values")
	typ, ok := ParseType("q5_k")
	require.True(t, ok)
	require.Equal(t, Q5_K, typ)
	_, ok = ParseType("q4_k_m")
	require.False(t, ok, "a mix is not a type")
	require.False(t, F16.Quantized())
	require.True(t, Q8_0.Quantized())
}

// TestRoundTripBound: on Gaussian data of several scales (fp16 scales stay normal),
// every block type reproduces its input within a loose bound on the relative RMSE of a
// grid of its bit width: it catches a broken codec, not a tuning change.
func TestRoundTripBound(t *testing.T) {
	rng := newRand(1)
	for _, typ := range fixtureTypes {
		for _, scale := range []float32{1e-3, 0.02, 1, 300} {
			x := make([]float32, 1024)
			for i := range x {
				x[i] = scale * float32(rng.NormFloat64())
			}
			q := make([]byte, mustRowBytes(t, typ, len(x)))
			require.NoError(t, Quantize(typ, q, x))
			y := make([]float32, len(x))
			require.NoError(t, Dequantize(typ, y, q))
			var se, ss float64
			for i := range x {
				se += float64(x[i]-y[i]) * float64(x[i]-y[i])
				ss += float64(x[i]) * float64(x[i])
			}
			rel := math.Sqrt(se / ss)
			// Relative RMSE of a b-bit grid on Gaussian data is below about 2^(1-b).
			bits := map[Type]float64{Q2_K: 2, Q3_K: 3, Q4_0: 4, Q4_1: 4, Q4_K: 4, Q5_0: 5, Q5_1: 5, Q5_K: 5, Q6_K: 6, Q8_0: 8, Q8_K: 8}[typ]
			require.Less(t, rel, 1.5*math.Pow(2, 1-bits), "%s scale %g", typ, scale)
		}
	}
}

func mustRowBytes(t *testing.T, typ Type, n int) int {
	b, err := typ.RowBytes(n)
	require.NoError(t, err)
	return b
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }
