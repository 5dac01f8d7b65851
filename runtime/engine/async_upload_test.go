package engine

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// The unordered-upload detector of the asynchronous fake (async_test.go). The CUDA
// backend's Upload used to copy with cudaMemcpy from pageable memory on the legacy
// stream and return, while the ops ran on non-blocking streams that are not ordered
// after it: an op could read bytes whose DMA had not landed. The fake models the fixed
// Upload (the copy queued on a transfer stream that is waited for before returning)
// and, with unorderedUploads, the old one; these tests show that the detector passes
// the first and fires on the second, on its own and under the engine. The real
// Upload is checked on a GPU by runtime/backend/cuda's TestUploadOrdering.

// uploadCase uploads x and a weight, issues a matmul reading both on a stream and
// waits for it; it returns the fake's violations.
func uploadCase(t *testing.T, unordered bool) []string {
	t.Helper()
	f := newAsyncBackend(1, 0)
	f.unorderedUploads = unordered
	s, err := f.NewStream()
	require.NoError(t, err)
	x, err := f.Alloc(backend.F32, 2, 3)
	require.NoError(t, err)
	require.NoError(t, f.Upload(x, backend.Bytes([]float32{1, 2, 3, 4, 5, 6}), backend.F32))
	w, err := f.LoadWeight(&backend.HostWeight{Name: "w", Out: 2, In: 3, F32: []float32{1, 0, 0, 0, 1, 0}})
	require.NoError(t, err)
	out, err := f.Alloc(backend.F32, 2, 2)
	require.NoError(t, err)
	require.NoError(t, f.MatMul(s, out, x, w, backend.Epilogue{}))
	got := make([]float32, 4)
	require.NoError(t, f.Download(backend.Bytes(got), backend.F32, out))
	require.Equal(t, []float32{1, 2, 4, 5}, got, "the fake lands late copies before the read: the values stay right")
	return f.Violations()
}

func TestUploadOrderedBeforeOps(t *testing.T) {
	require.Empty(t, uploadCase(t, false))
}

// TestUploadDetectorFires is the twin: the same ops with uploads left unordered are
// reported, naming the op and the upload.
func TestUploadDetectorFires(t *testing.T) {
	v := uploadCase(t, true)
	// The first read lands every copy queued before the one it waits for (the transfer
	// stream runs in order), so one report covers x and the weight.
	require.Len(t, v, 1, "%v", v)
	for _, s := range v {
		require.Contains(t, s, "matmul reads a buffer whose upload")
	}
	t.Logf("%s", strings.Join(v, "\n"))
}

// TestUploadIntoBufferInUse: an Upload into a buffer that a queued op still reads is
// reported (Upload waits for the buffer's writer stream, not for its readers).
func TestUploadIntoBufferInUse(t *testing.T) {
	f := newAsyncBackend(1, 0)
	s, err := f.NewStream()
	require.NoError(t, err)
	x, err := f.Alloc(backend.F32, 1, 4)
	require.NoError(t, err)
	out, err := f.Alloc(backend.F32, 1, 4)
	require.NoError(t, err)
	require.NoError(t, f.Upload(x, backend.Bytes([]float32{1, 2, 3, 4}), backend.F32))
	rows, err := f.Stage(s, []int32{0})
	require.NoError(t, err)
	require.NoError(t, f.GatherRows(s, out, x, rows))
	require.NoError(t, f.Upload(x, backend.Bytes([]float32{5, 6, 7, 8}), backend.F32)) // the gather is still queued
	require.NoError(t, f.Sync(s))
	v := f.Violations()
	require.Len(t, v, 1)
	require.Contains(t, v[0], "upload into a buffer that s0")
}

// TestAsyncEngineUploadsOrdered / TestAsyncEngineCatchesUnorderedUploads: the engine
// on the fake (model weights, norms and decode-graph inputs all arrive by Upload or
// LoadWeight) reports nothing with ordered uploads and every early read without.
func TestAsyncEngineUploadsOrdered(t *testing.T) {
	reqs := asyncWorkload(t)[:6]
	r := newAsyncRunOn(t, newAsyncBackend(3, 0.25), 3, Options{}, true, 0, 0.2)
	r.submitAll(t, reqs)
	r.e.Close()
	require.Empty(t, r.f.Violations())
}

func TestAsyncEngineCatchesUnorderedUploads(t *testing.T) {
	reqs := asyncWorkload(t)[:6]
	f := newAsyncBackend(3, 0.25)
	f.unorderedUploads = true
	r := newAsyncRunOn(t, f, 3, Options{}, true, 0, 0.2)
	r.submitAll(t, reqs)
	r.e.Close()
	v := r.f.Violations()
	n := 0
	for _, s := range v {
		if strings.Contains(s, "whose upload") {
			n++
		}
	}
	require.Greater(t, n, 0, "unordered uploads, yet the detector saw nothing: %v", v)
	t.Logf("%d violations, first: %s", len(v), v[0])
}
