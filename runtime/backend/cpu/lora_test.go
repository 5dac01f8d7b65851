package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend"
)

func i32Tensor(v []int32, rows, cols int) backend.Tensor {
	return backend.Tensor{DType: backend.I32, Rows: rows, Cols: cols, Buf: &buf{i32: v}}
}

func f32Tensor(v []float32, rows, cols int) backend.Tensor {
	return backend.Tensor{DType: backend.F32, Rows: rows, Cols: cols, Buf: &buf{f32: v}}
}

// loraCase draws a stack of slots with ranks 0 (slot 2: not in this layer), full and
// partial, rows naming every slot, the base (-1) and out-of-range slots, and a
// reference computed in float64 from the definition.
type loraCase struct {
	st          *backend.LoRAStack
	x, out0     []float32
	slots       []int32
	want        []float64
	n, in, nout int
}

func newLoRACase(seed uint64, n, in, nout int) *loraCase {
	r := rand.New(rand.NewPCG(seed, 1))
	slotsN, mr := 4, 6
	ranks := []int32{6, 3, 0, 1}
	u := func(k int, a float32) []float32 {
		s := make([]float32, k)
		for i := range s {
			s[i] = (2*r.Float32() - 1) * a
		}
		return s
	}
	a, b := u(slotsN*mr*in, 0.3), u(slotsN*mr*nout, 0.3)
	// Padding rows past a slot's rank are poisoned: they must never be read.
	for s := range slotsN {
		for k := int(ranks[s]); k < mr; k++ {
			for c := range in {
				a[(s*mr+k)*in+c] = float32(math.NaN())
			}
			for j := range nout {
				b[(s*mr+k)*nout+j] = float32(math.NaN())
			}
		}
	}
	c := &loraCase{n: n, in: in, nout: nout, x: u(n*in, 1), out0: u(n*nout, 1)}
	c.st = &backend.LoRAStack{Slots: slotsN, MaxRank: mr, Out: nout, In: in,
		A: f32Tensor(a, slotsN*mr, in), B: f32Tensor(b, slotsN*mr, nout), Ranks: i32Tensor(ranks, 1, slotsN)}
	choices := []int32{0, 1, 2, 3, -1, 4, -7, 0, 1, 3}
	c.slots = make([]int32, n)
	for i := range c.slots {
		c.slots[i] = choices[(i*7+int(seed))%len(choices)]
	}
	c.want = make([]float64, n*nout)
	for i := range n {
		for j := range nout {
			c.want[i*nout+j] = float64(c.out0[i*nout+j])
		}
		s := c.slots[i]
		if s < 0 || int(s) >= slotsN {
			continue
		}
		for k := range int(ranks[s]) {
			t := 0.0
			for q := range in {
				t += float64(a[(int(s)*mr+k)*in+q]) * float64(c.x[i*in+q])
			}
			for j := range nout {
				c.want[i*nout+j] += t * float64(b[(int(s)*mr+k)*nout+j])
			}
		}
	}
	return c
}

func (c *loraCase) run(t *testing.T, be *Backend, rows ...int) []float32 {
	t.Helper()
	if rows == nil {
		for i := range c.n {
			rows = append(rows, i)
		}
	}
	out := make([]float32, 0, len(rows)*c.nout)
	x := make([]float32, 0, len(rows)*c.in)
	var sl []int32
	for _, i := range rows {
		out = append(out, c.out0[i*c.nout:(i+1)*c.nout]...)
		x = append(x, c.x[i*c.in:(i+1)*c.in]...)
		sl = append(sl, c.slots[i])
	}
	m := len(rows)
	require.NoError(t, be.LoRA(nil, f32Tensor(out, m, c.nout), f32Tensor(x, m, c.in), c.st, i32Tensor(sl, 1, m)))
	return out
}

func TestLoRA(t *testing.T) {
	for _, s := range [][3]int{{1, 1, 1}, {5, 7, 11}, {13, 33, 9}, {40, 64, 130}, {64, 256, 515}} {
		c := newLoRACase(uint64(s[0]), s[0], s[1], s[2])
		one := New(Options{Threads: 1})
		got := c.run(t, one)
		for i := range c.n {
			base := c.slots[i] < 0 || c.slots[i] >= 4 || c.slots[i] == 2
			for j := range c.nout {
				k := i*c.nout + j
				if base {
					require.Equal(t, c.out0[k], got[k], "row %d (slot %d) must be left alone", i, c.slots[i])
					continue
				}
				require.InDelta(t, c.want[k], float64(got[k]), 1e-5*(1+math.Abs(c.want[k])), "n=%d row %d col %d", c.n, i, j)
			}
		}
		// Bit for bit: any thread count, and each row alone.
		many := New(Options{Threads: 4})
		require.Equal(t, got, c.run(t, many))
		for i := range c.n {
			require.Equal(t, got[i*c.nout:(i+1)*c.nout], c.run(t, one, i), "row %d alone", i)
		}
		one.Close()
		many.Close()
	}
}

func TestLoRAShapes(t *testing.T) {
	c := newLoRACase(3, 5, 7, 11)
	be := New(Options{Threads: 1})
	defer be.Close()
	x := f32Tensor(c.x, 5, 7)
	out := f32Tensor(c.out0, 5, 11)
	sl := i32Tensor(c.slots, 1, 5)
	require.ErrorIs(t, be.LoRA(nil, out, f32Tensor(c.x[:4*7], 4, 7), c.st, sl), backend.ErrShape)
	require.ErrorIs(t, be.LoRA(nil, f32Tensor(c.out0[:5*10], 5, 10), x, c.st, sl), backend.ErrShape)
	require.ErrorIs(t, be.LoRA(nil, out, x, c.st, i32Tensor(c.slots[:4], 1, 4)), backend.ErrShape)
	bad := *c.st
	bad.MaxRank = 5
	require.ErrorIs(t, be.LoRA(nil, out, x, &bad, sl), backend.ErrShape)
}
