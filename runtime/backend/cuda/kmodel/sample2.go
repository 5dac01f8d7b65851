package kmodel

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/vireo-ai/vireo/runtime/sampling"
)

// The v2 sampler (cuda/kernels/sampling2.cu), modelled pass for pass: the same grid,
// the same thread→element mapping, the same per-row state machine, in plain Go. Its
// tests check that it draws exactly runtime/sampling's token on every kind of row, and
// that every pass visits every vocabulary element of a row exactly once, through the
// path (16-byte vector or scalar tail) the kernel takes for it.
//
// Passes, each a kernel (grid = chunks × rows unless said otherwise):
//
//	K0 penalties (rows): history counts by atomics, the penalized logit of each distinct
//	   history id written into x and flagged in a bitmap
//	K1 copy: x = canonical logit (or the penalized one), the row's argmax by a 64-bit
//	   atomicMax of (order key << 32 | ^id)
//	K2 weights: e and the integer masses, Z, the min-p mass, the base histogram of the
//	   order key's top byte (counts and masses); the last block of the row starts the
//	   selections (top-k by count, top-p by mass) or, with no filter, finds the chunk
//	   where the id-order draw lands
//	S  ×6 radix passes: each active selection narrows its order-key prefix by 8 bits
//	   (per-block histograms merged by atomics; the row's last block picks the digit);
//	   when top-k/top-p are settled the draw's selection starts (mass θ = target+1)
//	I  id select: only when the drawn logit has ties and the draw is not the first of
//	   them: per-chunk member counts, the last block finds the chunk and the rank
//	F  finalize (rows): writes the token (scanning one chunk when needed) and resets
//	   the row's state for the next call
//
// Every count and mass is an integer, so the atomics' order does not matter: the
// model adds in any order and gets the kernel's values.

// Sample2Config is a launch configuration of the v2 sampler (tuning: GPU run C sweeps
// it). Threads per block, multiple of 32 in [64, 1024]; Chunk vocabulary elements per
// block, multiple of 256.
type Sample2Config struct {
	Threads, Chunk int
	// Fault deliberately breaks the kernel (0 none): Sample2FaultDigit picks the digit
	// one bucket late in the radix passes, for showing on a card that the checks catch
	// a broken sampler.
	Fault int
}

// Faults of the v2 sampler (vireo_sample2_fault).
const (
	Sample2FaultNone  = 0
	Sample2FaultDigit = 1
)

// Sample2Passes is the number of radix passes the host launches: three digits below
// the first (resolved in K2) for the filters, then three for the draw.
const Sample2Passes = 6

// Validate checks a configuration for a vocabulary.
func (c Sample2Config) Validate() error {
	if c.Threads < 64 || c.Threads > 1024 || c.Threads%32 != 0 {
		return fmt.Errorf("sample2: %d threads per block (want a multiple of 32 in [64, 1024])", c.Threads)
	}
	if c.Chunk < 256 || c.Chunk%256 != 0 || c.Chunk > 1<<20 {
		return fmt.Errorf("sample2: chunk of %d elements (want a multiple of 256 up to 2^20)", c.Chunk)
	}
	return nil
}

// Chunks is the number of blocks per row for a vocabulary.
func (c Sample2Config) Chunks(vocab int) int { return (vocab + c.Chunk - 1) / c.Chunk }

// Sample2Choose picks the configuration for rows × vocab on a device of sms
// multiprocessors: 256 threads, and chunks so that the grid has about two blocks per
// multiprocessor, at least 1,024 elements each (fewer, larger blocks when rows fill
// the device).
func Sample2Choose(rows, vocab, sms int) Sample2Config {
	c := Sample2Config{Threads: 256}
	want := max(1, (2*sms+rows-1)/max(rows, 1)) // blocks per row
	ch := (vocab + want - 1) / want
	ch = (ch + 1023) / 1024 * 1024
	c.Chunk = min(max(ch, 1024), 1<<20)
	return c
}

// Sample2Path says how a pass reached an element.
type Sample2Path int

