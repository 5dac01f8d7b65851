package kmodel

import (
	"fmt"
	"math"
)

// The v2 attention kernels (cuda/kernels/attention2.cu, attention2_prefill.cuh),
// modelled block by block: the plan of query tiles, the split-KV decode kernel's
// lanes, streams and splits, and the prefill kernel's cp.async chunks, ldmatrix
// addresses, mma fragments, online softmax and stores, emulated in float32. Its tests
// check the outputs against a float64 attention and that every K/V element of each
// row's context is read exactly once per consumer (a decode block group, a prefill
// tile and head), nothing past the context, and every output element written once.

// Attn2Config is a launch configuration of vireo_attention2 (tuning: GPU run C sweeps
// it).
type Attn2Config struct {
	SplitLen  int  // decode: positions per split, at least
	MaxSplits int  // decode: splits per row, at most
	Warps     int  // decode: warps per block
	Prefill   bool // prefill tiles on tensor cores
	BM, BN    int  // prefill: query rows per block, keys per tile
	Fault     int  // Attn2FaultDrop breaks both kernels (the card's broken-variant check)
}

// Faults of vireo_attention2.
const (
	Attn2FaultNone = 0
	Attn2FaultDrop = 1 // decode: each split drops its last position; prefill: the last KV tile
)

// Validate checks a configuration as vireo_attention2 does.
func (c Attn2Config) Validate() error {
	if c.SplitLen < 16 || c.MaxSplits < 1 || c.MaxSplits > 1024 || c.Warps < 1 || c.Warps > 8 {
		return fmt.Errorf("attention2: split_len %d (>= 16), max_splits %d (1..1024), warps %d (1..8)", c.SplitLen, c.MaxSplits, c.Warps)
	}
	if c.Prefill && ((c.BM != 64 && c.BM != 128) || (c.BN != 32 && c.BN != 64)) {
		return fmt.Errorf("attention2: prefill tiles bm %d (64, 128), bn %d (32, 64)", c.BM, c.BN)
	}
	return nil
}

// DefaultAttn2 is the configuration before GPU run C's sweep: splits of 256 positions (at
// most 32 per row), 4 warps per decode block, prefill tiles of 64 rows and 64 keys.
func DefaultAttn2() Attn2Config {
	return Attn2Config{SplitLen: 256, MaxSplits: 32, Warps: 4, Prefill: true, BM: 64, BN: 64}
}

// PrefillMinRows: a pass of fewer rows runs the decode kernel only (no plan).
const PrefillMinRows = 16

// PrefillSupported reports whether the tensor-core kernel takes a head dim.
func PrefillSupported(headDim int) bool { return headDim == 64 || headDim == 128 }

// UsesPrefill reports whether a pass of n rows launches the plan and the prefill kernel.
func (c Attn2Config) UsesPrefill(n, headDim int) bool {
	return c.Prefill && n >= PrefillMinRows && PrefillSupported(headDim)
}

// DecodeSplits is a row's split length and count for a context (decode_splits).
func (c Attn2Config) DecodeSplits(ctx int) (length, n int) {
	length = max(c.SplitLen, (ctx+c.MaxSplits-1)/c.MaxSplits)
	return length, (ctx + length - 1) / length
}

// DecodeVariant is the decode kernel's lane layout for a head dim: VEC elements per
// load, LPK lanes per key, NV loads per lane per key (launch_decode).
func DecodeVariant(headDim int, vec16 bool) (vec, lpk, nv int) {
	if vec16 {
		switch {
		case headDim <= 32:
			return 8, 4, 1
		case headDim <= 64:
			return 8, 8, 1
		case headDim <= 128:
			return 8, 16, 1
		}
		return 8, 32, 1
	}
	return 2, 32, (headDim + 63) / 64
}

// GroupMax is the query heads a decode block holds for a GQA group (launch_decode_gm).
func GroupMax(group int) int {
	switch {
	case group >= 8:
		return 8
	case group > 2:
		return 4
	case group == 2:
		return 2
	}
	return 1
}

// CallSplits is the split count of a call whose longest context is maxCtx
// (call_splits): it sizes the grid and strides the partials. No row's DecodeSplits
// exceeds it.
func (c Attn2Config) CallSplits(maxCtx int) int {
	if maxCtx <= 0 {
		return 1
	}
	_, n := c.DecodeSplits(maxCtx)
	return n
}

