package cpu_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/quant"
)

func randn(r *rand.Rand, n int, a float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (2*r.Float32() - 1) * a
	}
	return s
}

// mask24 keeps the two largest |w| of every group of 4 (the rest become 0).
func mask24(w []float32) []float32 {
	m := append([]float32(nil), w...)
	for g := 0; g+4 <= len(m); g += 4 {
		a, b := -1, -1
		for i := g; i < g+4; i++ {
			switch {
			case a < 0 || abs(m[i]) > abs(m[a]):
				a, b = i, a
			case b < 0 || abs(m[i]) > abs(m[b]):
				b = i
			}
		}
		for i := g; i < g+4; i++ {
			if i != a && i != b {
				m[i] = 0
			}
		}
	}
	return m
}

func abs(f float32) float32 { return float32(math.Abs(float64(f))) }

// matmul runs MatMul on a fresh output (holding init when accumulating).
func matmul(t *testing.T, be *cpu.Backend, x []float32, n int, w *backend.Weight, init []float32) []float32 {
	t.Helper()
	out := append([]float32(nil), init...)
	if out == nil {
		out = make([]float32, n*w.Out)
		for i := range out {
			out[i] = float32(math.NaN())
		}
	}
	s, err := be.NewStream()
	require.NoError(t, err)
	require.NoError(t, be.MatMul(s, cpu.F32(out, n, w.Out), cpu.F32(x, n, w.In), w, backend.Epilogue{Accumulate: init != nil}))
	return out
}

// requireNear checks got against want within float rounding of a sum of in products.
func requireNear(t *testing.T, want, got []float32, in int, msg string) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		tol := 1e-5*float64(in)*math.Max(1, math.Abs(float64(want[i]))) + 1e-5
		if !(math.Abs(float64(want[i]-got[i])) <= tol) {
			t.Fatalf("%s: element %d: got %g, want %g (tolerance %g)", msg, i, got[i], want[i], tol)
		}
	}
}

// The 2:4 matmul equals the dense matmul of the masked weights (float and int8, with
// and without the residual accumulate), for odd shapes, the 4-row blocks and their
// tails, several threads; and each row's result does not depend on its batch-mates.
func TestSparse24MatMulMatchesDense(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, threads := range []int{1, 2} {
		be := cpu.New(cpu.Options{Threads: threads})
		for _, s := range [][3]int{{1, 4, 1}, {3, 8, 5}, {5, 36, 7}, {4, 64, 3}, {7, 172, 64}, {65, 96, 9}, {9, 2048, 130}, {2, 256, 1500}} {
			n, in, out := s[0], s[1], s[2]
			dense := mask24(randn(r, out*in, 1/float32(math.Sqrt(float64(in)))))
			x := randn(r, n*in, 1)
			init := randn(r, n*out, 1)
			vals, meta, err := backend.PackSparse24(dense, out, in)
			require.NoError(t, err)
			require.Equal(t, dense, backend.ExpandSparse24(vals, meta, out, in))
			for _, int8 := range []bool{false, true} {
				hd := &backend.HostWeight{Name: "dense", Out: out, In: in, F32: dense}
				hs := &backend.HostWeight{Name: "sparse", Out: out, In: in, Kind: backend.Sparse24, F32: vals, Meta: meta}
				if int8 {
					// The masked row's scale is its largest kept value's: quantizing the
					// kept values gives the same int8 weights as quantizing the masked row.
					q, sc := quant.QuantizeRows(dense, out, in)
					qv, scv := quant.QuantizeRows(vals, out, in/2)
					require.Equal(t, sc, scv)
					require.Equal(t, q, backend.ExpandSparse24(qv, meta, out, in))
					hd = &backend.HostWeight{Name: "dense", Out: out, In: in, I8: q, Scales: sc}
					hs = &backend.HostWeight{Name: "sparse", Out: out, In: in, Kind: backend.Sparse24, I8: qv, Scales: scv, Meta: meta}
				}
				wd, err := be.LoadWeight(hd)
				require.NoError(t, err)
				ws, err := be.LoadWeight(hs)
				require.NoError(t, err)
				require.Equal(t, backend.Sparse24, ws.Kind)
				for _, acc := range []bool{false, true} {
					var in0 []float32
					if acc {
						in0 = init
					}
					name := fmt.Sprintf("threads=%d n=%d in=%d out=%d int8=%v acc=%v", threads, n, in, out, int8, acc)
					got := matmul(t, be, x, n, ws, in0)
					requireNear(t, matmul(t, be, x, n, wd, in0), got, in, name)
					// Row by row, alone: the same bits.
					for i := 0; i < n; i++ {
						var ri []float32
						if acc {
							ri = init[i*out : (i+1)*out]
						}
						require.Equal(t, got[i*out:(i+1)*out], matmul(t, be, x[i*in:(i+1)*in], 1, ws, ri), "%s row %d alone", name, i)
					}
				}
			}
		}
		be.Close()
	}
}

