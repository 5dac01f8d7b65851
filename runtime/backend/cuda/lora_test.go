//go:build cuda

package cuda

import (
	"errors"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// TestLoRAKernel turns the LoRA kernel on (Options.LoRA) and checks every lora case
// (the large shapes too) against the CPU in f16 and bf16: slots of different ranks, an
// empty slot, base rows and out-of-range slots, NaN padding past each slot's rank.
// Off, the op answers "not supported" (the cases skip) and LoRAReady refuses adapter
// slots. It skips without a GPU; GPU run C must see it pass before the kernel is on by
// default.
func TestLoRAKernel(t *testing.T) {
	for _, on := range []bool{true, false} {
		b, err := New(Options{LoRA: on})
		if errors.Is(err, cgo.ErrNoDevice) {
			t.Skipf("no CUDA device: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Ops: []string{backendtest.OpLoRA}, Large: true,
			DTypes: []backend.DType{backend.F16, backend.BF16}})
		b.Close()
		switch {
		case on && (rep.Total.Pass == 0 || rep.Failed() || rep.Total.Skip > 0):
			t.Errorf("on: %s", rep.Summary())
		case !on && (rep.Total.Pass > 0 || rep.Total.Skip == 0):
			t.Errorf("off: %s", rep.Summary())
		case !on && (b.LoRAReady() == nil || !strings.Contains(b.LoRAReady().Error(), "Options.LoRA")):
			t.Errorf("off: LoRAReady %v", b.LoRAReady())
		}
	}
}
