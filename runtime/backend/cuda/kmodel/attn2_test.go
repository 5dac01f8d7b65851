package kmodel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// seqSpec: past cached positions, then nq query rows.
type seqSpec struct{ past, nq int }

// attnCase builds a problem: sequences over shuffled blocks with unused extra ones,
// rows in the kv_index form (one sequence entry per row) or per sequence, idle and
// invalid rows mixed in. Unused cache slots and stale positions hold NaN.
func attnCase(r *rand.Rand, heads, kvHeads, hd, bs int, seqs []seqSpec, idle, bad int, perRow, bf16 bool) *AttnProblem {
	p := &AttnProblem{Heads: heads, KVHeads: kvHeads, HeadDim: hd, BlockSize: bs, Scale: float32(1 / math.Sqrt(float64(hd))),
		BF16: bf16, Vec16: hd%8 == 0}
	need := 0
	for _, s := range seqs {
		need += (s.past+s.nq+bs-1)/bs + 1
	}
	p.Blocks = need + 3
	perm := r.Perm(p.Blocks)
	next := 0
	var tables []int32
	type rowInfo struct{ q0, pos, off int }
	var rows []rowInfo
	for _, s := range seqs {
		off := len(tables)
		nb := (s.past+s.nq+bs-1)/bs + 1 // one extra block past the context
		for i := 0; i < nb; i++ {
			tables = append(tables, int32(perm[next]))
			next++
		}
		for i := 0; i < s.nq; i++ {
			rows = append(rows, rowInfo{len(rows) - i, s.past, off})
		}
		p.MaxCtx = max(p.MaxCtx, s.past+s.nq)
	}
	// Idle rows (-1) and invalid ones (a table entry outside the cache: the row's
	// sequence points at a table of bad entries).
	badOff := len(tables)
	tables = append(tables, -5, int32(p.Blocks+7))
	nValid := len(rows)
	p.Rows = nValid + idle + bad
	p.Tables = tables
	p.RowSeq = make([]int32, p.Rows)
	order := r.Perm(p.Rows)
	if !perRow {
		order = nil
	}
	// Rows are kept in sequence order (a prefill chunk's rows are consecutive); idle
	// and bad rows go at the end.
	_ = order
	for i := 0; i < p.Rows; i++ {
		switch {
		case i < nValid:
			ri := rows[i]
			if perRow {
				p.Seqs = append(p.Seqs, int32(i), 1, int32(ri.pos+(i-ri.q0)), int32(ri.off))
				p.RowSeq[i] = int32(len(p.Seqs)/4 - 1)
			} else {
				if i == ri.q0 {
					nq := 1
					for i+nq < nValid && rows[i+nq].q0 == ri.q0 {
						nq++
					}
					p.Seqs = append(p.Seqs, int32(i), int32(nq), int32(ri.pos), int32(ri.off))
				}
				p.RowSeq[i] = int32(len(p.Seqs)/4 - 1)
			}
		case i < nValid+idle:
			p.RowSeq[i] = -1
		default:
			p.RowSeq[i] = -1 // kv_index marks invalid rows -1 too
			_ = badOff
		}
	}
	p.LdQ = heads*hd + 8*(r.IntN(2))
	p.LdOut = heads*hd + 8*(r.IntN(2))
	round := func(v float32) float32 { return round16(v, bf16) }
	p.Q = make([]float32, p.Rows*p.LdQ)
	for i := range p.Q {
		p.Q[i] = round(float32(r.NormFloat64()))
	}
	n := p.Blocks * kvHeads * bs * hd
	p.K, p.V = make([]float32, n), make([]float32, n)
	for i := range p.K {
		p.K[i], p.V[i] = float32(math.NaN()), float32(math.NaN())
	}
	// Fill the cached context of each sequence.
	for i := 0; i < nValid; i++ {
		ri := rows[i]
		ctx := ri.pos + (i - ri.q0) + 1
		for pos := 0; pos < ctx; pos++ {
			blk := int(tables[ri.off+pos/bs])
			for h := 0; h < kvHeads; h++ {
				base := ((blk*kvHeads+h)*bs + pos%bs) * hd
				if !math.IsNaN(float64(p.K[base])) {
					continue
				}
				for d := 0; d < hd; d++ {
					p.K[base+d] = round(float32(r.NormFloat64()))
					p.V[base+d] = round(float32(r.NormFloat64()))
				}
			}
		}
	}
	return p
}

