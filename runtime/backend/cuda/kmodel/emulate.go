package kmodel

import (
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/vireo-ai/vireo/runtime/quant/w4"
)

// Call is one vireo_matmul2 launch to emulate.
type Call struct {
	Kind       Kind
	N, NOut, K int
	LdX, LdOut int // row strides in elements; 0: K and NOut (Col2 with split outputs)
	Epi        Epilogue
	// Split outputs (vireo_mm2_args.out2/out3): columns [Col2, Col3) go to a second
	// output of row stride Ld2, columns [Col3, NOut) to a third (Ld3); 0: unused.
	Col2, Col3, Ld2, Ld3 int
	Plan                 Plan
	Fault                Fault
	// Affine: a W4A16 weight from Q4_K (group offsets: the kernel also sums each
	// group's activations); false: from Q4_0.
	Affine bool
	// Seed orders the arrival of a tile's split-K blocks (the fixup must not depend on
	// which one comes last).
	Seed uint64
}

// Report is what Emulate found.
type Report struct {
	Violations int      // how many checks failed
	Errors     []string // the first maxErrors of them
	Blocks     int      // blocks emulated
	Products   int64    // tensor-core products formed with two real operands
	Stores     int      // output elements stored
}

const maxErrors = 20

func (r *Report) fail(format string, args ...any) {
	r.Violations++
	if len(r.Errors) < maxErrors {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// Err summarizes the violations, nil when there were none.
func (r *Report) Err() error {
	if r.Violations == 0 {
		return nil
	}
	return fmt.Errorf("%d violations, first: %v", r.Violations, r.Errors)
}

// What a shared-memory byte or register byte holds.
const (
	srcNone uint8 = iota // never written
	srcZero              // zero-filled by cp.async (src-size 0)
	srcX                 // byte b of activation x[row][k]
	srcW                 // weight W[row][k] (int8: b = 0)
	srcW4                // byte k of W4A16 weight row `row` (two levels: runtime/quant/w4)
	srcOne               // the constant 1 (the B operand that sums a group's activations)
)

type tag struct {
	src, b uint8
	row, k int32
}

type cell struct {
	t     tag
	group int32 // commit group of the cp.async that wrote it
	read  int32 // last barrier interval that read it; -1 none
}

// elem is one operand element of a product: x[row][k], W[row][k] or a zero.
type elem struct {
	src    uint8
	row, k int32
}

// acc is the symbolic state of one accumulator: which products it summed.
type acc struct {
	has       bool  // identity set
	row, wrow int32 // x row and weight row of its products
	lost      bool  // a product was formed with a zero-filled operand against a real one
	ks        []uint64
	n         int32
	lo, hi    int32 // the k range its products must fall in
}

func (a *acc) reset(words int, lo, hi int32) {
	a.has, a.lost, a.n, a.lo, a.hi = false, false, 0, lo, hi
	if cap(a.ks) < words {
		a.ks = make([]uint64, words)
	}
	a.ks = a.ks[:words]
	clear(a.ks)
}

// breakage injects index bugs into the emulated kernel so the tests can show that the
// checks catch them; it is the zero value outside those tests.
type breakage struct {
	swapGLU       bool // the B copy loads up rows where gate rows belong and back
	reverseChunks bool // the B ldmatrix addresses its four k chunks in reverse
	aOffset       int  // the A lds reads this many bytes further along the row
	prefetchEarly bool // the prefetch is issued before the barrier, not after it
	w4Shift       bool // W4A16: b0 and b1 take each other's nibble pairs
	w4Group       int  // W4A16: the group scale is read this many groups further on
	w4ScaleCol    bool // W4A16: the group scale of the fragment's other column
	w4NoOffset    bool // W4A16 Affine: the group offset's activation sum is skipped
}

var broken breakage

// mm2Params mirrors mm2::Params as vireo_matmul2 fills it.
type mm2Params struct {
	n, nOut, k, ldX, ldOut, nw int
	col2, col3, ld2, ld3       int // split outputs: col2 = col3 = nOut when unused
	glu, accum                 bool
	split, slice               int
	rowTiles, colTiles         int
	rowsFast                   bool
	vecOut                     [3]bool
	fault                      Fault
	affine                     bool
}

// tile mirrors mm2::Tile.
type tile struct {
	rt, ct, sliceID int
	k0, k1          int
	id              int
}

// Emulate replays call on configuration call.Plan.Config and checks every mapping
// invariant (see the package doc). It needs no GPU.
func Emulate(call Call) *Report {
	r := &Report{}
	if call.Plan.Config < 0 || call.Plan.Config >= len(Configs) {
		r.fail("no configuration %d", call.Plan.Config)
		return r
	}
	c := Configs[call.Plan.Config]
	if c.Kind != call.Kind {
		r.fail("configuration %d is %s, the call %s", call.Plan.Config, c.Kind, call.Kind)
		return r
	}
	p := mm2Params{n: call.N, nOut: call.NOut, k: call.K, ldX: call.LdX, ldOut: call.LdOut,
		glu: call.Epi == EpiSiLUGLU, accum: call.Epi == EpiAccumulate, split: max(1, call.Plan.Split),
		rowsFast: call.Plan.RowsFast, fault: call.Fault, affine: call.Affine && call.Kind == W4A16}
	if p.ldX == 0 {
		p.ldX = p.k
	}
	p.col2, p.col3 = p.nOut, p.nOut
	if call.Col2 > 0 {
		p.col2, p.col3, p.ld2, p.ld3 = call.Col2, p.nOut, call.Ld2, call.Ld3
		if call.Col3 > 0 {
			p.col3 = call.Col3
		}
		if p.ld2 == 0 {
			p.ld2 = p.col3 - p.col2
		}
		if p.ld3 == 0 {
			p.ld3 = p.nOut - p.col3
		}
		if p.glu || p.col2 >= p.col3 || p.col3 > p.nOut {
			r.fail("bad split outputs col2=%d col3=%d for n_out=%d (glu %v)", p.col2, p.col3, p.nOut, p.glu)
			return r
		}
	}
	if p.ldOut == 0 {
		p.ldOut = p.col2
	}
	if !Supported(p.k, p.ldX, c.AB()) || p.n <= 0 || p.nOut <= 0 || (c.Kind == W4A16 && !SupportedW4(p.k, p.ldX, p.affine)) {
		r.fail("unsupported call n=%d n_out=%d k=%d ld_x=%d", p.n, p.nOut, p.k, p.ldX)
		return r
	}
	p.nw = p.nOut
	if p.glu {
		p.nw = 2 * p.nOut
	}
	p.slice = SliceOf(c.Kind, p.k, p.split)
	p.rowTiles, p.colTiles = Tiles(call.Plan.Config, p.n, p.nOut, call.Epi)
	p.vecOut = [3]bool{p.ldOut%2 == 0, p.ld2%2 == 0, p.ld3%2 == 0}
	e := newEmu(c, p, r)
	rng := rand.New(rand.NewPCG(call.Seed, 0x6d6d32))
	gx, gy := p.colTiles, p.rowTiles
	if p.rowsFast {
		gx, gy = p.rowTiles, p.colTiles
	}
	for by := 0; by < gy; by++ {
		for bx := 0; bx < gx; bx++ {
			// The split blocks of one tile, in a random arrival order.
			for _, bz := range rng.Perm(p.split) {
				e.block(bx, by, bz)
				r.Blocks++
			}
		}
	}
	e.finish()
	return r
}

type emu struct {
	c   Config
	p   mm2Params
	r   *Report
	th  int
	acc []acc // [threads][MT][NT][4] of the block being emulated
	// W4A16: one group's accumulators (tmp, the same layout) and activation sums (xs,
	// [threads][MT][0][4] of the same layout).
	tmp, xs []acc
	// Workspace of split-K partials: index → a copy of the accumulator, and the tile
	// counters.
	ws       []*acc
	wsLen    int
	counters []int
	out      [3][]int32 // stores per element of each output segment [n][ld]
	smem     []cell
	// The commit groups of the block (every thread commits the same ones).
	committed, complete, visible, interval int32
}

func newEmu(c Config, p mm2Params, r *Report) *emu {
	e := &emu{c: c, p: p, r: r, th: c.Threads()}
	e.acc = make([]acc, e.th*c.Acc())
	if c.Kind == W4A16 {
		e.tmp = make([]acc, e.th*c.Acc())
		e.xs = make([]acc, e.th*c.Acc())
	}
	if p.split > 1 {
		e.wsLen = p.rowTiles * p.colTiles * p.split * c.BM() * c.BN()
		e.ws = make([]*acc, e.wsLen)
		e.counters = make([]int, p.rowTiles*p.colTiles)
	}
	for s, ld := range []int{p.ldOut, p.ld2, p.ld3} {
		e.out[s] = make([]int32, p.n*ld)
	}
	e.smem = make([]cell, c.SmemBytes())
	return e
}

func (e *emu) accAt(tid, m, j, el int) *acc {
	c := e.c
	return &e.acc[tid*c.Acc()+(m*c.NT+j)*4+el]
}

// ---- index maps, mirroring matmul2.cuh ----------------------------------------------

func tileCol(r, ct, bn int, glu bool) int {
	if glu {
		if r < bn/2 {
			return ct*(bn/2) + r
		}
		return ct*(bn/2) + r - bn/2
	}
	return ct*bn + r
}

func tileWrow(r, ct, bn int, glu bool, nOut int) int {
	col := tileCol(r, ct, bn, glu)
	if glu && r >= bn/2 {
		return nOut + col
	}
	return col
}

func fragBrow(wn, j, nt, bn int, glu bool) int {
	if !glu {
		return wn*8*nt + 8*j
	}
	h := nt / 2
	if j < h {
		return wn*8*h + 8*j
	}
	return bn/2 + wn*8*h + 8*(j-h)
}

func (e *emu) blockTile(bx, by, bz int) tile {
	var t tile
	if e.p.rowsFast {
		t.rt, t.ct = bx, by
	} else {
		t.ct, t.rt = bx, by
	}
	t.sliceID = bz
	t.k0 = t.sliceID * e.p.slice
	t.k1 = min(e.p.k, t.k0+e.p.slice)
	t.id = t.rt*e.p.colTiles + t.ct
	return t
}

func accRow(c Config, t tile, wm, m, el, g int) int {
	r := t.rt*c.BM() + wm*16*c.MT + m*16 + g
	if el >= 2 {
		r += 8
	}
	return r
}

func accBrow(c Config, wn, j, el, t4 int, glu bool) int {
	return fragBrow(wn, j, c.NT, c.BN(), glu) + 2*t4 + (el & 1)
}

// ---- the asynchronous copy pipeline ---------------------------------------------------

func (e *emu) resetBlock() {
	for i := range e.smem {
		e.smem[i] = cell{read: -1}
	}
	e.committed, e.complete, e.visible, e.interval = 0, 0, 0, 0
}

func (e *emu) commit()      { e.committed++ }
func (e *emu) wait(n int32) { e.complete = max(e.complete, e.committed-n) }
func (e *emu) barrier()     { e.visible = e.complete; e.interval++ }

// cpAsync16 is one thread's 16-byte cp.async into shared byte dst.
func (e *emu) cpAsync16(dst int, src [16]tag, lim int) {
	if dst < 0 || dst+16 > lim || dst%16 != 0 {
		e.r.fail("cp.async to shared byte %d outside its region [.., %d) or unaligned", dst, lim)
		return
	}
	for b := 0; b < 16; b++ {
		cl := &e.smem[dst+b]
		if cl.read == e.interval {
			e.r.fail("cp.async overwrites shared byte %d that this barrier interval reads", dst+b)
		}
		if cl.t.src != srcNone && cl.group >= e.visible {
			e.r.fail("cp.async overwrites shared byte %d whose previous copy (group %d) is still in flight", dst+b, cl.group)
		}
		*cl = cell{t: src[b], group: e.committed, read: -1}
	}
}

func (e *emu) lds(addr int) tag {
	if addr < 0 || addr >= len(e.smem) {
		e.r.fail("shared read at %d outside %d bytes", addr, len(e.smem))
		return tag{src: srcZero}
	}
	cl := &e.smem[addr]
	switch {
	case cl.t.src == srcNone:
		e.r.fail("shared byte %d read before any copy wrote it", addr)
	case cl.group >= e.visible:
		e.r.fail("shared byte %d read while its copy (group %d) is in flight or not yet behind a barrier", addr, cl.group)
	}
	cl.read = e.interval
	return cl.t
}

// loadStage mirrors mm2::load_stage for every thread of the block.
func (e *emu) loadStage(t tile, stage, kb int) {
	c, p := e.c, e.p
	base := stage * c.stageBytes()
	aEnd, bEnd := base+c.aBytes(), base+c.stageBytes()
	elems := 16 / c.AB()
	for tid := 0; tid < e.th; tid++ {
		for c0 := 0; c0 < c.BM()*c.AChunks(); c0 += e.th {
			ch := c0 + tid
			if ch >= c.BM()*c.AChunks() {
				continue
			}
			r, q := ch/c.AChunks(), ch%c.AChunks()
			row := t.rt*c.BM() + r
			kk := kb + q*elems
			ok := row < p.n && kk < t.k1
			var src [16]tag
			for b := range src {
				src[b] = tag{src: srcZero}
				if ok {
					src[b] = tag{src: srcX, b: uint8(b % c.AB()), row: int32(row), k: int32(kk + b/c.AB())}
				}
			}
			if ok && (kk+elems > p.k || kk < 0) {
				e.r.fail("A copy reads x[%d][%d..%d], past k = %d", row, kk, kk+elems-1, p.k)
			}
			e.cpAsync16(base+r*c.AStride()+q*16, src, aEnd)
		}
		for c0 := 0; c0 < c.BN()*c.BChunks(); c0 += e.th {
			ch := c0 + tid
			if ch >= c.BN()*c.BChunks() {
				continue
			}
			r, q := ch/c.BChunks(), ch%c.BChunks()
			col := tileCol(r, t.ct, c.BN(), p.glu)
			wr := tileWrow(r, t.ct, c.BN(), p.glu, p.nOut)
			if broken.swapGLU && p.glu {
				wr = tileWrow((r+c.BN()/2)%c.BN(), t.ct, c.BN(), p.glu, p.nOut)
			}
			if c.Kind == W4A16 {
				kk := kb + q*32 // one 32-k group: bytes kk/2 .. kk/2+15 of the row
				ok := col < p.nOut && kk < t.k1
				var src [16]tag
				for b := range src {
					src[b] = tag{src: srcZero}
					if ok {
						src[b] = tag{src: srcW4, row: int32(wr), k: int32(kk/2 + b)}
					}
				}
				if ok && (wr >= p.nw || kk+32 > p.k) {
					e.r.fail("B copy reads W4 row %d k %d..%d outside [%d][%d]", wr, kk, kk+31, p.nw, p.k)
				}
				e.cpAsync16(base+c.aBytes()+r*c.BStride()+q*16, src, bEnd)
				continue
			}
			kk := kb + q*16
			ok := col < p.nOut && kk < t.k1
			var src [16]tag
			for b := range src {
				src[b] = tag{src: srcZero}
				if ok {
					src[b] = tag{src: srcW, row: int32(wr), k: int32(kk + b)}
				}
			}
			if ok && (wr >= p.nw || kk+16 > p.k) {
				e.r.fail("B copy reads W[%d][%d..%d] outside [%d][%d]", wr, kk, kk+15, p.nw, p.k)
			}
			e.cpAsync16(base+c.aBytes()+r*c.BStride()+q*16, src, bEnd)
		}
	}
}

// ---- fragments and the tensor-core products ------------------------------------------

type reg [4]tag // one 32-bit register: 4 bytes

// ldmatrixX4 mirrors ldmatrix.sync.aligned.m8n8.x4.shared.b16: lane 8q+i supplies the
// address of row i of matrix q; lane (g, t) receives, in register q, the 4 bytes at
// row g's address + 4t.
func (e *emu) ldmatrixX4(addr *[32]int) (out [32][4]reg) {
	for q := 0; q < 4; q++ {
		for g := 0; g < 8; g++ {
			a := addr[8*q+g]
			if a%16 != 0 {
				e.r.fail("ldmatrix row address %d not 16-byte aligned", a)
			}
			for t := 0; t < 4; t++ {
				for b := 0; b < 4; b++ {
					out[4*g+t][q][b] = e.lds(a + 4*t + b)
				}
			}
		}
	}
	return out
}

func (e *emu) lds64(addr int) (lo, hi reg) {
	if addr%8 != 0 {
		e.r.fail("8-byte shared load at %d unaligned", addr)
	}
	for b := 0; b < 4; b++ {
		lo[b] = e.lds(addr + b)
		hi[b] = e.lds(addr + 4 + b)
	}
	return lo, hi
}

// half is 16-bit element h (0 or 1) of a register holding activations.
func (e *emu) half(r reg, h int) elem {
	lo, hi := r[2*h], r[2*h+1]
	switch {
	case lo.src == srcZero && hi.src == srcZero:
		return elem{src: srcZero}
	case lo.src == srcX && hi.src == srcX && lo.b == 0 && hi.b == 1 && lo.row == hi.row && lo.k == hi.k:
		return elem{src: srcX, row: lo.row, k: lo.k}
	}
	e.r.fail("a 16-bit register half holds bytes of different elements: %+v %+v", lo, hi)
	return elem{src: srcZero}
}

func byteElem(t tag) elem { return elem{src: t.src, row: t.row, k: t.k} }

// Fragment lookups of the PTX ISA's mma layouts (lane = 4g + t).
type slot struct{ lane, reg, part int }

// m16n8k16 (.f16/.bf16): A[r][kl] in lane (r%8, (kl%8)/2), register r/8 + 2(kl/8),
// half kl%2; B[kl][c] in lane (c, (kl%8)/2), register kl/8, half kl%2; D[r][c] in lane
// (r%8, (c%8)/2), element 2(r/8) + c%2.
func a16(r, kl int) slot { return slot{4*(r%8) + (kl%8)/2, r/8 + 2*(kl/8), kl % 2} }
func b16(kl, c int) slot { return slot{4*c + (kl%8)/2, kl / 8, kl % 2} }

// m16n8k32 (.s8): A[r][kl] in lane (r%8, (kl%16)/4), register r/8 + 2(kl/16), byte
// kl%4; B[kl][c] in lane (c, (kl%16)/4), register kl/16, byte kl%4.
func a32(r, kl int) slot { return slot{4*(r%8) + (kl%16)/4, r/8 + 2*(kl/16), kl % 4} }
func b32(kl, c int) slot { return slot{4*c + (kl%16)/4, kl / 16, kl % 4} }

func dslot(r, c int) slot { return slot{4*(r%8) + (c%8)/2, 2*(r/8) + c%2, 0} }

// product records a·b into a.
func (e *emu) product(ac *acc, a, b elem) {
	if b.src == srcOne {
		if a.src == srcZero {
			return // a padding row's sum: zero
		}
		b = elem{src: srcW, row: -1, k: a.k} // a sum of x: "weight row" -1
	}
	switch {
	case a.src == srcX && b.src == srcW:
	case a.src == srcZero && b.src == srcZero:
		return
	case a.src == srcZero || b.src == srcZero:
		ac.lost = true // harmless unless the accumulator is stored
		return
	default:
		e.r.fail("product of %+v and %+v", a, b)
		return
	}
	e.r.Products++
	if a.k != b.k {
		e.r.fail("product pairs x[%d][%d] with W[%d][%d]", a.row, a.k, b.row, b.k)
		return
	}
	if !ac.has {
		ac.has, ac.row, ac.wrow = true, a.row, b.row
	} else if ac.row != a.row || ac.wrow != b.row {
		e.r.fail("accumulator of x row %d · W row %d also sums x[%d][%d]·W[%d][%d]", ac.row, ac.wrow, a.row, a.k, b.row, b.k)
		return
	}
	if a.k < ac.lo || a.k >= ac.hi {
		e.r.fail("k %d outside the block's slice [%d, %d)", a.k, ac.lo, ac.hi)
		return
	}
	w, bit := a.k/64, uint64(1)<<(a.k%64)
	if ac.ks[w]&bit != 0 {
		e.r.fail("x[%d][%d]·W[%d][%d] summed twice", a.row, a.k, b.row, b.k)
		return
	}
	ac.ks[w] |= bit
	ac.n++
}

// mma16816 mirrors mma.sync m16n8k16 on the warp's registers: a[lane] (4 regs of 2
// halfs), b[lane] (2 regs, each 2 dequantized weights, kept as the int8 bytes 0,1 or
// 2,3 of the loaded word) into the accumulators of fragment (m, j).
func (e *emu) mma16816(warp, m, j int, a *[32][4]reg, b *[32][2][2]elem) {
	var A [16][16]elem
	var B [16][8]elem
	for r := 0; r < 16; r++ {
		for kl := 0; kl < 16; kl++ {
			s := a16(r, kl)
			A[r][kl] = e.half(a[s.lane][s.reg], s.part)
		}
	}
	for kl := 0; kl < 16; kl++ {
		for cc := 0; cc < 8; cc++ {
			s := b16(kl, cc)
			B[kl][cc] = b[s.lane][s.reg][s.part]
		}
	}
	for r := 0; r < 16; r++ {
		for cc := 0; cc < 8; cc++ {
			d := dslot(r, cc)
			ac := e.accAt(warp*32+d.lane, m, j, d.reg)
			for kl := 0; kl < 16; kl++ {
				e.product(ac, A[r][kl], B[kl][cc])
			}
		}
	}
}

// mma16832 mirrors mma.sync m16n8k32 .s8: a[lane] 4 regs of 4 bytes, b[lane] 2 regs.
func (e *emu) mma16832(warp, m, j int, a *[32][4]reg, b *[32][2]reg) {
	var A [16][32]elem
	var B [32][8]elem
	for r := 0; r < 16; r++ {
		for kl := 0; kl < 32; kl++ {
			s := a32(r, kl)
			A[r][kl] = byteElem(a[s.lane][s.reg][s.part])
		}
	}
	for kl := 0; kl < 32; kl++ {
		for cc := 0; cc < 8; cc++ {
			s := b32(kl, cc)
			B[kl][cc] = byteElem(b[s.lane][s.reg][s.part])
		}
	}
	for r := 0; r < 16; r++ {
		for cc := 0; cc < 8; cc++ {
			d := dslot(r, cc)
			ac := e.accAt(warp*32+d.lane, m, j, d.reg)
			for kl := 0; kl < 32; kl++ {
				e.product(ac, A[r][kl], B[kl][cc])
			}
		}
	}
}

// bFrags mirrors the B-fragment loads of mm2::compute_w8a16 and compute_w4: for each of
// the warp's NT column fragments (warp column wn), one ldmatrix.x4 of the 64 bytes at
// k-group kg of the stage's B tile (at sb), lane l reading row l&7 of the fragment,
// chunk l>>3.
func (e *emu) bFrags(sb, kg, wn int) [][32][4]reg {
	c, p := e.c, e.p
	bq := make([][32][4]reg, c.NT)
	for j := 0; j < c.NT; j++ {
		var addr [32]int
		for lane := 0; lane < 32; lane++ {
			row := fragBrow(wn, j, c.NT, c.BN(), p.glu) + (lane & 7)
			chunk := lane >> 3
			if broken.reverseChunks {
				chunk = 3 - chunk
			}
			addr[lane] = sb + row*c.BStride() + kg*64 + chunk*16
		}
		bq[j] = e.ldmatrixX4(&addr)
	}
	return bq
}

// computeW8A16 mirrors mm2::compute_w8a16 for warp (wm, wn).
func (e *emu) computeW8A16(stage, warp, wm, wn int, halfRows bool) {
	c := e.c
	sa := stage * c.stageBytes()
	sb := sa + c.aBytes()
	for kg := 0; kg < c.BK/64; kg++ {
		bq := e.bFrags(sb, kg, wn)
		for i := 0; i < 4; i++ {
			a := make([][32][4]reg, c.MT)
			for m := 0; m < c.MT; m++ {
				for lane := 0; lane < 32; lane++ {
					g, t := lane>>2, lane&3
					r := wm*16*c.MT + m*16 + g
					off := (kg*64+16*i+4*t)*2 + broken.aOffset
					lo, hi := e.lds64(sa + r*c.AStride() + off)
					a[m][lane][0], a[m][lane][2] = lo, hi
					if c.MT == 1 && halfRows {
						a[m][lane][1], a[m][lane][3] = zeroReg(), zeroReg()
					} else {
						lo, hi := e.lds64(sa + (r+8)*c.AStride() + off)
						a[m][lane][1], a[m][lane][3] = lo, hi
					}
				}
			}
			for j := 0; j < c.NT; j++ {
				var b [32][2][2]elem
				for lane := 0; lane < 32; lane++ {
					w := bq[j][lane][i] // deq: b0 = bytes 0,1; b1 = bytes 2,3
					b[lane][0] = [2]elem{byteElem(w[0]), byteElem(w[1])}
					b[lane][1] = [2]elem{byteElem(w[2]), byteElem(w[3])}
				}
				for m := 0; m < c.MT; m++ {
					e.mma16816(warp, m, j, &a[m], &b)
				}
			}
		}
	}
}

// w4Inv maps a byte of a W4A16 chunk (0..15) and a nibble shift (0 or 4) to the input
// offset in the group it holds: the inverse of runtime/quant/w4.Pos, the format's own
// definition (the emulated kernel's register decode is checked against it).
var w4Inv = func() (inv [32]int) {
	for o := range w4.Group {
		b, sh := w4.Pos(o)
		inv[2*b+int(sh/4)] = o
	}
	return inv
}()

// deq4 mirrors mm2::deq4: nibbles sh/4 and sh/4+4 of a 32-bit register of W4A16 bytes
// as the pair of elements they hold. The register must be one aligned word of one row.
func (e *emu) deq4(w reg, sh int) [2]elem {
	var out [2]elem
	for h, nib := range []int{sh / 4, sh/4 + 4} {
		t := w[nib/2]
		switch t.src {
		case srcZero:
			out[h] = elem{src: srcZero}
			continue
		case srcW4:
		default:
			e.r.fail("W4 dequantization of a register byte holding %+v", t)
			out[h] = elem{src: srcZero}
			continue
		}
		if w[0].src != srcW4 || w[0].k%4 != 0 || w[3].k != w[0].k+3 || w[0].row != w[3].row {
			e.r.fail("W4 register is not one aligned word of one row: %+v", w)
		}
		bo := int(t.k)
		out[h] = elem{src: srcW, row: t.row, k: int32(bo/16*w4.Group + w4Inv[2*(bo%16)+nib%2])}
	}
	return out
}

// computeW4 mirrors mm2::compute_w4 for warp (wm, wn): per group, fresh accumulators
// (tmp) and, for Affine, the group's activation sums (xs); then the group's scale, of
// the right weight row and group, folds tmp into acc (and xs must have summed exactly
// the k the products did).
func (e *emu) computeW4(t tile, stage, warp, wm, wn int, halfRows bool, kb int) {
	c, p := e.c, e.p
	sa := stage * c.stageBytes()
	sb := sa + c.aBytes()
	for kg := 0; kg < c.BK/128; kg++ {
		bq := e.bFrags(sb, kg, wn)
		for q := 0; q < 4; q++ {
			k0 := kb + kg*128 + 32*q
			if k0 >= t.k1 {
				break
			}
			words := len(e.acc[0].ks)
			for i := range e.tmp {
				e.tmp[i].reset(words, int32(k0), int32(k0+32))
				e.xs[i].reset(words, int32(k0), int32(k0+32))
			}
			main := e.acc
			for s := 0; s < 2; s++ {
				a := make([][32][4]reg, c.MT)
				for m := 0; m < c.MT; m++ {
					for lane := 0; lane < 32; lane++ {
						g, t4 := lane>>2, lane&3
						r := wm*16*c.MT + m*16 + g
						off := (kg*128+32*q+8*t4+4*s)*2 + broken.aOffset
						lo, hi := e.lds64(sa + r*c.AStride() + off)
						a[m][lane][0], a[m][lane][2] = lo, hi
						if c.MT == 1 && halfRows {
							a[m][lane][1], a[m][lane][3] = zeroReg(), zeroReg()
						} else {
							lo, hi := e.lds64(sa + (r+8)*c.AStride() + off)
							a[m][lane][1], a[m][lane][3] = lo, hi
						}
					}
				}
				e.acc = e.tmp
				for j := 0; j < c.NT; j++ {
					var b [32][2][2]elem
					for lane := 0; lane < 32; lane++ {
						s0, s1 := 8*s, 8*s+4
						if broken.w4Shift {
							s0, s1 = s1, s0
						}
						b[lane][0] = e.deq4(bq[j][lane][q], s0)
						b[lane][1] = e.deq4(bq[j][lane][q], s1)
					}
					for m := 0; m < c.MT; m++ {
						e.mma16816(warp, m, j, &a[m], &b)
					}
				}
				if p.affine && !broken.w4NoOffset {
					e.acc = e.xs
					var ones [32][2][2]elem
					for lane := range ones {
						for i := range ones[lane] {
							ones[lane][i] = [2]elem{{src: srcOne}, {src: srcOne}}
						}
					}
					for m := 0; m < c.MT; m++ {
						e.mma16816(warp, m, 0, &a[m], &ones)
					}
				}
				e.acc = main
			}
			gi := k0/32 + broken.w4Group
			for lane := 0; lane < 32; lane++ {
				tid := warp*32 + lane
				t4 := lane & 3
				for j := 0; j < c.NT; j++ {
					for e2 := 0; e2 < 2; e2++ {
						br := fragBrow(wn, j, c.NT, c.BN(), p.glu) + 2*t4 + e2
						if broken.w4ScaleCol {
							br ^= 1
						}
						wr := -1
						if tileCol(br, t.ct, c.BN(), p.glu) < p.nOut {
							wr = tileWrow(br, t.ct, c.BN(), p.glu, p.nOut)
							e.scale(wr, p.nw, "w4 scale row")
							e.scale(gi, p.k/32, "w4 scale group")
						}
						for m := 0; m < c.MT; m++ {
							for h := 0; h < 2; h++ {
								el := 2*h + e2
								tmp, sum := e.tmpAt(e.tmp, tid, m, j, el), e.tmpAt(e.xs, tid, m, 0, el)
								if wr >= 0 && tmp.has {
									if int(tmp.wrow) != wr {
										e.r.fail("the group scale of W row %d multiplies products of W row %d", wr, tmp.wrow)
									}
									if lo := lowK(tmp); lo/32 != gi {
										e.r.fail("the scale of group %d multiplies products of group %d (W row %d)", gi, lo/32, wr)
									}
									if p.affine && (!sum.has || sum.row != tmp.row || !sameKs(sum, tmp)) {
										e.r.fail("x row %d · W row %d, group %d: the offset's activation sum does not cover the group's products", tmp.row, tmp.wrow, gi)
									}
								}
								e.merge(e.accAt(tid, m, j, el), tmp)
							}
						}
					}
				}
			}
		}
	}
}

func (e *emu) tmpAt(s []acc, tid, m, j, el int) *acc { return &s[tid*e.c.Acc()+(m*e.c.NT+j)*4+el] }

func lowK(a *acc) int {
	for w, v := range a.ks {
		if v != 0 {
			return 64*w + bits.TrailingZeros64(v)
		}
	}
	return -1
}

func sameKs(a, b *acc) bool {
	for w := range a.ks {
		if a.ks[w] != b.ks[w] {
			return false
		}
	}
	return a.n == b.n
}

func zeroReg() reg { return reg{{src: srcZero}, {src: srcZero}, {src: srcZero}, {src: srcZero}} }

// computeW8A8 mirrors mm2::compute_w8a8 for warp (wm, wn).
func (e *emu) computeW8A8(stage, warp, wm, wn int) {
	c, p := e.c, e.p
	sa := stage * c.stageBytes()
	sb := sa + c.aBytes()
	for ks := 0; ks < c.BK/32; ks++ {
		a := make([][32][4]reg, c.MT)
		for m := 0; m < c.MT; m++ {
			var addr [32]int
			for lane := 0; lane < 32; lane++ {
				q, r8 := lane>>3, lane&7
				row := wm*16*c.MT + m*16 + (q&1)*8 + r8
				addr[lane] = sa + row*c.AStride() + ks*32 + (q>>1)*16
			}
			a[m] = e.ldmatrixX4(&addr)
		}
		for jp := 0; jp < c.NT/2; jp++ {
			var addr [32]int
			for lane := 0; lane < 32; lane++ {
				q, r8 := lane>>3, lane&7
				row := fragBrow(wn, 2*jp+(q>>1), c.NT, c.BN(), p.glu) + r8
				addr[lane] = sb + row*c.BStride() + ks*32 + (q&1)*16
			}
			bv := e.ldmatrixX4(&addr)
			var b0, b1 [32][2]reg
			for lane := 0; lane < 32; lane++ {
				b0[lane] = [2]reg{bv[lane][0], bv[lane][1]}
				b1[lane] = [2]reg{bv[lane][2], bv[lane][3]}
			}
			for m := 0; m < c.MT; m++ {
				e.mma16832(warp, m, 2*jp, &a[m], &b0)
				e.mma16832(warp, m, 2*jp+1, &a[m], &b1)
			}
		}
	}
}

// ---- one block: mm2::mm2_kernel ---------------------------------------------------------

func (e *emu) block(bx, by, bz int) {
	c, p := e.c, e.p
	t := e.blockTile(bx, by, bz)
	if t.rt >= p.rowTiles || t.ct >= p.colTiles {
		e.r.fail("block (%d,%d,%d) maps to tile (%d,%d) outside %d×%d", bx, by, bz, t.rt, t.ct, p.rowTiles, p.colTiles)
		return
	}
	e.resetBlock()
	words := (p.k + 63) / 64
	for i := range e.acc {
		e.acc[i].reset(words, int32(t.k0), int32(t.k1))
	}
	halfRows := p.n-t.rt*c.BM() <= 8
	nk := 0
	if t.k1 > t.k0 {
		nk = (t.k1 - t.k0 + c.BK - 1) / c.BK
	}
	if p.fault == FaultKStep && nk > 1 {
		nk--
	}
	for s := 0; s < c.Stages-1; s++ {
		if s < nk {
			e.loadStage(t, s, t.k0+s*c.BK)
		}
		e.commit()
	}
	for it := 0; it < nk; it++ {
		e.wait(int32(c.Stages - 2))
		pf := it + c.Stages - 1
		if broken.prefetchEarly && pf < nk {
			e.loadStage(t, pf%c.Stages, t.k0+pf*c.BK)
		}
		e.barrier()
		if !broken.prefetchEarly && pf < nk {
			e.loadStage(t, pf%c.Stages, t.k0+pf*c.BK)
		}
		e.commit()
		for warp := 0; warp < c.WM*c.WN; warp++ {
			wm, wn := warp/c.WN, warp%c.WN
			switch c.Kind {
			case W4A16:
				e.computeW4(t, it%c.Stages, warp, wm, wn, halfRows, t.k0+it*c.BK)
			case W8A16:
				e.computeW8A16(it%c.Stages, warp, wm, wn, halfRows)
			default:
				e.computeW8A8(it%c.Stages, warp, wm, wn)
			}
		}
	}
	e.wait(0)
	if p.split > 1 && !e.splitFixup(t) {
		return
	}
	e.epilogue(t)
}

// splitFixup mirrors mm2::split_fixup: every block publishes its partials; the tile's
// last block sums them in slice order.
func (e *emu) splitFixup(t tile) bool {
	c, p := e.c, e.p
	per := c.BM() * c.BN()
	tileBase := t.id * p.split * per
	for tid := 0; tid < e.th; tid++ {
		for i := 0; i < c.Acc(); i++ {
			idx := tileBase + t.sliceID*per + i*e.th + tid
			if idx < 0 || idx >= e.wsLen {
				e.r.fail("partial %d outside the workspace of %d", idx, e.wsLen)
				continue
			}
			if e.ws[idx] != nil {
				e.r.fail("partial %d written twice", idx)
			}
			cp := e.acc[tid*c.Acc()+i]
			cp.ks = append([]uint64(nil), cp.ks...)
			e.ws[idx] = &cp
		}
	}
	if t.id >= len(e.counters) {
		e.r.fail("counter %d outside %d", t.id, len(e.counters))
		return false
	}
	prev := e.counters[t.id]
	e.counters[t.id]++
	if prev != p.split-1 {
		return false
	}
	e.counters[t.id] = 0
	for tid := 0; tid < e.th; tid++ {
		for i := 0; i < c.Acc(); i++ {
			sum := acc{lo: 0, hi: int32(p.k), ks: make([]uint64, len(e.acc[0].ks))}
			for s := 0; s < p.split; s++ {
				var part *acc
				if s == t.sliceID {
					part = &e.acc[tid*c.Acc()+i]
				} else {
					idx := tileBase + s*per + i*e.th + tid
					part = e.ws[idx]
					if part == nil {
						e.r.fail("the last block reads partial %d that no block wrote", idx)
						continue
					}
				}
				e.merge(&sum, part)
			}
			e.acc[tid*c.Acc()+i] = sum
		}
	}
	return true
}

func (e *emu) merge(sum, part *acc) {
	sum.lost = sum.lost || part.lost
	if part.has {
		if !sum.has {
			sum.has, sum.row, sum.wrow = true, part.row, part.wrow
		} else if sum.row != part.row || sum.wrow != part.wrow {
			e.r.fail("split-K sums partials of x row %d · W row %d and x row %d · W row %d", sum.row, sum.wrow, part.row, part.wrow)
		}
	}
	for w := range part.ks {
		if sum.ks[w]&part.ks[w] != 0 {
			e.r.fail("split-K slices overlap in k (word %d)", w)
		}
		sum.ks[w] |= part.ks[w]
	}
	sum.n += part.n
}

// epilogue mirrors mm2::epilogue: which accumulators go to which output element.
func (e *emu) epilogue(t tile) {
	c, p := e.c, e.p
	jn := c.NT
	if p.glu {
		jn = c.NT / 2
	}
	for warp := 0; warp < c.WM*c.WN; warp++ {
		wm, wn := warp/c.WN, warp%c.WN
		for lane := 0; lane < 32; lane++ {
			tid := warp*32 + lane
			g, t4 := lane>>2, lane&3
			for j := 0; j < jn; j++ {
				br := accBrow(c, wn, j, 0, t4, p.glu)
				col := tileCol(br, t.ct, c.BN(), p.glu)
				if col >= p.nOut {
					continue
				}
				two := col+1 < p.nOut
				wg := tileWrow(br, t.ct, c.BN(), p.glu, p.nOut)
				w8 := c.Kind != W4A16 // W4A16 applied its group scales already
				if w8 {
					e.scale(wg, p.nw, "w_scale")
				}
				if two && w8 {
					e.scale(wg+1, p.nw, "w_scale")
				}
				wu := -1
				if p.glu {
					wu = tileWrow(accBrow(c, wn, j+c.NT/2, 0, t4, p.glu), t.ct, c.BN(), p.glu, p.nOut)
					if w8 {
						e.scale(wu, p.nw, "w_scale")
					}
					if two && w8 {
						e.scale(wu+1, p.nw, "w_scale")
					}
				}
				for m := 0; m < c.MT; m++ {
					for h := 0; h < 2; h++ {
						row := accRow(c, t, wm, m, 2*h, g)
						if p.fault == FaultRow && row+1 < p.n {
							row++
						}
						if row >= p.n {
							continue
						}
						if c.Kind == W8A8 {
							e.scale(row, p.n, "x_scale")
						}
						for el := 0; el < 2; el++ {
							if el == 1 && !two {
								break
							}
							// The value stored at out[row][col+el]: gate (or the plain
							// product) and, with GLU, up.
							want := col + el
							e.check(e.accAt(tid, m, j, 2*h+el), row, want, "")
							if p.glu {
								e.check(e.accAt(tid, m, j+c.NT/2, 2*h+el), row, p.nOut+col+el, "up ")
							}
							if wg+el != want || (p.glu && wu+el != p.nOut+want) {
								e.r.fail("scales of W rows %d/%d used for output column %d", wg+el, wu+el, want)
							}
						}
						s0, l0 := e.seg(col)
						if two {
							if s1, l1 := e.seg(col + 1); s0 == s1 && l0%2 == 0 && p.vecOut[s0] && l1 != l0+1 {
								e.r.fail("paired store of columns %d, %d not adjacent", col, col+1)
							}
						}
						e.store(row, col)
						if two {
							e.store(row, col+1)
						}
					}
				}
			}
		}
	}
}

func (e *emu) scale(i, n int, what string) {
	if i < 0 || i >= n {
		e.r.fail("%s[%d] read outside [0, %d)", what, i, n)
	}
}

// check: the accumulator stored at out[row][col] must hold x[row][k]·W[wrow][k] for every
// k in [0, K), each once, and nothing else.
func (e *emu) check(a *acc, row, wrow int, what string) {
	switch {
	case !a.has:
		e.r.fail("out[%d]: %saccumulator for W row %d holds no products", row, what, wrow)
	case int(a.row) != row || int(a.wrow) != wrow:
		e.r.fail("out[%d][W row %d]: %saccumulator holds x row %d · W row %d", row, wrow, what, a.row, a.wrow)
	case a.lost:
		e.r.fail("out[%d][W row %d]: %sa product was formed with a zero-filled operand", row, wrow, what)
	case int(a.n) != e.p.k:
		e.r.fail("out[%d][W row %d]: %saccumulator sums %d of the %d products", row, wrow, what, a.n, e.p.k)
	default:
		// a.n == K with no duplicates (product refuses them) and every k in range: each k once.
		n := 0
		for _, w := range a.ks {
			n += bits.OnesCount64(w)
		}
		if n != e.p.k {
			e.r.fail("out[%d][W row %d]: %s%d distinct k, want %d", row, wrow, what, n, e.p.k)
		}
	}
}

// seg mirrors mm2::seg_ptr: the output segment of column col and its column there.
func (e *emu) seg(col int) (s, l int) {
	switch {
	case col < e.p.col2:
		return 0, col
	case col < e.p.col3:
		return 1, col - e.p.col2
	}
	return 2, col - e.p.col3
}

func (e *emu) segWidth(s int) int {
	return [3]int{e.p.col2, e.p.col3 - e.p.col2, e.p.nOut - e.p.col3}[s]
}

func (e *emu) store(row, col int) {
	if row < 0 || row >= e.p.n || col < 0 || col >= e.p.nOut {
		e.r.fail("store to out[%d][%d] outside [%d][%d]", row, col, e.p.n, e.p.nOut)
		return
	}
	s, l := e.seg(col)
	ld := [3]int{e.p.ldOut, e.p.ld2, e.p.ld3}[s]
	if l < 0 || l >= ld {
		e.r.fail("store to column %d of output %d, whose rows hold %d", l, s, ld)
		return
	}
	e.out[s][row*ld+l]++
	e.r.Stores++
}

// finish checks that every output element was stored exactly once (row padding never)
// and the counters are back to zero.
func (e *emu) finish() {
	p := e.p
	for s, ld := range []int{p.ldOut, p.ld2, p.ld3} {
		w := e.segWidth(s)
		for row := 0; row < p.n; row++ {
			for col := 0; col < ld; col++ {
				n := e.out[s][row*ld+col]
				switch {
				case col < w && n != 1:
					e.r.fail("output %d [%d][%d] stored %d times", s, row, col, n)
				case col >= w && n != 0:
					e.r.fail("output %d [%d][%d] (row padding) stored %d times", s, row, col, n)
				}
			}
		}
	}
	for i, v := range e.counters {
		if v != 0 {
			e.r.fail("tile counter %d left at %d", i, v)
		}
	}
}