const (
	PathVector Sample2Path = iota // a 16-byte load holding it
	PathScalar                    // one element load (unaligned rows, or the vector straddles the end)
)

// Sample2Visit is called for every element a pass reads: the pass, row, block (chunk),
// thread and element index, and the load path.
type Sample2Visit func(pass string, row, block, thread, i int, path Sample2Path)

// OrderKey maps a float (no NaN; -0 canonicalized) to a uint32 that orders like it.
func OrderKey(v float32) uint32 {
	b := math.Float32bits(v)
	if b>>31 != 0 {
		return ^b
	}
	return b | 1<<31
}

// keyValue inverts OrderKey.
func keyValue(k uint32) float32 {
	if k>>31 != 0 {
		return math.Float32frombits(k &^ (1 << 31))
	}
	return math.Float32frombits(^k)
}

func canon(v float32) float32 {
	if v != v {
		return float32(math.Inf(-1))
	}
	if v == 0 {
		return 0
	}
	return v
}

func weight(v, xmax, T float32) float32 {
	if xmax > math.MaxFloat32 {
		if v == xmax {
			return 1
		}
		return 0
	}
	return float32(math.Exp(float64((v - xmax) / T)))
}

// Selection kinds and row modes of the state machine.
const (
	selCount = 1 // the first bucket where the running count reaches the target (top-k)
	selMass  = 2 // ... the running mass (top-p, the draw)

	modeSelect  = 0 // selections running (or greedy: see greedy)
	modeDone    = 1 // token known
	modeIDSel   = 2 // the c-th smallest id of the drawn logit: I counts, F scans
	modeScanID  = 3 // F scans chunk for the rank-th member
	modeScanMas = 4 // F scans chunk for the id-order draw (no filter)
)

// selection is one radix select over the order keys, descending.
type selection struct {
	kind                  int
	prefix, mask          uint32
	shift                 int    // the next digit's shift; -8 once settled
	target                uint64 // count or mass to reach
	countAbove, massAbove uint64 // before the current bucket in canonical order
	// Once settled: the key, its tokens' count and the mass of each, the lowest id.
	g, w  uint64
	minID uint32
}

func (s *selection) active() bool  { return s.kind != 0 && s.shift >= 0 }
func (s *selection) settled() bool { return s.kind != 0 && s.shift < 0 }

// hist256 is one selection's histogram of a pass.
type hist256 struct {
	count [256]uint64
	mass  [256]uint64
	minID [256]uint32
}

func (h *hist256) reset() {
	*h = hist256{}
	for i := range h.minID {
		h.minID[i] = math.MaxUint32
	}
}

// rowState is a row's global state in the workspace (vireo_sample2: struct RowState).
type rowState struct {
	bestKey   uint64 // atomicMax of OrderKey(x)<<32 | ^id
	z, massM  uint64 // Z, the min-p mass
	mode      int
	sel       [3]selection // top-k, top-p, draw
	base      hist256      // K2: top byte of the order key over the whole row
	hist      [3]hist256
	token     int32
	chunk     int // modeScanID, modeScanMas
	rank      uint64
	target    uint64 // modeScanMas: the draw target; modeIDSel: the member rank
	massStart uint64 // modeScanMas: the mass before the chunk
	key       uint32 // modeIDSel / modeScanID: the drawn logit's key
}

const (
	slotK = 0
	slotP = 1
	slotD = 2
)

// Sample2 is the model's run of vireo_sample2 over rows. logits are the values as the
// kernel reads them (f32, or the 16-bit values widened); elemBytes their stored size
// and aligned whether the rows start at 16-byte boundaries (ld·elemBytes % 16 == 0 and
// an aligned base): it chooses the load path. Each row has its Params, draw index
// and history. visit (may be nil) sees every element read.
type Sample2 struct {
	Cfg       Sample2Config
	Vocab     int
	ElemBytes int
	Aligned   bool
	Visit     Sample2Visit
}