// refAttention: float64 causal attention of every valid row (zeros for the others).
func refAttention(p *AttnProblem) []float64 {
	out := make([]float64, p.Rows*p.LdOut)
	hd, group := p.HeadDim, p.Heads/p.KVHeads
	for r := 0; r < p.Rows; r++ {
		ctx, boff, ok := p.rowCtx(r)
		if !ok {
			continue
		}
		for h := 0; h < p.Heads; h++ {
			kvh := h / group
			sc := make([]float64, ctx)
			m := math.Inf(-1)
			for pos := 0; pos < ctx; pos++ {
				blk := int(p.Tables[boff+pos/p.BlockSize])
				base := ((blk*p.KVHeads+kvh)*p.BlockSize + pos%p.BlockSize) * hd
				var d float64
				for e := 0; e < hd; e++ {
					d += float64(p.Q[r*p.LdQ+h*hd+e]) * float64(p.K[base+e])
				}
				sc[pos] = d * float64(p.Scale)
				m = math.Max(m, sc[pos])
			}
			var l float64
			acc := make([]float64, hd)
			for pos := 0; pos < ctx; pos++ {
				e := math.Exp(sc[pos] - m)
				l += e
				blk := int(p.Tables[boff+pos/p.BlockSize])
				base := ((blk*p.KVHeads+kvh)*p.BlockSize + pos%p.BlockSize) * hd
				for d := 0; d < hd; d++ {
					acc[d] += e * float64(p.V[base+d])
				}
			}
			for d := 0; d < hd; d++ {
				out[r*p.LdOut+h*hd+d] = acc[d] / l
			}
		}
	}
	return out
}

// checkAttn runs the model and checks values, writes and reads.
func checkAttn(t *testing.T, c Attn2Config, p *AttnProblem) *AttnTrace {
	t.Helper()
	got, tr := c.Run(p)
	want := refAttention(p)
	var se, sw float64
	for r := 0; r < p.Rows; r++ {
		for col := 0; col < p.Heads*p.HeadDim; col++ {
			i := r*p.LdOut + col
			if tr.Writes[i] != 1 {
				t.Fatalf("row %d col %d written %d times (kernel %c)", r, col, tr.Writes[i], tr.RowKernel[r])
			}
			g := float64(got[i])
			if math.IsNaN(g) {
				t.Fatalf("row %d col %d: NaN (kernel %c): a stale or unwritten value reached the output", r, col, tr.RowKernel[r])
			}
			se += (g - want[i]) * (g - want[i])
			sw += want[i] * want[i]
		}
		for col := p.Heads * p.HeadDim; col < p.LdOut; col++ {
			require.Zero(t, tr.Writes[r*p.LdOut+col], "row %d col %d past the heads written", r, col)
		}
	}
	tol := 1e-5
	if c.UsesPrefill(p.Rows, p.HeadDim) && p.Vec16 {
		tol = 2e-5 // P is rounded to 16 bits before P·V
		if p.BF16 {
			tol = 5e-4
		}
	}
	if sw > 0 {
		require.LessOrEqual(t, se/sw, tol, "nmse")
	}
	// Reads: each consumer reads exactly its context's K and V elements, once each.
	group := p.Heads / p.KVHeads
	gch := (group + 7) / 8
	tiles := p.Plan(max(c.BM, 1))
	for who, reads := range map[string]map[string]map[int]int{"K": tr.ReadK, "V": tr.ReadV} {
		seen := 0
		for consumer, got := range reads {
			var kind string
			var a, b, gc int
			fmt.Sscanf(consumer, "%1s/%d/%d/%d", &kind, &a, &b, &gc)
			want := map[int]bool{}
			var ctx, boff, kvh int
			if kind == "d" {
				var ok bool
				ctx, boff, ok = p.rowCtx(a)
				require.True(t, ok, "decode read for invalid row %d", a)
				kvh = b
			} else {
				ctx = tiles[a].MaxCtx
				_, boff, _ = p.rowCtx(a * c.BM)
				kvh = b / group
			}
			for pos := 0; pos < ctx; pos++ {
				blk := int(p.Tables[boff+pos/p.BlockSize])
				base := ((blk*p.KVHeads+kvh)*p.BlockSize + pos%p.BlockSize) * p.HeadDim
				for d := 0; d < p.HeadDim; d++ {
					want[base+d] = true
				}
			}
			for i, n := range got {
				if !want[i] {
					t.Fatalf("%s: %s read cache element %d outside its context", who, consumer, i)
				}
				if n != 1 {
					t.Fatalf("%s: %s read cache element %d %d times", who, consumer, i, n)
				}
			}
			if c.Fault == Attn2FaultNone && len(got) != len(want) {
				t.Fatalf("%s: %s read %d of its context's %d elements", who, consumer, len(got), len(want))
			}
			seen++
		}
		// Every (valid decode row, KV head, head chunk) and every (prefill tile, head)
		// consumed.
		wantConsumers := 0
		for r := 0; r < p.Rows; r++ {
			if _, _, ok := p.rowCtx(r); ok && tr.RowKernel[r] == 'd' {
				wantConsumers += p.KVHeads * gch
			}
		}
		if c.UsesPrefill(p.Rows, p.HeadDim) && p.Vec16 {
			for _, tl := range tiles {
				if tl.Prefill {
					wantConsumers += p.Heads
				}
			}
		}
		require.Equal(t, wantConsumers, seen, "%s consumers", who)
	}
	return tr
}

