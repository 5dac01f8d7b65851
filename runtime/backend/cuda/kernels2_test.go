//go:build cuda

package cuda

import (
	"testing"
	"unsafe"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cuda/kmodel"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func TestParseKernels(t *testing.T) {
	for in, want := range map[string]Kernels{"": KernelsV2, "v2": KernelsV2, "v1": KernelsV1} {
		if got, err := ParseKernels(in); err != nil || got != want {
			t.Errorf("ParseKernels(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"v3", "V2", "both"} {
		if _, err := ParseKernels(in); err == nil {
			t.Errorf("ParseKernels(%q) accepted it", in)
		}
	}
	// The backend's v2 configurations are kmodel's (what its tests cover).
	if err := attn2Config().Validate(); err != nil {
		t.Error(err)
	}
	c := &Backend{Info: cgo.DeviceInfo{Multiprocessors: 132}}
	for _, rv := range [][2]int{{1, 128256}, {64, 128256}, {8, 300}, {3, 1}} {
		if err := c.sample2Config(rv[0], rv[1]).Validate(); err != nil {
			t.Errorf("rows %d vocab %d: %v", rv[0], rv[1], err)
		}
		if got, want := c.sample2Config(rv[0], rv[1]), kmodel.Sample2Choose(rv[0], rv[1], 132); got != want {
			t.Errorf("rows %d vocab %d: sample2Config %v, the model tests %v", rv[0], rv[1], got, want)
		}
	}
}

// TestSampler runs the device sampler, v2 and v1, on rows that are hard for it — a
// flat 128k vocabulary under top-p 0.9 (most of the vocabulary is a candidate: v1 gives
// such rows to the host), ties, NaN and infinities, penalties with a history, top-k
// beyond the vocabulary, min-p, greedy — at odd vocabularies, with logits rows padded
// by NaN to a larger leading dimension and the output poisoned, and compares every
// token with runtime/sampling. v2 must sample every row; v1 may return -1 (the host's
// row) and nothing else that differs. It skips without a GPU.
func TestSampler(t *testing.T) {
	for _, set := range []Kernels{KernelsV2, KernelsV1} {
		t.Run(string(set), func(t *testing.T) {
			b := openWith(t, Options{Kernels: set})
			for _, dt := range []backend.DType{backend.F16, backend.BF16, backend.F32} {
				for _, vocab := range []int{1, 1003, 32001, 128256} {
					testSampler(t, b, set, dt, vocab)
				}
			}
		})
	}
}

func testSampler(t *testing.T, b *Backend, set Kernels, dt backend.DType, vocab int) {
	rows, host, ld := samplerCase(dt, vocab)
	R := len(rows)
	logits, err := b.Alloc(dt, R, ld)
	must(t, err)
	defer b.Free(logits)
	must(t, b.Upload(logits, backend.Bytes(host), backend.F32))
	seen := downF32(t, b, logits) // the values the device holds (rounded to dt)

	params := make([]cgo.SamplingParams, R)
	var hist []int32
	for i, row := range rows {
		p := row.p
		params[i] = cgo.SamplingParams{Temperature: p.Temperature, TopP: p.TopP, MinP: p.MinP, RepetitionPenalty: p.RepetitionPenalty,
			PresencePenalty: p.PresencePenalty, FrequencyPenalty: p.FrequencyPenalty, TopK: int32(p.TopK),
			HistoryOff: int64(len(hist)), Seed: p.Seed, TokenIndex: row.index}
		params[i].HistoryLen = int32(len(row.hist))
		hist = append(hist, row.hist...)
	}
	hist = append(hist, 0) // never empty
	pb, err := b.Alloc(backend.I8, 1, R*cgo.SamplingParamsSize)
	must(t, err)
	defer b.Free(pb)
	must(t, b.Upload(pb, unsafe.Slice((*byte)(unsafe.Pointer(&params[0])), R*cgo.SamplingParamsSize), backend.I8))
	hb := upI32(t, b, hist, 1, len(hist))
	defer b.Free(hb)
	const poison = 0x7eadbeef
	out := upI32(t, b, []int32{poison, poison, poison, poison, poison, poison, poison, poison, poison}[:R], 1, R)
	defer b.Free(out)

	sv, err := b.NewStream()
	must(t, err)
	st := sv.(*stream)
	lp, _, err := dev("test", logits)
	must(t, err)
	pp, _, err := dev("test", pb)
	must(t, err)
	hp, _, err := dev("test", hb)
	must(t, err)
	op, _, err := dev("test", out)
	must(t, err)
	if set == KernelsV2 {
		cfg := b.sample2Config(R, vocab)
		need, err := cgo.Sample2WorkspaceBytes(R, vocab, cfg.Chunk)
		must(t, err)
		ws, err := b.sample2Workspace(st, need, [3]int{R, vocab, cfg.Chunk})
		must(t, err)
		// Twice: the second call finds the workspace as the first left it.
		for range 2 {
			must(t, cgo.Sample2(st.s, cgo.DType(dt), lp, ld, R, vocab, pp, hp, op, ws, st.sampleWS.n, cgoSample2(cfg)))
		}
	} else {
		ws, err := b.sampleWorkspace(st, R, vocab)
		must(t, err)
		must(t, cgo.Sample(st.s, cgo.DType(dt), lp, ld, R, vocab, pp, hp, op, ws, st.sampleWS.n))
	}
	st.wrote(out)
	must(t, b.Sync(sv))
	got := make([]int32, R)
	must(t, b.Download(backend.Bytes(got), backend.I32, out))

	var smp sampling.Sampler
	for i, row := range rows {
		want := smp.Sample(seen[i*ld:i*ld+vocab], &row.p, row.index, row.hist)
		switch {
		case got[i] == want:
		case got[i] == -1 && set == KernelsV1:
			t.Logf("%s vocab %d row %d (%s): v1 gave the row to the host", dt, vocab, i, row.kind)
		default:
			t.Errorf("%s %s vocab %d row %d (%s, %+v): token %d, want %d", set, dt, vocab, i, row.kind, row.p, got[i], want)
		}
	}
}