// Row runs every pass for one row (rows are independent: the kernels' blocks of
// different rows never touch each other's state) and returns the token.
func (m *Sample2) Row(row int, logits []float32, p *sampling.Params, tokenIndex uint64, history []int32) int32 {
	V := m.Vocab
	cfg := m.Cfg
	chunks := cfg.Chunks(V)
	st := &rowState{}
	st.base.reset()
	for i := range st.hist {
		st.hist[i].reset()
	}
	x := make([]float32, V)
	e := make([]float32, V)
	pen := make([]uint32, (V+31)/32)
	chunkMass := make([]uint64, chunks)
	chunkCount := make([]uint64, chunks)

	m.k0(row, logits, p, history, x, pen)
	for c := 0; c < chunks; c++ {
		m.k1(row, c, logits, x, pen, st)
	}
	for c := 0; c < chunks; c++ {
		m.k2(row, c, p, x, e, st, chunkMass, c == chunks-1, tokenIndex)
	}
	for pass := 0; pass < Sample2Passes; pass++ {
		for c := 0; c < chunks; c++ {
			m.sPass(row, c, pass, x, e, st, p, tokenIndex, c == chunks-1)
		}
	}
	for c := 0; c < chunks; c++ {
		m.iPass(row, c, x, st, chunkCount, c == chunks-1)
	}
	return m.finalize(row, p, x, e, st)
}

// forChunk calls f(i, thread, path) for every element of chunk c of a row of V
// elements, in the kernel's mapping: 16-byte vectors of vec elements, vector v of the
// chunk to thread v mod T (coalesced), a vector that straddles the row's end (or a
// row that is not aligned) element by element by the same thread.
func (m *Sample2) forChunk(c, vec int, aligned bool, f func(i, thread int, path Sample2Path)) {
	T, C, V := m.Cfg.Threads, m.Cfg.Chunk, m.Vocab
	lo, hi := c*C, min(V, (c+1)*C)
	nvec := (hi - lo + vec - 1) / vec
	for t := 0; t < T; t++ {
		for v := t; v < nvec; v += T {
			i0 := lo + v*vec
			if aligned && i0+vec <= hi {
				for j := 0; j < vec; j++ {
					f(i0+j, t, PathVector)
				}
				continue
			}
			for j := 0; j < vec && i0+j < hi; j++ {
				f(i0+j, t, PathScalar)
			}
		}
	}
}

func (m *Sample2) visit(pass string, row, block, thread, i int, path Sample2Path) {
	if m.Visit != nil {
		m.Visit(pass, row, block, thread, i, path)
	}
}

// k0: one block per row; thread t takes history entries t, t+T, ... (twice: counts,
// then the penalized value of each distinct id, whichever thread exchanges its count
// first).
func (m *Sample2) k0(row int, logits []float32, p *sampling.Params, history []int32, x []float32, pen []uint32) {
	V := m.Vocab
	rep, pres, freq := p.RepetitionPenalty, p.PresencePenalty, p.FrequencyPenalty
	useRep := rep > 0 && rep != 1
	if len(history) == 0 || !(useRep || pres != 0 || freq != 0) {
		return
	}
	counts := map[int32]int32{}
	for _, t := range history {
		if t >= 0 && int(t) < V {
			counts[t]++
		}
	}
	for _, t := range history {
		if t < 0 || int(t) >= V || counts[t] == 0 {
			continue
		}
		c := counts[t]
		counts[t] = 0
		m.visit("K0", row, 0, 0, int(t), PathScalar)
		v := canon(logits[t])
		if useRep {
			if v > 0 {
				v /= rep
			} else {
				v *= rep
			}
		}
		v -= pres
		v -= float32(freq * float32(c))
		x[t] = canon(v)
		pen[t/32] |= 1 << (t % 32)
	}
}

