//go:build cuda

package cuda

import (
	"errors"
	"math/rand"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
)

// TestLoadWeightBlockSource: weights dequantized from a GGUF block type are stored as
// int8 with per-row scales (float weights keep the activation type), and the log says
// so once per type. Skips without a GPU.
func TestLoadWeightBlockSource(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	b, err := New(Options{Log: zap.New(core)})
	if errors.Is(err, cgo.ErrNoDevice) {
		t.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r := rand.New(rand.NewSource(5))
	for _, tc := range []struct {
		src  string
		want backend.DType
	}{{"Q4_K", backend.I8}, {"Q4_K", backend.I8}, {"Q6_K", backend.I8}, {"", b.act}} {
		w, err := b.LoadWeight(&backend.HostWeight{Name: "w", Out: 7, In: 96, F32: randF32(r, 7*96, 1), Source: tc.src})
		if err != nil {
			t.Fatal(err)
		}
		if w.W.DType != tc.want || (tc.want == backend.I8) != (w.Scales.Len() == 7) {
			t.Fatalf("source %q: weight %s with %d scales, want %s", tc.src, w.W, w.Scales.Len(), tc.want)
		}
	}
	if n := logs.FilterMessageSnippet("converting GGUF block-quantized weights to int8").Len(); n != 2 {
		t.Fatalf("%d conversion log lines, want one per type (2): %v", n, logs.All())
	}
}