// A low-rank weight multiplies as its two factors in turn, and agrees with the dense
// product B·A to float rounding.
func TestLowRankMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	be := cpu.New(cpu.Options{Threads: 2})
	defer be.Close()
	for _, s := range [][4]int{{1, 8, 5, 3}, {5, 64, 33, 7}, {70, 100, 37, 16}, {3, 2048, 512, 128}} {
		n, in, out, rank := s[0], s[1], s[2], s[3]
		a, b := randn(r, rank*in, 0.1), randn(r, out*rank, 0.1)
		dense := make([]float32, out*in)
		for j := 0; j < out; j++ {
			for k := 0; k < in; k++ {
				var acc float64
				for q := 0; q < rank; q++ {
					acc += float64(b[j*rank+q]) * float64(a[q*in+k])
				}
				dense[j*in+k] = float32(acc)
			}
		}
		x := randn(r, n*in, 1)
		init := randn(r, n*out, 1)
		h := &backend.HostWeight{Name: "lr", Out: out, In: in, Kind: backend.LowRank,
			A: &backend.HostWeight{Name: "lr.a", Out: rank, In: in, F32: a},
			B: &backend.HostWeight{Name: "lr.b", Out: out, In: rank, F32: b}}
		w, err := be.LoadWeight(h)
		require.NoError(t, err)
		require.Equal(t, rank, w.Rank())
		wa, err := be.LoadWeight(h.A)
		require.NoError(t, err)
		wb, err := be.LoadWeight(h.B)
		require.NoError(t, err)
		wd, err := be.LoadWeight(&backend.HostWeight{Name: "dense", Out: out, In: in, F32: dense})
		require.NoError(t, err)
		for _, acc := range []bool{false, true} {
			var in0 []float32
			if acc {
				in0 = init
			}
			got := matmul(t, be, x, n, w, in0)
			require.Equal(t, matmul(t, be, matmul(t, be, x, n, wa, nil), n, wb, in0), got, "two matmuls")
			requireNear(t, matmul(t, be, x, n, wd, in0), got, in+rank, fmt.Sprintf("n=%d in=%d out=%d rank=%d acc=%v", n, in, out, rank, acc))
		}
	}
}

func TestWeightKindsRefused(t *testing.T) {
	be := cpu.New(cpu.Options{})
	defer be.Close()
	vals, meta, err := backend.PackSparse24([]float32{1, 0, 2, 0, 0, 3, 0, 4}, 1, 8)
	require.NoError(t, err)
	require.Equal(t, []float32{1, 2, 3, 4}, vals)
	require.Equal(t, []byte{0x8 | 0xD<<4}, meta)
	for _, c := range []struct {
		h    backend.HostWeight
		want string
	}{
		{backend.HostWeight{Name: "w", Out: 1, In: 8, Kind: backend.Sparse24, F32: vals, Meta: []byte{0x11}}, "metadata code 0x1"},
		{backend.HostWeight{Name: "w", Out: 1, In: 8, Kind: backend.Sparse24, F32: vals, Meta: []byte{0x54}}, "group 1: metadata code 0x5"},
		{backend.HostWeight{Name: "w", Out: 1, In: 8, Kind: backend.Sparse24, F32: vals[:3], Meta: meta}, "3 floats"},
		{backend.HostWeight{Name: "w", Out: 1, In: 6, Kind: backend.Sparse24, F32: vals, Meta: meta}, "groups of 4"},
		{backend.HostWeight{Name: "w", Out: 1, In: 8, Kind: backend.Sparse24, F32: vals}, "metadata bytes"},
		{backend.HostWeight{Name: "w", Out: 1, In: 4, Kind: backend.Sparse24, F32: vals[:2], Meta: []byte{0x34}}, "unused metadata nibble"},
		{backend.HostWeight{Name: "w", Out: 2, In: 3, Kind: backend.LowRank}, "needs both factors"},
		{backend.HostWeight{Name: "w", Out: 2, In: 3, Kind: backend.LowRank,
			A: &backend.HostWeight{Name: "a", Out: 1, In: 3, F32: make([]float32, 3)},
			B: &backend.HostWeight{Name: "b", Out: 2, In: 2, F32: make([]float32, 4)}}, "do not make B·A"},
		{backend.HostWeight{Name: "w", Out: 1, In: 8, Kind: 9, F32: vals}, "unknown kind"},
	} {
		_, err := be.LoadWeight(&c.h)
		require.ErrorContains(t, err, c.want)
	}
	// A 2:4 table cannot be an embedding.
	w, err := be.LoadWeight(&backend.HostWeight{Name: "emb", Out: 1, In: 8, Kind: backend.Sparse24, F32: vals, Meta: meta})
	require.NoError(t, err)
	s, _ := be.NewStream()
	ids, err := be.Stage(s, []int32{0})
	require.NoError(t, err)
	require.ErrorContains(t, be.Embed(s, cpu.F32(make([]float32, 8), 1, 8), w, ids), "not dense")
	// PackSparse24 refuses a group with three non-zeros.
	_, _, err = backend.PackSparse24([]float32{1, 2, 3, 0}, 1, 4)
	require.ErrorContains(t, err, "more than two non-zeros")
}