// k1: x = canonical logit unless K0 penalized it; the block's best (largest key, lowest
// id) merged into the row's by atomicMax.
func (m *Sample2) k1(row, c int, logits, x []float32, pen []uint32, st *rowState) {
	vec := 16 / m.ElemBytes
	var best uint64
	m.forChunk(c, vec, m.Aligned, func(i, t int, path Sample2Path) {
		m.visit("K1", row, c, t, i, path)
		v := canon(logits[i])
		if pen[i/32]>>(i%32)&1 != 0 {
			v = x[i]
		}
		x[i] = v
		if k := uint64(OrderKey(v))<<32 | uint64(^uint32(i)); k > best {
			best = k
		}
	})
	// The block clears its chunk's bitmap words (chunks are multiples of 32).
	C := m.Cfg.Chunk
	for w := c * C / 32; w < min(len(pen), (c+1)*C/32); w++ {
		pen[w] = 0
	}
	st.bestKey = max(st.bestKey, best)
}

// rowParams are the parameters K2 and the later passes derive.
type rowParams struct {
	greedy     bool
	xmax, T    float32
	k          uint64
	useP, useM bool
	topP, minP float32
}

func params(st *rowState, p *sampling.Params, V int) rowParams {
	rp := rowParams{xmax: keyValue(uint32(st.bestKey >> 32)), T: p.Temperature}
	rp.greedy = !(rp.T > 0) || rp.xmax == float32(math.Inf(-1))
	if p.TopK > 0 && p.TopK < V {
		rp.k = uint64(p.TopK)
	}
	rp.topP, rp.minP = p.TopP, p.MinP
	rp.useP = rp.topP > 0 && rp.topP < 1
	rp.useM = rp.minP > 0
	if rp.minP > 1 {
		rp.minP = 1
	}
	return rp
}

// k2: weights, masses, Z, the min-p mass, the base histogram and the chunk's mass;
// the row's last block starts the selections.
func (m *Sample2) k2(row, c int, p *sampling.Params, x, e []float32, st *rowState, chunkMass []uint64, last bool, tokenIndex uint64) {
	rp := params(st, p, m.Vocab)
	if rp.greedy {
		return
	}
	var z, zm uint64
	m.forChunk(c, 4, true, func(i, t int, path Sample2Path) {
		m.visit("K2", row, c, t, i, path)
		wi := weight(x[i], rp.xmax, rp.T)
		e[i] = wi
		mi := sampling.Mass(wi)
		z += mi
		if rp.useM && wi >= rp.minP {
			zm += mi
		}
		b := OrderKey(x[i]) >> 24
		st.base.count[b]++
		st.base.mass[b] += mi
	})
	chunkMass[c] = z
	st.z += z
	st.massM += zm
	if !last {
		return
	}
	// The row's last block.
	if rp.k > 0 {
		st.sel[slotK] = selection{kind: selCount, shift: 24, target: rp.k}
		m.resolve(&st.sel[slotK], &st.base)
	}
	if rp.useP {
		st.sel[slotP] = selection{kind: selMass, shift: 24, target: sampling.TopPThreshold(rp.topP, st.z)}
		m.resolve(&st.sel[slotP], &st.base)
	}
	if rp.k > 0 || rp.useP {
		return
	}
	r := sampling.UniformBits(p.Seed, tokenIndex, sampling.StreamToken)
	if rp.useM {
		m.startDraw(st, st.massM, r)
		return
	}
	// No filter: the draw walks ids; find the chunk where the running mass passes the
	// target (every chunk's mass is known).
	target := sampling.DrawTarget(r, st.z)
	var cum uint64
	for ch, cm := range chunkMass {
		if cum+cm > target {
			st.mode, st.chunk, st.target, st.massStart = modeScanMas, ch, target, cum
			return
		}
		cum += cm
	}
	panic("sample2 model: the id-order draw found no chunk") // Z > target: unreachable
}

// startDraw starts the draw's selection over the kept mass total.
func (m *Sample2) startDraw(st *rowState, total uint64, r uint32) {
	st.sel[slotD] = selection{kind: selMass, shift: 24, target: sampling.DrawTarget(r, total) + 1}
	m.resolve(&st.sel[slotD], &st.base)
	m.afterDraw(st)
}

