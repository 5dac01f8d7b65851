package loader

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func encodeSafetensors(t testing.TB, ts []*Tensor) []byte {
	var b bytes.Buffer
	require.NoError(t, WriteSafetensors(&b, ts))
	return b.Bytes()
}

// rawSafetensors builds a file from a header given as JSON text and n data bytes.
func rawSafetensors(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	vals := []float32{1, -2, 0.5, 3.25, -0.125, 65504}
	var ts []*Tensor
	for _, d := range []DType{F32, F16, BF16} {
		tt, err := NewTensor("w."+d.String(), d, []int{2, 3}, vals)
		require.NoError(t, err)
		ts = append(ts, tt)
	}
	scalar, err := NewTensor("scalar", F32, nil, []float32{7})
	require.NoError(t, err)
	ts = append(ts, scalar, &Tensor{Name: "empty", Type: F16, Shape: []int{0, 4}, Data: []byte{}})
	data := encodeSafetensors(t, ts)
	hlen := binary.LittleEndian.Uint64(data)
	assert.Zero(t, (8+hlen)%8, "the data starts 8-byte aligned")

	f, err := ParseSafetensors(data)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"format": "pt"}, f.Metadata)
	require.Len(t, f.Tensors, len(ts))
	for _, want := range ts {
		got := f.Tensor(want.Name)
		require.NotNil(t, got, want.Name)
		assert.Equal(t, want.Type, got.Type, want.Name)
		assert.Equal(t, want.NumElements(), got.NumElements(), want.Name)
		assert.Equal(t, want.Data, got.Data, want.Name)
	}
	for _, d := range []string{"w.F32", "w.F16", "w.BF16"} {
		got, err := f.Tensor(d).Float32()
		require.NoError(t, err)
		assert.Equal(t, []float32{1, -2, 0.5, 3.25, -0.125, 65504}[:5], got[:5], d) // exact in every type
	}
	assert.Equal(t, []int{}, f.Tensor("scalar").Shape)

	// Tensors come back in offset order, whatever the header order.
	hdr := `{"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	f, err = ParseSafetensors(rawSafetensors(hdr, 8))
	require.NoError(t, err)
	assert.Equal(t, "a", f.Tensors[0].Name)
	assert.Equal(t, "b", f.Tensors[1].Name)

	// The writer refuses what it cannot write.
	q, err := NewTensor("q", Q8_0, []int{32}, make([]float32, 32))
	require.NoError(t, err)
	assert.ErrorContains(t, WriteSafetensors(&bytes.Buffer{}, []*Tensor{q}), `tensor "q": dtype Q8_0 cannot be written`)
	assert.ErrorContains(t, WriteSafetensors(&bytes.Buffer{}, []*Tensor{scalar, scalar}), `"scalar" used twice`)
}

func TestSafetensorsBad(t *testing.T) {
	tensor := func(name, dtype string, shape []int, begin, end int) string {
		b, _ := json.Marshal(map[string]any{name: map[string]any{"dtype": dtype, "shape": shape, "data_offsets": []int{begin, end}}})
		return string(b[1 : len(b)-1])
	}
	good := tensor("w", "F32", []int{2}, 0, 8)
	huge := binary.LittleEndian.AppendUint64(nil, 1<<62)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short for the header length"},
		{"header overflow", append(huge, '{', '}'), "header length 4611686018427387904 exceeds the limit"},
		{"header past EOF", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "truncated: header length 100 but only 2 bytes follow"},
		{"not an object", rawSafetensors(`[1, 2]`, 0), "header is not a JSON object"},
		{"bad JSON", rawSafetensors(`{"w": {"dtype": "F32",`, 0), `tensor "w"`},
		{"trailing data", rawSafetensors(`{}{}`, 0), "trailing data"},
		{"duplicate", rawSafetensors("{"+good+","+good+"}", 8), `tensor "w" appears twice`},
		{"dtype", rawSafetensors("{"+tensor("w", "I64", []int{1}, 0, 8)+"}", 8), `tensor "w" has dtype I64, not supported`},
		{"float8", rawSafetensors("{"+tensor("x", "F8_E4M3", []int{8}, 0, 8)+"}", 8), `tensor "x" has dtype F8_E4M3`},
		{"no dtype", rawSafetensors(`{"w":{"shape":[2],"data_offsets":[0,8]}}`, 8), `tensor "w" has no dtype`},
		{"no shape", rawSafetensors(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, 8), `tensor "w" has no shape`},
		{"negative dim", rawSafetensors("{"+tensor("w", "F32", []int{-2}, 0, 8)+"}", 8), `tensor "w" has implausible shape [-2]`},
		{"huge shape", rawSafetensors("{"+tensor("w", "F32", []int{1 << 29, 1 << 29, 1 << 29}, 0, 8)+"}", 8), `tensor "w": shape [536870912 536870912 536870912] is too large`},
		{"one offset", rawSafetensors(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, 8), "data_offsets must be [begin, end]"},
		{"truncated data", rawSafetensors("{"+good+"}", 4), `tensor "w": data_offsets [0, 8] outside the 4 data bytes`},
		{"reversed offsets", rawSafetensors("{"+tensor("w", "F32", []int{0}, 8, 0)+"}", 8), "outside"},
		{"size mismatch", rawSafetensors("{"+tensor("w", "F32", []int{3}, 0, 8)+"}", 8), `tensor "w": F32 [3] needs 12 bytes, data_offsets [0, 8] hold 8`},
		{"overlap", rawSafetensors("{"+good+","+tensor("v", "F16", []int{2}, 4, 8)+"}", 8), `tensors "w" [0, 8] and "v" [4, 8] overlap`},
		{"overlap past an empty tensor", rawSafetensors("{"+good+","+tensor("e", "F32", []int{0}, 2, 2)+","+tensor("v", "F16", []int{1}, 4, 6)+"}", 8), "overlap"},
		{"metadata not strings", rawSafetensors(`{"__metadata__":{"a":1}}`, 0), "__metadata__ must map strings to strings"},
		{"duplicate metadata", rawSafetensors(`{"__metadata__":{},"__metadata__":{}}`, 0), "duplicate __metadata__"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSafetensors(tc.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), "safetensors")
		})
	}
}

func safetensorsSeeds(t testing.TB) [][]byte {
	ts, _ := smallTensors(t, Config{Dim: 4, HiddenDim: 4, Layers: 1, Heads: 1, KVHeads: 1, HeadDim: 4, VocabSize: 3, TiedEmbeddings: true}, 3)
	good := encodeSafetensors(t, ts)
	mixed := encodeSafetensors(t, func() []*Tensor {
		a, _ := NewTensor("a", F16, []int{2, 2}, []float32{1, 2, 3, 4})
		b, _ := NewTensor("b", BF16, []int{3}, []float32{1, 2, 3})
		return []*Tensor{a, b, {Name: "e", Type: F32, Shape: []int{0}, Data: []byte{}}}
	}())
	return [][]byte{
		good, mixed, good[:len(good)/2], good[:12],
		rawSafetensors(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8),
		rawSafetensors(`{"__metadata__":{"format":"pt"}}`, 0),
		rawSafetensors(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[4,8]},"v":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 8),
	}
}

// FuzzSafetensorsHeader: no input panics or yields tensors whose data lies outside the
// file or disagrees with their shape.
func FuzzSafetensorsHeader(f *testing.F) {
	for _, s := range safetensorsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseSafetensors(data)
		if err != nil {
			return
		}
		for _, tt := range st.Tensors {
			require.NoError(t, tt.checkSize())
			if len(tt.Data) > 0 {
				_, err := tt.Float32()
				require.NoError(t, err)
			}
		}
	})
}
