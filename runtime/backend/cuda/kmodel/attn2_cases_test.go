package kmodel

import (
	"math"
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
)

// caseProblem is the vireo_attention2 call the CUDA backend makes for a backendtest
// attention case in dtype dt: the case's operands rounded to dt, and the per-row
// sequence metadata vireo_kv_index derives from its index tensors.
func caseProblem(c backendtest.Case, dt backend.DType) *AttnProblem {
	in := backendtest.AttentionCaseInputs(c)
	n, ld := len(in.Pos), c.Heads*c.HeadDim
	round := func(s []float32) []float32 {
		out := make([]float32, len(s))
		for i, v := range s {
			out[i] = backendtest.Round(dt, v)
		}
		return out
	}
	p := &AttnProblem{Rows: n, Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, BlockSize: c.BlockSize,
		MaxCtx: in.MaxCtx, Blocks: in.Blocks, LdQ: ld, LdOut: ld, Seqs: make([]int32, 4*n), RowSeq: make([]int32, n),
		Tables: in.Tables, Q: round(in.Q), K: round(in.K), V: round(in.V),
		Scale: float32(1 / math.Sqrt(float64(c.HeadDim))), BF16: dt == backend.BF16,
		Vec16: c.HeadDim%8 == 0, // the harness's views are 128-byte aligned, ld = heads·hd
	}
	nt := int32(len(in.Tables) / in.Width)
	for i := range n {
		sq := in.Seq[i]
		if sq < 0 || sq >= nt {
			sq = 0
		}
		p.Seqs[4*i], p.Seqs[4*i+1], p.Seqs[4*i+2], p.Seqs[4*i+3] = int32(i), 1, max(in.Pos[i], 0), sq*int32(in.Width)
		p.RowSeq[i] = -1
		if in.Valid[i] {
			p.RowSeq[i] = int32(i)
		}
	}
	return p
}

// TestAttn2OnOpCases runs the model of vireo_attention2 (default configuration) on every
// default backendtest attention case — the cases the GPU run's op check gives the real
// kernel, with their layouts, idle and bad rows, and NaN in every cache slot outside a
// valid row's context — in f16 and bf16, rounds its output to the dtype as the kernel
// stores it, and requires the op check's own tolerance against a float64 attention,
// every output element written exactly once. What passes here fails on the card only
// where the kernel differs from its model.
func TestAttn2OnOpCases(t *testing.T) {
	cfg := DefaultAttn2()
	cases := backendtest.Cases(backendtest.Options{Ops: []string{backendtest.OpAttention}, DTypes: []backend.DType{backend.F16, backend.BF16}})
	if len(cases) < 20 {
		t.Fatalf("%d attention cases", len(cases))
	}
	prefillCases := 0
	worst := map[string]float64{}
	for _, c := range cases {
		dt := c.DType
		p := caseProblem(c, dt)
		got, tr := cfg.Run(p)
		want := refAttention(p)
		var se, sw float64
		for r := 0; r < p.Rows; r++ {
			for col := 0; col < p.Heads*p.HeadDim; col++ {
				i := r*p.LdOut + col
				if tr.Writes[i] != 1 {
					t.Fatalf("%s: row %d col %d written %d times (kernel %c)", c.Name, r, col, tr.Writes[i], tr.RowKernel[r])
				}
				g := float64(backendtest.Round(dt, got[i]))
				if math.IsNaN(g) {
					t.Fatalf("%s: row %d col %d: NaN (kernel %c): an unwritten value, or a cache slot outside the context, reached the output", c.Name, r, col, tr.RowKernel[r])
				}
				se += (g - want[i]) * (g - want[i])
				sw += want[i] * want[i]
			}
		}
		nmse := se / max(sw, 1e-300)
		if tol := backendtest.Tolerance(backendtest.OpAttention, dt); !(nmse <= tol) {
			t.Errorf("%s: nmse %.3g over the op check's tolerance %.3g", c.Name, nmse, tol)
		}
		kind := dt.String() + " decode only"
		for _, k := range tr.RowKernel {
			if k == 'p' {
				prefillCases++
				kind = dt.String() + " with prefill tiles"
				break
			}
		}
		worst[kind] = max(worst[kind], nmse)
	}
	t.Logf("largest nmse: %v (tolerances: f16 %g, bf16 %g)", worst,
		backendtest.Tolerance(backendtest.OpAttention, backend.F16), backendtest.Tolerance(backendtest.OpAttention, backend.BF16))
	if prefillCases == 0 {
		t.Error("no case reached the prefill kernel")
	}
}

// A row's split count never exceeds its call's (CallSplits of the longest context),
// which strides the partials and sizes the grid: DecodeSplits grows with the context,
// for the default configuration and every one of the sweep's.
func TestCallSplitsBoundRows(t *testing.T) {
	for _, c := range append([]Attn2Config{DefaultAttn2()}, Attn2Sweep()...) {
		prev := 0
		for ctx := 1; ctx <= 3*c.SplitLen*c.MaxSplits+1000; ctx++ {
			_, n := c.DecodeSplits(ctx)
			if n < prev || n > c.MaxSplits || n != c.CallSplits(ctx) {
				t.Fatalf("%s: context %d: %d splits after %d (max %d, call %d)", c, ctx, n, prev, c.MaxSplits, c.CallSplits(ctx))
			}
			prev = n
		}
	}
	// The workspace: no partials when no row can split; a Llama-3-8B 2,048-row chunk at
	// 2,048 positions takes 8 splits' partials.
	d := DefaultAttn2()
	if got := Attn2Workspace(64, 32, 8, 128, 256, d); got != 64*8*4+256 {
		t.Errorf("decode at 256 positions: %d bytes", got)
	}
	if got, want := Attn2Workspace(2048, 32, 8, 128, 2048, d), 2048*8*4+2048/64*16+2048*32*8*130*4; got != want {
		t.Errorf("2,048-row chunk: %d bytes, want %d", got, want)
	}
}