func TestAttn2Decode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		heads, kvh, hd, bs int
		seqs               []seqSpec
		idle, bad          int
		cfg                Attn2Config
	}{
		// The decode paths: 16-byte loads for every lanes-per-key width, 4-byte loads for
		// head dims not a multiple of 8 (and > 64: two and three vectors per lane), every
		// group size (1, 2, 4, 8, 12 = 8 + a chunk of 4), one split and many (the merge),
		// a split length grown past max_splits, block sizes that do not divide anything.
		{4, 4, 32, 16, []seqSpec{{0, 1}, {37, 1}, {300, 1}}, 1, 1, Attn2Config{SplitLen: 64, MaxSplits: 32, Warps: 4}},
		{8, 4, 64, 5, []seqSpec{{100, 1}, {1, 1}}, 0, 0, Attn2Config{SplitLen: 16, MaxSplits: 3, Warps: 2}},
		{8, 2, 128, 16, []seqSpec{{513, 1}, {17, 1}, {255, 1}}, 2, 0, Attn2Config{SplitLen: 128, MaxSplits: 32, Warps: 4}},
		{16, 2, 256, 16, []seqSpec{{70, 1}}, 0, 1, Attn2Config{SplitLen: 32, MaxSplits: 32, Warps: 8}},
		{12, 1, 48, 7, []seqSpec{{90, 1}, {3, 1}}, 1, 0, Attn2Config{SplitLen: 16, MaxSplits: 4, Warps: 1}},
		{6, 3, 6, 3, []seqSpec{{20, 1}, {0, 1}}, 1, 1, Attn2Config{SplitLen: 16, MaxSplits: 8, Warps: 2}},
		{4, 2, 130, 8, []seqSpec{{40, 1}}, 0, 0, Attn2Config{SplitLen: 16, MaxSplits: 8, Warps: 3}},
		{2, 1, 200, 16, []seqSpec{{33, 1}, {2, 1}}, 0, 0, Attn2Config{SplitLen: 16, MaxSplits: 2, Warps: 4}},
		// Prefill rows through the decode kernel (no prefill): chunks of several rows.
		{4, 2, 64, 16, []seqSpec{{10, 7}, {0, 5}, {30, 1}}, 1, 1, Attn2Config{SplitLen: 16, MaxSplits: 4, Warps: 4}},
	} {
		for _, perRow := range []bool{true, false} {
			name := fmt.Sprintf("h=%d/%d,hd=%d,bs=%d,seqs=%v,cfg=%+v,perRow=%v", tc.heads, tc.kvh, tc.hd, tc.bs, tc.seqs, tc.cfg, perRow)
			t.Run(name, func(t *testing.T) {
				p := attnCase(r, tc.heads, tc.kvh, tc.hd, tc.bs, tc.seqs, tc.idle, tc.bad, perRow, false)
				require.NoError(t, tc.cfg.Validate())
				checkAttn(t, tc.cfg, p)
			})
		}
	}
}