// Attn2Workspace is vireo_attention2_workspace_bytes.
func Attn2Workspace(rows, heads, kvHeads, headDim, maxCtx int, c Attn2Config) int {
	al := func(b int) int { return (b + 255) / 256 * 256 }
	gch := (heads/kvHeads + 7) / 8
	bm := c.BM
	if bm <= 0 {
		bm = 64
	}
	part := 0
	if ns := c.CallSplits(maxCtx); ns > 1 {
		part = al(rows * heads * ns * (headDim + 2) * 4)
	}
	return al(rows*kvHeads*gch*4) + al((rows+bm-1)/bm*16) + part
}

// AttnProblem is one vireo_attention2 call's operands, as float32 values of the
// activation type (the test rounds them).
type AttnProblem struct {
	Rows, Heads, KVHeads, HeadDim, BlockSize, MaxCtx, Blocks int
	LdQ, LdOut                                               int
	Seqs                                                     []int32 // [n][4]: q0, nq, pos, block offset
	RowSeq                                                   []int32 // [rows]
	Tables                                                   []int32
	Q                                                        []float32 // [rows][LdQ]
	K, V                                                     []float32 // [Blocks][KVHeads][BlockSize][HeadDim]
	Scale                                                    float32
	BF16                                                     bool // the 16-bit type the prefill kernel packs P into
	Vec16                                                    bool // 16-byte aligned operands (the decode kernel's 16-byte path)
}

// AttnTrace counts what the kernels touched: cache element reads per consumer, output
// writes, and which kernel computed each row.
type AttnTrace struct {
	// Reads[consumer][cache index] for K and V; a consumer is "d/row/kvh/gchunk" or
	// "p/tile/head".
	ReadK, ReadV map[string]map[int]int
	Writes       map[int]int // output element (row·LdOut + col) → times written
	RowKernel    []byte      // 'd' decode, 'p' prefill
	Partial      map[int]int // decode partials written (index) → times
}

func newTrace(rows int) *AttnTrace {
	return &AttnTrace{ReadK: map[string]map[int]int{}, ReadV: map[string]map[int]int{}, Writes: map[int]int{},
		RowKernel: make([]byte, rows), Partial: map[int]int{}}
}

func (t *AttnTrace) read(m map[string]map[int]int, who string, i int) {
	if m[who] == nil {
		m[who] = map[int]int{}
	}
	m[who][i]++
}

// Tile is one entry of the plan (attn_plan).
type Tile struct {
	Prefill        bool
	MaxCtx, MinCtx int
}

// rowCtx is a valid row's context: pos + (r - q0) + 1.
func (p *AttnProblem) rowCtx(r int) (ctx, boff int, ok bool) {
	si := p.RowSeq[r]
	if si < 0 {
		return 0, 0, false
	}
	s := p.Seqs[4*si : 4*si+4]
	return int(s[2]) + (r - int(s[0])) + 1, int(s[3]), true
}

// Plan is attn_plan: tile t of bm rows is a prefill tile when it has at least two rows,
// all valid and of one block table.
func (p *AttnProblem) Plan(bm int) []Tile {
	tiles := make([]Tile, (p.Rows+bm-1)/bm)
	for t := range tiles {
		r0, n := t*bm, min(bm, p.Rows-t*bm)
		_, boff0, ok := p.rowCtx(r0)
		tl := Tile{Prefill: ok && n >= 2, MinCtx: math.MaxInt32}
		for i := 0; i < n; i++ {
			ctx, boff, ok := p.rowCtx(r0 + i)
			if !ok || boff != boff0 {
				tl.Prefill = false
				continue
			}
			tl.MaxCtx, tl.MinCtx = max(tl.MaxCtx, ctx), min(tl.MinCtx, ctx)
		}
		tiles[t] = tl
	}
	return tiles
}

// Run models vireo_attention2: it returns the output [Rows][LdOut] (NaN where nothing
// was written) and the trace.
func (c Attn2Config) Run(p *AttnProblem) ([]float32, *AttnTrace) {
	out := make([]float32, p.Rows*p.LdOut)
	for i := range out {
		out[i] = float32(math.NaN())
	}
	tr := newTrace(p.Rows)
	var tiles []Tile
	prefill := c.UsesPrefill(p.Rows, p.HeadDim) && p.Vec16
	if prefill {
		tiles = p.Plan(c.BM)
		for t := range tiles {
			if !tiles[t].Prefill {
				continue
			}
			for h := 0; h < p.Heads; h++ {
				c.prefillBlock(p, tiles, t, h, out, tr)
			}
		}
	}
	group := p.Heads / p.KVHeads
	gch := (group + 7) / 8
	nsplit := c.CallSplits(p.MaxCtx)
	partial := make([]float32, p.Rows*p.Heads*nsplit*(p.HeadDim+2)) // a slot past it panics
	for r := 0; r < p.Rows; r++ {
		for y := 0; y < p.KVHeads*gch; y++ {
			// The splits of a (row, y) in launch order; the last to finish merges. The
			// model runs them in order, so the last is the highest live split.
			for s := 0; s < nsplit; s++ {
				c.decodeBlock(p, tiles, s, y, r, out, partial, tr)
			}
		}
	}
	return out, tr
}