// resolve picks a selection's digit from the histogram of the elements matching its
// prefix: the first bucket, from 255 down, where the running count (or mass) reaches
// the target. The kernel does it with one warp (8 buckets per lane, a scan of the
// lanes' totals); the result is this loop's.
func (m *Sample2) resolve(s *selection, h *hist256) {
	b := 255
	for ; b >= 0; b-- {
		c, ms := h.count[b], h.mass[b]
		reach := s.countAbove+c >= s.target
		if s.kind == selMass {
			reach = s.massAbove+ms >= s.target
		}
		if reach {
			break
		}
		s.countAbove += c
		s.massAbove += ms
	}
	if b < 0 {
		panic(fmt.Sprintf("sample2 model: selection %+v reaches no bucket", *s))
	}
	if m.Cfg.Fault == Sample2FaultDigit && b > 0 {
		s.countAbove += h.count[b]
		s.massAbove += h.mass[b]
		b-- // the broken variant: one bucket late
	}
	s.prefix |= uint32(b) << s.shift
	s.mask |= 0xff << s.shift
	if s.shift == 0 {
		s.g = h.count[b]
		if s.g > 0 {
			s.w = h.mass[b] / s.g
		}
		s.minID = h.minID[b]
	}
	s.shift -= 8
}

// sPass: one radix pass. Each active selection histograms the elements matching its
// prefix by the next byte; the row's last block resolves the digits and moves the state
// machine on.
func (m *Sample2) sPass(row, c, pass int, x, e []float32, st *rowState, p *sampling.Params, tokenIndex uint64, last bool) {
	any := false
	for s := range st.sel {
		any = any || st.sel[s].active()
	}
	if !any || st.mode != modeSelect {
		return
	}
	tag := fmt.Sprintf("S%d", pass)
	m.forChunk(c, 4, true, func(i, t int, path Sample2Path) {
		m.visit(tag, row, c, t, i, path)
		key := OrderKey(x[i])
		mi := sampling.Mass(e[i])
		for s := range st.sel {
			sl := &st.sel[s]
			if !sl.active() || key&sl.mask != sl.prefix {
				continue
			}
			b := key >> sl.shift & 0xff
			h := &st.hist[s]
			h.count[b]++
			h.mass[b] += mi
			if sl.shift == 0 {
				h.minID[b] = min(h.minID[b], uint32(i))
			}
		}
	})
	if !last {
		return
	}
	for s := range st.sel {
		if st.sel[s].active() {
			m.resolve(&st.sel[s], &st.hist[s])
			st.hist[s].reset()
		}
	}
	m.advance(st, p, tokenIndex)
}

// advance: once the filters' selections are settled, the kept mass and the draw.
func (m *Sample2) advance(st *rowState, p *sampling.Params, tokenIndex uint64) {
	sk, sp, sd := &st.sel[slotK], &st.sel[slotP], &st.sel[slotD]
	if sd.kind != 0 {
		m.afterDraw(st)
		return
	}
	if sk.active() || sp.active() {
		return
	}
	total := uint64(math.MaxUint64)
	if sk.settled() {
		total = min(total, sk.massAbove+(sk.target-sk.countAbove)*sk.w)
	}
	if sp.settled() {
		c := ceilDiv(sp.target-sp.massAbove, sp.w)
		total = min(total, sp.massAbove+c*sp.w)
	}
	if p.MinP > 0 {
		total = min(total, st.massM)
	}
	m.startDraw(st, total, sampling.UniformBits(p.Seed, tokenIndex, sampling.StreamToken))
}

// afterDraw: once the draw's selection is settled, the c-th token of its logit.
func (m *Sample2) afterDraw(st *rowState) {
	sd := &st.sel[slotD]
	if !sd.settled() {
		return
	}
	c := ceilDiv(sd.target-sd.massAbove, sd.w)
	if c == 1 {
		st.mode, st.token = modeDone, int32(sd.minID)
		return
	}
	st.mode, st.key, st.target = modeIDSel, sd.prefix, c
}