func TestAttn2Prefill(t *testing.T) {
	if testing.Short() {
		t.Skip("emulates tensor-core fragments: seconds")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		heads, kvh, hd, bs int
		seqs               []seqSpec
		idle, bad          int
		bm, bn             int
		bf16               bool
	}{
		// Every tile configuration; row tails (a partial last tile), key tails (contexts
		// not a multiple of bn), prefill tiles with a past (masking past min context), a
		// tile straddling two sequences (to the decode kernel), decode rows beside a
		// chunk, idle and invalid rows, odd block sizes.
		{2, 1, 64, 16, []seqSpec{{0, 70}}, 0, 0, 64, 32, false},
		{4, 2, 64, 5, []seqSpec{{21, 70}, {3, 1}, {0, 30}}, 1, 1, 64, 64, true},
		{2, 2, 128, 16, []seqSpec{{40, 130}}, 0, 0, 128, 64, false},
		{4, 1, 128, 16, []seqSpec{{0, 64}, {7, 1}, {100, 20}}, 2, 0, 64, 32, true},
		{2, 1, 128, 9, []seqSpec{{65, 140}, {0, 1}}, 0, 1, 128, 32, false},
		{2, 2, 64, 16, []seqSpec{{3, 20}}, 0, 0, 64, 64, false},
	} {
		for _, perRow := range []bool{true, false} {
			name := fmt.Sprintf("h=%d/%d,hd=%d,bs=%d,seqs=%v,bm=%d,bn=%d,bf16=%v,perRow=%v", tc.heads, tc.kvh, tc.hd, tc.bs, tc.seqs, tc.bm, tc.bn, tc.bf16, perRow)
			t.Run(name, func(t *testing.T) {
				p := attnCase(r, tc.heads, tc.kvh, tc.hd, tc.bs, tc.seqs, tc.idle, tc.bad, perRow, tc.bf16)
				c := Attn2Config{SplitLen: 32, MaxSplits: 8, Warps: 4, Prefill: true, BM: tc.bm, BN: tc.bn}
				require.NoError(t, c.Validate())
				require.True(t, c.UsesPrefill(p.Rows, p.HeadDim))
				tr := checkAttn(t, c, p)
				nPrefill := 0
				for _, k := range tr.RowKernel {
					if k == 'p' {
						nPrefill++
					}
				}
				require.Greater(t, nPrefill, 0, "no tile went to the prefill kernel")
			})
		}
	}
}

// The broken variants are caught: their outputs leave the tolerance.
func TestAttn2FaultCaught(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range []Attn2Config{
		{SplitLen: 16, MaxSplits: 8, Warps: 2, Fault: Attn2FaultDrop},
		{SplitLen: 16, MaxSplits: 8, Warps: 2, Prefill: true, BM: 64, BN: 32, Fault: Attn2FaultDrop},
	} {
		p := attnCase(r, 2, 1, 64, 16, []seqSpec{{30, 40}}, 0, 0, true, false)
		got, _ := c.Run(p)
		want := refAttention(p)
		var se, sw float64
		for i := range want {
			if g := float64(got[i]); !math.IsNaN(g) {
				se += (g - want[i]) * (g - want[i])
				sw += want[i] * want[i]
			}
		}
		require.Greater(t, se/sw, 1e-3, "the broken variant %+v passed", c)
	}
}
