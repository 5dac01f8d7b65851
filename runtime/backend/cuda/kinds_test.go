//go:build cuda

package cuda

import (
	"errors"
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

// TestSparse24Kernels turns the 2:4 kernels on (Options.Sparse24) and checks every 2:4
// matmul case against the CPU's dense kernel on the masked weights: the SIMT kernel
// (decode, and forced on every shape), mma.sp for 16-bit values, mma.sp int8 from the
// first row (Options.W8A8 all); and the low-rank pairs through the stream scratch. It skips
// without a GPU; GPU run C must see it pass before the kernels are on by default.
func TestSparse24Kernels(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Options
		v    cgo.Variant
	}{
		{"auto", Options{Sparse24: true}, cgo.MMAuto},
		{"simt", Options{Sparse24: true, W8A8: W8A8Off}, cgo.MMSIMT},
		{"w8a8", Options{Sparse24: true, W8A8: W8A8All}, cgo.MMAuto},
		{"off", Options{}, cgo.MMAuto}, // expanded to dense at load
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.opt)
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			b.mmVariant = tc.v
			for _, match := range []string{",2:4", ",rank="} {
				rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Ops: []string{backendtest.OpMatMul}, Match: match})
				if rep.Total.Pass == 0 || rep.Failed() {
					t.Errorf("%s: %s", match, rep.Summary())
				}
			}
			// The weights are what the option says.
			h := &backend.HostWeight{Name: "w", Out: 2, In: 4, Kind: backend.Sparse24, F32: []float32{1, 2, 3, 4}, Meta: []byte{0x4, 0x4}}
			w, err := b.LoadWeight(h)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]backend.WeightKind{true: backend.Sparse24, false: backend.Dense}[tc.opt.Sparse24]; w.Kind != want {
				t.Errorf("2:4 weight loaded as %s, want %s", w.Kind, want)
			}
			if err := b.FreeWeight(w); err != nil {
				t.Error(err)
			}
		})
	}
}