// ceilDiv is ceil(a/b); b == 0 (only the broken variant gets there) gives a.
func ceilDiv(a, b uint64) uint64 {
	if b == 0 {
		return a
	}
	q, r := bits.Div64(0, a, b)
	if r != 0 {
		q++
	}
	return q
}

// iPass: the members of the drawn logit per chunk; the row's last block finds the
// chunk holding the rank-th one.
func (m *Sample2) iPass(row, c int, x []float32, st *rowState, chunkCount []uint64, last bool) {
	if st.mode != modeIDSel {
		return
	}
	var n uint64
	m.forChunk(c, 4, true, func(i, t int, path Sample2Path) {
		m.visit("I", row, c, t, i, path)
		if OrderKey(x[i]) == st.key {
			n++
		}
	})
	chunkCount[c] = n
	if !last {
		return
	}
	var cum uint64
	for ch, cn := range chunkCount {
		if cum+cn >= st.target {
			st.mode, st.chunk, st.rank = modeScanID, ch, st.target-cum
			return
		}
		cum += cn
	}
	panic("sample2 model: the id select found no chunk")
}

// finalize: one block per row. The scans split the chunk into T contiguous segments,
// one per thread: each thread totals its segment, an exclusive scan of the totals
// finds the thread whose segment holds the answer, which walks it.
func (m *Sample2) finalize(row int, p *sampling.Params, x, e []float32, st *rowState) int32 {
	rp := params(st, p, m.Vocab)
	if rp.greedy {
		return int32(^uint32(st.bestKey))
	}
	switch st.mode {
	case modeDone:
		return st.token
	case modeScanID, modeScanMas:
	default:
		panic(fmt.Sprintf("sample2 model: row ends in mode %d", st.mode))
	}
	T, C, V := m.Cfg.Threads, m.Cfg.Chunk, m.Vocab
	lo, hi := st.chunk*C, min(V, (st.chunk+1)*C)
	seg := (C + T - 1) / T
	val := func(i int) uint64 {
		if st.mode == modeScanID {
			if OrderKey(x[i]) == st.key {
				return 1
			}
			return 0
		}
		return sampling.Mass(e[i])
	}
	var cum uint64
	if st.mode == modeScanMas {
		cum = st.massStart
	}
	for t := 0; t < T; t++ {
		var tot uint64
		s0 := lo + t*seg
		for i := s0; i < min(hi, s0+seg); i++ {
			m.visit("F", row, st.chunk, t, i, PathScalar)
			tot += val(i)
		}
		hit := false
		if st.mode == modeScanID {
			hit = cum+tot >= st.rank
		} else {
			hit = cum+tot > st.target
		}
		if !hit {
			cum += tot
			continue
		}
		for i := s0; i < min(hi, s0+seg); i++ {
			cum += val(i)
			if (st.mode == modeScanID && cum >= st.rank) || (st.mode == modeScanMas && cum > st.target) {
				return int32(i)
			}
		}
	}
	panic("sample2 model: the final scan found nothing")
}

// Sample2Sweep is GPU run C's prepared sweep of sampler configurations for rows ×
// vocab: threads per block and chunk sizes around Sample2Choose's.
func Sample2Sweep(rows, vocab, sms int) []Sample2Config {
	base := Sample2Choose(rows, vocab, sms)
	var cs []Sample2Config
	for _, t := range []int{128, 256, 512, 1024} {
		for _, ch := range []int{base.Chunk / 4, base.Chunk / 2, base.Chunk, base.Chunk * 2, base.Chunk * 4} {
			ch = min(max(ch/256*256, 1024), 1<<20)
			c := Sample2Config{Threads: t, Chunk: ch}
			dup := false
			for _, o := range cs {
				dup = dup || o == c
			}
			if !dup {
				cs = append(cs, c)
			}
		}
	}
	return cs
}

// String names a configuration in benchmark results.
func (c Sample2Config) String() string {
	s := fmt.Sprintf("threads=%d,chunk=%d", c.Threads, c.Chunk)
	if c.Fault != 0 {
		s += fmt.Sprintf(",fault=%d", c.Fault)
	}
	return s
}
