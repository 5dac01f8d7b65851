//go:build cuda

package cuda

import (
	"errors"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// errLoRAOff is LoRA's answer while Options.LoRA is off; backendtest counts a "not
// supported" as a skip, never a pass.
var errLoRAOff = errors.New("cuda lora: the LoRA kernel (lora.cu) is off until a GPU run verifies it (cuda.Options.LoRA): not supported")

// LoRAReady is backend.LoRAGate: adapters run on this backend only with Options.LoRA.
func (c *Backend) LoRAReady() error {
	if !c.opt.LoRA {
		return errLoRAOff
	}
	return nil
}

// LoRA is backend.LoRAer: one vireo_lora launch (BGMV: each row gathers its slot's A and
// scaled Bᵀ; base rows, empty and out-of-range slots are skipped on the device).
func (c *Backend) LoRA(s backend.Stream, out, x backend.Tensor, st *backend.LoRAStack, slots backend.Tensor) error {
	const op = "cuda lora"
	if !c.opt.LoRA {
		return errLoRAOff
	}
	stream, err := c.str(op, s)
	if err != nil {
		return err
	}
	if err := backend.LoRAShapes(out, x, st, slots, out.DType); err != nil {
		return err
	}
	ps, dt, err := acts(op, out, x, st.A, st.B)
	if err != nil {
		return err
	}
	ranks, err := i32Dev(op, "ranks", st.Ranks, 1, st.Slots)
	if err != nil {
		return err
	}
	rows, err := i32Dev(op, "slots", slots, 1, x.Rows)
	if err != nil {
		return err
	}
	if x.Rows == 0 {
		return nil
	}
	stream.wrote(out)
	return wrap(op, cgo.LoRA(stream.s, dt, ps[0], ps[1], ps[2], ps[3], ranks, rows, x.Rows, st.In, st.Out, st.Slots, st.MaxRank),
		"%d rows, [%d][%d], %d slots of rank %d", x.Rows, st.Out, st.In, st.Slots, st.MaxRank)
}