// decodeBlock models one attn_decode block (split, y = kvh·gchunks + gc, row r).
func (c Attn2Config) decodeBlock(p *AttnProblem, tiles []Tile, split, y, r int, out, partial []float32, tr *AttnTrace) {
	pstride := c.CallSplits(p.MaxCtx) // the partials' stride per (row, head)
	hd := p.HeadDim
	vec, lpk, nv := DecodeVariant(hd, p.Vec16)
	kpw := 32 / lpk
	const U = 2
	warps := c.Warps
	NS := warps * kpw
	group := p.Heads / p.KVHeads
	gch := (group + 7) / 8
	GM := GroupMax(min(group, 8))
	kvh, gc := y/gch, y%gch
	g0 := gc * 8
	ng := min(GM, group-g0)
	h0 := kvh*group + g0
	bm := c.BM
	if bm <= 0 {
		bm = 64
	}
	if tiles != nil && tiles[r/bm].Prefill {
		return
	}
	ctx, boff, ok := p.rowCtx(r)
	if !ok {
		if split == 0 {
			for t := 0; t < ng*hd; t++ {
				i := r*p.LdOut + (h0+t/hd)*hd + t%hd
				out[i] = 0
				tr.Writes[i]++
			}
			tr.RowKernel[r] = 'd'
		}
		return
	}
	slen, nsplit := c.DecodeSplits(ctx)
	if split >= nsplit {
		return
	}
	tr.RowKernel[r] = 'd'
	p0, p1 := split*slen, min(ctx, split*slen+slen)
	who := fmt.Sprintf("d/%d/%d/%d", r, kvh, gc)
	scale := p.Scale * float32(math.Log2E)

	type streamState struct {
		m, l []float32
		acc  [][]float32 // [GM][hd]
	}
	streams := make([]streamState, NS)
	for s := range streams {
		st := &streams[s]
		st.m, st.l = make([]float32, GM), make([]float32, GM)
		st.acc = make([][]float32, GM)
		for g := range st.acc {
			st.m[g] = float32(math.Inf(-1))
			st.acc[g] = make([]float32, hd)
		}
	}
	// Lane (warp w, lane L) holds dims (j·lpk + L%lpk)·vec + v; its stream is
	// w·kpw + L/lpk. The model walks each stream's lanes together.
	pend := p1
	if c.Fault == Attn2FaultDrop {
		pend = p1 - 1
	}
	q := func(g, d int) float32 { return p.Q[r*p.LdQ+(h0+g)*hd+d] * scale }
	for w := 0; w < warps; w++ {
		for kg := 0; kg < kpw; kg++ {
			sIdx := w*kpw + kg
			st := &streams[sIdx]
			for base := p0 + sIdx; base < pend; base += NS * U {
				var pos [U]int
				var okU [U]bool
				var kf, vf [U][]float32
				for u := 0; u < U; u++ {
					pos[u] = base + u*NS
					okU[u] = pos[u] < pend
					kf[u], vf[u] = make([]float32, hd), make([]float32, hd)
					if !okU[u] {
						continue
					}
					blk := int(p.Tables[boff+pos[u]/p.BlockSize])
					off := ((blk*p.KVHeads+kvh)*p.BlockSize + pos[u]%p.BlockSize) * hd
					for gl := 0; gl < lpk; gl++ {
						for j := 0; j < nv; j++ {
							d0 := (j*lpk + gl) * vec
							if d0 >= hd {
								continue
							}
							for v := 0; v < vec; v++ {
								tr.read(tr.ReadK, who, off+d0+v)
								tr.read(tr.ReadV, who, off+d0+v)
								kf[u][d0+v], vf[u][d0+v] = p.K[off+d0+v], p.V[off+d0+v]
							}
						}
					}
				}
				for g := 0; g < ng; g++ {
					var sc [U]float32
					smax := float32(math.Inf(-1))
					for u := 0; u < U; u++ {
						// The lanes' partial dots, then the xor tree over the group.
						parts := make([]float32, lpk)
						for gl := 0; gl < lpk; gl++ {
							for j := 0; j < nv; j++ {
								d0 := (j*lpk + gl) * vec
								for v := 0; v < vec && d0 < hd; v++ {
									parts[gl] = float32(math.FMA(float64(q(g, d0+v)), float64(kf[u][d0+v]), float64(parts[gl])))
								}
							}
						}
						for o := lpk / 2; o > 0; o >>= 1 {
							next := make([]float32, lpk)
							for gl := range parts {
								next[gl] = parts[gl] + parts[gl^o]
							}
							parts = next
						}
						sc[u] = float32(math.Inf(-1))
						if okU[u] {
							sc[u] = parts[0]
						}
						smax = max(smax, sc[u])
					}
					mn := max(st.m[g], smax)
					corr := float32(0)
					if !math.IsInf(float64(st.m[g]), -1) {
						corr = float32(math.Exp2(float64(st.m[g] - mn)))
					}
					var pu [U]float32
					ls := float32(0)
					for u := 0; u < U; u++ {
						if okU[u] {
							pu[u] = float32(math.Exp2(float64(sc[u] - mn)))
						}
						ls += pu[u]
					}
					st.l[g] = st.l[g]*corr + ls
					st.m[g] = mn
					for d := 0; d < hd; d++ {
						t := st.acc[g][d] * corr
						for u := 0; u < U; u++ {
							t = float32(math.FMA(float64(pu[u]), float64(vf[u][d]), float64(t)))
						}
						st.acc[g][d] = t
					}
				}
			}
		}
	}
	// Merge the streams in order.
	rs := hd + 2
	for t := 0; t < ng*hd; t++ {
		g, d := t/hd, t%hd
		M := float32(math.Inf(-1))
		for s := 0; s < NS; s++ {
			M = max(M, streams[s].m[g])
		}
		var L, A float32
		for s := 0; s < NS; s++ {
			f := float32(0)
			if !math.IsInf(float64(streams[s].m[g]), -1) {
				f = float32(math.Exp2(float64(streams[s].m[g] - M)))
			}
			L += streams[s].l[g] * f
			A += streams[s].acc[g][d] * f
		}
		h := h0 + g
		if nsplit == 1 {
			i := r*p.LdOut + h*hd + d
			out[i] = div0(A, L)
			tr.Writes[i]++
			continue
		}
		pb := ((r*p.Heads+h)*pstride + split) * rs
		if d == 0 {
			partial[pb], partial[pb+1] = M, L
		}
		partial[pb+2+d] = A
		tr.Partial[pb+2+d]++
	}
	if nsplit == 1 || split != nsplit-1 {
		return
	}
	// The last split block merges (the model runs the splits in order: this one is last).
	for t := 0; t < ng*hd; t++ {
		g, d := t/hd, t%hd
		h := h0 + g
		pb := (r*p.Heads + h) * pstride * rs
		M := float32(math.Inf(-1))
		for s := 0; s < nsplit; s++ {
			M = max(M, partial[pb+s*rs])
		}
		var L, A float32
		for s := 0; s < nsplit; s++ {
			ms := partial[pb+s*rs]
			f := float32(0)
			if !math.IsInf(float64(ms), -1) {
				f = float32(math.Exp2(float64(ms - M)))
			}
			L += partial[pb+s*rs+1] * f
			A += partial[pb+s*rs+2+d] * f
		}
		i := r*p.LdOut + h*hd + d
		out[i] = div0(A, L)
		tr.Writes[i]++
	}
}

