package cpu

import (
	"slices"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// LoRA adds each row's adapter product (backend.LoRAer): per row, the shrink t = A·x
// as r dot products over In, then the expand as r axpys of t[k]·Bᵀ[k] into a zeroed
// row of Out, added to out once. Rows are split across the cores; within a share,
// rows of one slot run one after another (SGMV's segments: the slot's A and B stay in
// cache), which changes no row's arithmetic.
func (c *Backend) LoRA(_ backend.Stream, out, x backend.Tensor, st *backend.LoRAStack, slots backend.Tensor) error {
	if err := backend.LoRAShapes(out, x, st, slots, backend.F32); err != nil {
		return err
	}
	o, err := f32s("lora", out)
	if err != nil {
		return err
	}
	xs, err := f32s("lora", x)
	if err != nil {
		return err
	}
	a, err := f32s("lora", st.A)
	if err != nil {
		return err
	}
	b, err := f32s("lora", st.B)
	if err != nil {
		return err
	}
	sl, err := i32s("lora", "slots", slots, 1, x.Rows)
	if err != nil {
		return err
	}
	ranks, err := i32s("lora", "ranks", st.Ranks, 1, st.Slots)
	if err != nil {
		return err
	}
	n, in, nout, mr := x.Rows, st.In, st.Out, st.MaxRank
	rankOf := func(i int) int {
		s := sl[i]
		if s < 0 || int(s) >= st.Slots {
			return 0
		}
		if r := int(ranks[s]); r >= 1 && r <= mr {
			return r
		}
		return 0
	}
	work := 0
	for i := 0; i < n; i++ {
		work += rankOf(i) * (in + nout)
	}
	if work == 0 {
		return nil
	}
	c.parallel(n, 1, work, func(lo, hi int) {
		rows := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			if rankOf(i) > 0 {
				rows = append(rows, i)
			}
		}
		slices.SortStableFunc(rows, func(p, q int) int { return int(sl[p]) - int(sl[q]) })
		t := make([]float32, mr)
		acc := make([]float32, nout)
		for _, i := range rows {
			s, r := int(sl[i]), rankOf(i)
			xi := xs[i*in : (i+1)*in]
			for k := 0; k < r; k++ {
				row := (s*mr + k) * in
				t[k] = kern.Dot(xi, a[row:row+in])
			}
			clear(acc)
			for k := 0; k < r; k++ {
				row := (s*mr + k) * nout
				kern.Axpy(acc, t[k], b[row:row+nout])
			}
			oi := o[i*nout : (i+1)*nout]
			for j, v := range acc {
				oi[j] += v
			}
		}
	})
	return nil
}

var _ backend.LoRAer = (*Backend)(nil)
