//go:build cuda

package cuda

import (
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
)

// TestMM2Table: the Go model's configuration table, tile sizes, shared memory and
// workspace sizes are the kernel library's (vireo_matmul2_config and
// vireo_matmul2_workspace_bytes make no device call, so CI runs this: make cuda-check).
func TestMM2Table(t *testing.T) {
	for i, c := range kmodel.Configs {
		lib, ok := cgo.MatMul2Config(i)
		if !ok {
			t.Fatalf("the library has no configuration %d; the model has %d", i, len(kmodel.Configs))
		}
		want := cgo.MM2Config{Kind: cgo.MM2Kind(c.Kind), WarpsM: c.WM, WarpsN: c.WN, MTiles: c.MT, NTiles: c.NT, BK: c.BK,
			Stages: c.Stages, BlockRows: c.BM(), BlockCols: c.BN(), Threads: c.Threads(), SmemBytes: c.SmemBytes()}
		if lib != want {
			t.Errorf("configuration %d: library %+v, model %+v", i, lib, want)
		}
		if c.SmemBytes() > 227*1024 {
			t.Errorf("configuration %d: %d bytes of shared memory, more than a Hopper block may have", i, c.SmemBytes())
		}
		for _, s := range []struct{ n, nOut, split int }{{1, 4096, 8}, {130, 1000, 3}, {2048, 14336, 1}, {7, 9, 2}} {
			for _, epi := range []kmodel.Epilogue{kmodel.EpiNone, kmodel.EpiSiLUGLU} {
				got, err := cgo.MatMul2WorkspaceBytes(i, s.n, s.nOut, cgo.Epilogue(epi), s.split)
				if err != nil {
					t.Fatal(err)
				}
				if w := kmodel.WorkspaceBytes(i, s.n, s.nOut, epi, s.split); got != w {
					t.Errorf("configuration %d %+v epi %d: library workspace %d, model %d", i, s, epi, got, w)
				}
			}
		}
	}
	if _, ok := cgo.MatMul2Config(len(kmodel.Configs)); ok {
		t.Errorf("the library has more configurations than the model's %d", len(kmodel.Configs))
	}
}
