package cpu_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
	"github.com/vireo-ai/vireo/runtime/loader"
)

// q8Matrix quantizes random values to GGUF Q8_0 rows with the loader's encoder (the
// file format), returning the blocks and their dequantized floats.
func q8Matrix(t testing.TB, r *rand.Rand, out, in int) ([]byte, []float32) {
	vals := make([]float32, out*in)
	for i := range vals {
		vals[i] = float32(r.NormFloat64()) * 0.05
	}
	tn, err := loader.NewTensor("w", loader.Q8_0, []int{out, in}, vals)
	require.NoError(t, err)
	deq, err := tn.Float32()
	require.NoError(t, err)
	return tn.Data, deq
}

func f32Tensor(t testing.TB, be *cpu.Backend, rows, cols int, data []float32) backend.Tensor {
	x, err := be.Alloc(backend.F32, rows, cols)
	require.NoError(t, err)
	copy(cpu.Float32s(x), data)
	return x
}

// TestMatMulQ8_0 checks the native Q8_0 MatMul: every token's outputs are exactly what
// it gets alone (any batch, any split over threads, the tile and the one-token kernel
// alike), accumulate adds, and the result is the dequantized product to within the
// activation quantization error.
func TestMatMulQ8_0(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, threads := range []int{1, 2, 3} {
		be := cpu.New(cpu.Options{Threads: threads})
		t.Cleanup(func() { be.Close() })
		require.True(t, be.LoadsBlocks(backend.Q8_0))
		for _, sh := range [][2]int{{1, 32}, {3, 64}, {4, 32}, {5, 96}, {13, 64}, {64, 256}, {300, 512}} {
			out, in := sh[0], sh[1]
			blocks, deq := q8Matrix(t, r, out, in)
			w, err := be.LoadWeight(&backend.HostWeight{Name: "w", Out: out, In: in, Blocks: blocks, BlockType: backend.Q8_0})
			require.NoError(t, err)
			require.Equal(t, backend.Q8_0, w.W.DType)
			ns := []int{1, 2, 4, 5, 9}
			if in == 512 {
				ns = append(ns, 263) // more tokens than one token block (256 at this width)
			}
			for _, n := range ns {
				t.Run(fmt.Sprintf("threads%d/%dx%d/n%d", threads, out, in, n), func(t *testing.T) {
					xs := make([]float32, n*in)
					for i := range xs {
						xs[i] = float32(r.NormFloat64())
					}
					x := f32Tensor(t, be, n, in, xs)
					o := f32Tensor(t, be, n, out, make([]float32, n*out))
					require.NoError(t, be.MatMul(nil, o, x, w, backend.Epilogue{}))
					got := append([]float32(nil), cpu.Float32s(o)...)
					for i := 0; i < n; i++ {
						// Alone: the same bits.
						xi := f32Tensor(t, be, 1, in, xs[i*in:(i+1)*in])
						oi := f32Tensor(t, be, 1, out, make([]float32, out))
						require.NoError(t, be.MatMul(nil, oi, xi, w, backend.Epilogue{}))
						require.Equal(t, bits(cpu.Float32s(oi)), bits(got[i*out:(i+1)*out]), "token %d of %d", i, n)
						// Close to the float product of the dequantized weights.
						for j := 0; j < out; j++ {
							var want, mag float64
							for k := 0; k < in; k++ {
								p := float64(xs[i*in+k]) * float64(deq[j*in+k])
								want += p
								mag += math.Abs(p)
							}
							require.InDelta(t, want, got[i*out+j], 0.02*mag+1e-6, "token %d output %d", i, j)
						}
					}
					// Accumulate adds the same product.
					base := make([]float32, n*out)
					for i := range base {
						base[i] = float32(i%7) - 3
					}
					oa := f32Tensor(t, be, n, out, base)
					require.NoError(t, be.MatMul(nil, oa, x, w, backend.Epilogue{Accumulate: true}))
					for i, v := range cpu.Float32s(oa) {
						require.Equal(t, base[i]+got[i], v, "accumulate %d", i)
					}
				})
			}
		}
	}
}

func TestEmbedQ8_0(t *testing.T) {
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	r := rand.New(rand.NewPCG(43, 44))
	blocks, deq := q8Matrix(t, r, 10, 64)
	w, err := be.LoadWeight(&backend.HostWeight{Name: "emb", Out: 10, In: 64, Blocks: blocks, BlockType: backend.Q8_0})
	require.NoError(t, err)
	o := f32Tensor(t, be, 3, 64, make([]float32, 3*64))
	ids := func(v ...int32) backend.Tensor {
		t.Helper()
		x, err := be.Stage(nil, v)
		require.NoError(t, err)
		return x
	}
	require.NoError(t, be.Embed(nil, o, w, ids(7, 0, 9)))
	for i, id := range []int{7, 0, 9} {
		require.Equal(t, deq[id*64:(id+1)*64], cpu.Float32s(o)[i*64:(i+1)*64])
	}
	// An id outside the vocabulary gives a zero row, as for every table.
	require.NoError(t, be.Embed(nil, o, w, ids(1, 10, 2)))
	require.Equal(t, make([]float32, 64), cpu.Float32s(o)[64:128])
	require.Equal(t, deq[2*64:3*64], cpu.Float32s(o)[128:192])
}

func TestLoadWeightBlocksRefusesBadInput(t *testing.T) {
	be := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	ok := make([]byte, 2*kern.Q8BlockBytes)
	for _, c := range []struct {
		h    backend.HostWeight
		want string
	}{
		{backend.HostWeight{Name: "a", Out: 2, In: 32, Blocks: ok[:40], BlockType: backend.Q8_0}, "bytes of q8_0"},
		{backend.HostWeight{Name: "b", Out: 1, In: 40, Blocks: ok, BlockType: backend.Q8_0}, "not whole blocks"},
		{backend.HostWeight{Name: "c", Out: 1, In: 32, Blocks: ok, BlockType: backend.I8}, "not a block type"},
		{backend.HostWeight{Name: "d", Out: 1, In: 32, Blocks: ok, BlockType: backend.Q8_0, F32: make([]float32, 32)}, "exactly one"},
	} {
		_, err := be.LoadWeight(&c.h)
		require.ErrorContains(t, err, c.want, c.h.Name)
	}
}