func div0(a, l float32) float32 {
	if l > 0 {
		return a / l
	}
	return 0
}

// Attn2Sweep is GPU run C's prepared sweep of the attention configurations around the
// default: decode split lengths, split caps and warps; prefill tile shapes.
func Attn2Sweep() []Attn2Config {
	var cs []Attn2Config
	d := DefaultAttn2()
	for _, sl := range []int{64, 128, 256, 512} {
		for _, w := range []int{2, 4, 8} {
			c := d
			c.SplitLen, c.Warps = sl, w
			cs = append(cs, c)
		}
	}
	for _, ms := range []int{16, 64} {
		c := d
		c.MaxSplits = ms
		cs = append(cs, c)
	}
	for _, bm := range []int{64, 128} {
		for _, bn := range []int{32, 64} {
			c := d
			c.BM, c.BN = bm, bn
			cs = append(cs, c)
		}
	}
	return cs
}

// String names a configuration in benchmark results.
func (c Attn2Config) String() string {
	s := fmt.Sprintf("split=%d/%d,warps=%d", c.SplitLen, c.MaxSplits, c.Warps)
	if c.Prefill {
		s += fmt.Sprintf(",bm=%d,bn=%d", c.BM, c.BN)
	}
	if c.Fault != 0 {
		s += fmt.Sprintf(",fault=%d", c.Fault)
	}
	return s
}
