package backendtest

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
	"github.com/vireo-ai/vireo/runtime/quant/w4"
)

// Each op's cases: prepare draws a case's inputs (from its seed, the same for both
// backends) and returns how to run it on an env. Ops with index inputs (ids, positions,
// sequences, block tables, rows) get them as guarded i32 tensors on the backend under
// test; the reference runs the op once per row the case means it to compute, each with
// a one-row index, and leaves the other rows as the op must (zeros, or untouched), so
// the reference never relies on the rules for idle and out-of-range rows that it
// checks.

// prepare draws a case's inputs and returns how to run it.
var prepare = map[string]func(c Case, r *rand.Rand) exec{
	OpEmbed:        prepEmbed,
	OpRMSNorm:      prepRMSNorm,
	OpRMSNormQuant: prepRMSNormQuant,
	OpMatMul:       prepMatMul,
	OpRoPE:         prepRoPE,
	OpWriteKV:      prepWriteKV,
	OpAttention:    prepAttention,
	OpSiLUMul:      prepSiLUMul,
	OpGatherRows:   prepGatherRows,
	OpLoRA:         prepLoRA,
}

// uniform draws n values from [-a, a).
func uniform(r *rand.Rand, n int, a float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (2*r.Float32() - 1) * a
	}
	return s
}

// hostWeight draws a [out][in] weight: f32 in ±1/√in, or int8 over its whole range with
// per-row scales giving the same range.
func hostWeight(name string, out, in int, int8 bool, r *rand.Rand) *backend.HostWeight {
	h := &backend.HostWeight{Name: name, Out: out, In: in}
	a := float32(1 / math.Sqrt(float64(in)))
	if !int8 {
		h.F32 = uniform(r, out*in, a)
		return h
	}
	h.I8 = randInt8(r, out*in)
	h.Scales = make([]float32, out)
	for i := range h.Scales {
		h.Scales[i] = (0.5 + r.Float32()) * a / 127
	}
	return h
}

func randInt8(r *rand.Rand, n int) []int8 {
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], r.Uint64())
	}
	q := make([]int8, n)
	rand.NewChaCha8(seed).Read(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(q))), n))
	return q
}

// indices draws n values from [0, m), with the ends of the range and a repeat in it.
func indices(r *rand.Rand, n, m int) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(r.IntN(m))
	}
	ids[0] = int32(m - 1)
	if n > 1 {
		ids[n-1] = 0
	}
	if n > 3 {
		ids[2] = ids[1]
	}
	return ids
}

// roles shuffles the roles of n rows: row i has rank roles[i]; the lowest ranks are
// the rows the op computes, then the idle ones, then the bad ones.
func roles(r *rand.Rand, n int) []int { return r.Perm(n) }

// idlePos are the positions idle rows cycle through.
var idlePos = []int32{-1, math.MinInt32, -5}

// indexGuard fills the guards of index tensors: a stray read finds an id, position or
// block outside any range, which the ops must treat as idle or invalid.
const indexGuard = 0x7fff0000

// index allocates an i32 [rows][cols] input of the backend in the middle of a larger
// allocation, uploads data and watches it: the op must not modify it.
func (e *env) index(name string, rows, cols int, data []int32) (backend.Tensor, error) {
	n := rows * cols
	whole, err := e.b.Alloc(backend.I32, 1, n+2*guard)
	if err != nil {
		return backend.Tensor{}, fmt.Errorf("alloc %s i32[%d][%d]: %w", name, rows, cols, err)
	}
	g := &gtensor{name: name, whole: whole}
	e.tens = append(e.tens, g)
	if whole.DType != backend.I32 || whole.Len() != n+2*guard {
		return backend.Tensor{}, fmt.Errorf("alloc %s: asked for i32[1][%d], got %s", name, n+2*guard, whole)
	}
	e.dtypes[name] = backend.I32
	g.before = make([]byte, 4*(n+2*guard))
	for i := 0; i < n+2*guard; i++ {
		v := int32(indexGuard)
		if i >= guard && i < guard+n {
			v = data[i-guard]
		}
		binary.LittleEndian.PutUint32(g.before[4*i:], uint32(v))
	}
	if err := e.b.Upload(whole, g.before, backend.I32); err != nil {
		return backend.Tensor{}, fmt.Errorf("upload %s: %w", name, err)
	}
	g.view = whole.View(guard, rows, cols)
	return g.view, nil
}

// row is the reference's index of one row: position pos of the sequence whose block
// table is table, staged at once.
func (e *env) row(pos int32, table []int32, maxCtx int) (*backend.KVIndex, error) {
	t, err := e.b.Stage(e.s, append([]int32{pos, 0}, table...))
	if err != nil {
		return nil, err
	}
	return &backend.KVIndex{Pos: t.View(0, 1, 1), Seq: t.View(1, 1, 1), Tables: t.View(2, 1, len(table)), MaxCtx: maxCtx}, nil
}

func prepEmbed(c Case, r *rand.Rand) exec {
	hw := hostWeight("table", c.Vocab, c.Dim, c.Int8, r)
	ids := indices(r, c.N, c.Vocab)
	valid := make([]bool, c.N)
	for i := range valid {
		valid[i] = true
	}
	if c.Bad > 0 {
		for i, k := range roles(r, c.N) {
			if k >= c.N-c.Bad {
				valid[i], ids[i] = false, []int32{-1, int32(c.Vocab), math.MinInt32, 1 << 30}[k%4]
			}
		}
	}
	return func(e *env, dt backend.DType) error {
		w, err := e.weight(hw)
		if err != nil {
			return err
		}
		return gatherRows(e, dt, c.N, c.Dim, "ids", ids, valid, func(out, idx backend.Tensor) error {
			return op("embed", e.b.Embed(e.s, out, w, idx))
		})
	}
}

func prepRMSNorm(c Case, r *rand.Rand) exec {
	x := uniform(r, c.N*c.Dim, 1)
	for i := 0; i < c.N; i++ { // rows of different scales
		s := float32(math.Pow(10, float64(i%3-1)))
		for k := range x[i*c.Dim : (i+1)*c.Dim] {
			x[i*c.Dim+k] *= s
		}
	}
	w := uniform(r, c.Dim, 0.5)
	for i := range w {
		w[i] += 1
	}
	return func(e *env, dt backend.DType) error {
		xt, err := e.input("x", dt, c.N, c.Dim, x)
		if err != nil {
			return err
		}
		wt, err := e.input("norm", backend.F32, 1, c.Dim, w)
		if err != nil {
			return err
		}
		out, err := e.output("out", dt, c.N, c.Dim, nil)
		if err != nil {
			return err
		}
		return op("rmsnorm", e.b.RMSNorm(e.s, out, xt, wt, c.Eps))
	}
}

func prepRMSNormQuant(c Case, r *rand.Rand) exec {
	x := uniform(r, c.N*c.Dim, 1)
	for i := 0; i < c.N; i++ { // rows of different scales
		s := float32(math.Pow(10, float64(i%3-1)))
		for k := range x[i*c.Dim : (i+1)*c.Dim] {
			x[i*c.Dim+k] *= s
		}
	}
	for i, k := range roles(r, c.N) { // rows of zeros
		if k >= c.N-c.Idle {
			clear(x[i*c.Dim : (i+1)*c.Dim])
		}
	}
	w := uniform(r, c.Dim, 0.5)
	for i := range w {
		w[i] += 1
	}
	return func(e *env, dt backend.DType) error {
		rq, ok := e.b.(backend.RMSNormQuanter)
		if !ok {
			return fmt.Errorf("rmsnorm quant: %w", ErrNotSupported)
		}
		xt, err := e.input("x", dt, c.N, c.Dim, x)
		if err != nil {
			return err
		}
		wt, err := e.input("norm", backend.F32, 1, c.Dim, w)
		if err != nil {
			return err
		}
		q, err := e.outputI8("q", c.N, c.Dim)
		if err != nil {
			return err
		}
		sc, err := e.output("scale", backend.F32, 1, c.N, nil)
		if err != nil {
			return err
		}
		return op("rmsnorm quant", rq.RMSNormQuant(e.s, q, sc, xt, wt, c.Eps))
	}
}

func prepMatMul(c Case, r *rand.Rand) exec {
	x := uniform(r, c.N*c.In, 1)
	wOut := c.Out
	if c.GLU {
		wOut = 2 * c.Out // gate rows, then up rows
	}
	hw := hostWeight("w", wOut, c.In, c.Int8, r)
	ref := hw // what the reference loads
	var blocks *backend.HostWeight
	switch {
	case c.W4 != 0:
		blocks, hw, ref = w4Weight(hw, c.W4)
	case c.Sparse24:
		hw, ref = sparse24Weight(hw)
	case c.Rank > 0:
		hw = &backend.HostWeight{Name: "w", Out: wOut, In: c.In, Kind: backend.LowRank,
			A: hostWeight("w.a", c.Rank, c.In, c.Int8, r), B: hostWeight("w.b", wOut, c.Rank, c.Int8, r)}
		ref = hw
	}
	var init []float32
	if c.Accumulate {
		init = uniform(r, c.N*c.Out, 1)
	}
	return func(e *env, dt backend.DType) error {
		xt, err := e.input("x", dt, c.N, c.In, x)
		if err != nil {
			return err
		}
		h := hw
		if e.ref {
			h = ref
		} else if bl, ok := e.b.(backend.BlockLoader); ok && blocks != nil && bl.LoadsBlocks(c.W4) && e.b.Activations() != backend.F32 {
			// A device backend that multiplies the blocks gets them (the CPU's own
			// block kernels quantize activations llama.cpp's way, which the f32
			// tolerance does not allow: its kernel tests check them).
			h = blocks
		}
		w, err := e.weight(h)
		if err != nil {
			return err
		}
		out, err := e.output("out", dt, c.N, c.Out, init)
		if err != nil {
			return err
		}
		return op("matmul", e.b.MatMul(e.s, out, xt, w, backend.Epilogue{Accumulate: c.Accumulate, SiLUGLU: c.GLU, Prompt: c.Prompt}))
	}
}

// w4Weight quantizes h's floats to GGUF blocks of type t with ggml's quantizer: the
// blocks, what a backend without kernels for them gets (the dequantized floats with
// Source set, as the model hands them) and what the reference loads (the same floats).
func w4Weight(h *backend.HostWeight, t backend.DType) (blocks, floats, ref *backend.HostWeight) {
	gt := map[backend.DType]ggml.Type{backend.Q4_0: ggml.Q4_0, backend.Q4_K: ggml.Q4_K}[t]
	raw := make([]byte, h.Out*t.RowBytes(h.In))
	if err := ggml.Quantize(gt, raw, h.F32); err != nil {
		panic(err) // finite floats, whole blocks: the case table's shapes
	}
	q, err := w4.FromBlocks(gt, h.Out, h.In, raw)
	if err != nil {
		panic(err)
	}
	deq := q.Dequantize()
	blocks = &backend.HostWeight{Name: h.Name, Out: h.Out, In: h.In, Blocks: raw, BlockType: t}
	floats = &backend.HostWeight{Name: h.Name, Out: h.Out, In: h.In, F32: deq, Source: gt.String()}
	ref = &backend.HostWeight{Name: h.Name, Out: h.Out, In: h.In, F32: deq}
	return blocks, floats, ref
}

// sparse24Weight keeps the two largest |W| of every group of 4 inputs of h: the 2:4
// weight a backend under test loads and the dense masked weight the reference loads
// (int8: the masked rows keep their scales, their largest values being kept).
func sparse24Weight(h *backend.HostWeight) (sparse, dense *backend.HostWeight) {
	in := h.In
	masked := func(v func(i int) float32) []bool {
		keep := make([]bool, h.Out*in)
		for g := 0; g+4 <= len(keep); g += 4 {
			a, b := -1, -1
			for i := g; i < g+4; i++ {
				m := float32(math.Abs(float64(v(i))))
				switch {
				case a < 0 || m > float32(math.Abs(float64(v(a)))):
					a, b = i, a
				case b < 0 || m > float32(math.Abs(float64(v(b)))):
					b = i
				}
			}
			keep[a], keep[b] = true, true
		}
		return keep
	}
	dense = &backend.HostWeight{Name: h.Name, Out: h.Out, In: in, Scales: h.Scales}
	if h.F32 != nil {
		keep := masked(func(i int) float32 { return h.F32[i] })
		dense.F32 = make([]float32, len(keep))
		for i, k := range keep {
			if k {
				dense.F32[i] = h.F32[i]
			}
		}
		vals, meta, err := backend.PackSparse24(dense.F32, h.Out, in)
		if err != nil {
			panic(err) // two kept per group by construction
		}
		return &backend.HostWeight{Name: h.Name, Out: h.Out, In: in, Kind: backend.Sparse24, F32: vals, Meta: meta}, dense
	}
	keep := masked(func(i int) float32 { return float32(h.I8[i]) })
	dense.I8 = make([]int8, len(keep))
	f := make([]float32, len(keep)) // the kept int8 values as floats, to pack
	for i, k := range keep {
		if k {
			dense.I8[i], f[i] = h.I8[i], float32(h.I8[i])
		}
	}
	vals, meta, err := backend.PackSparse24(f, h.Out, in)
	if err != nil {
		panic(err)
	}
	q := make([]int8, len(vals))
	for i, v := range vals {
		q[i] = int8(v)
	}
	return &backend.HostWeight{Name: h.Name, Out: h.Out, In: in, Kind: backend.Sparse24, I8: q, Scales: h.Scales, Meta: meta}, dense
}

func prepRoPE(c Case, r *rand.Rand) exec {
	x := uniform(r, c.N*c.Heads*c.HeadDim, 1)
	pos := indices(r, c.N, c.MaxPos)
	if c.Idle > 0 {
		for i, k := range roles(r, c.N) {
			if k >= c.N-c.Idle {
				pos[i] = idlePos[k%len(idlePos)]
			}
		}
	}
	freq := Llama3InvFreq(c.HeadDim, c.Theta, c.Llama3)
	return func(e *env, dt backend.DType) error {
		rope := &backend.RoPE{Style: c.Style, HeadDim: c.HeadDim, InvFreq: slices.Clone(freq)}
		xt, err := e.output("x", dt, c.N, c.Heads*c.HeadDim, x) // idle rows must come back as they are
		if err != nil {
			return err
		}
		if e.ref {
			for i, p := range pos {
				if p < 0 {
					continue
				}
				pt, err := e.b.Stage(e.s, pos[i:i+1])
				if err != nil {
					return err
				}
				if err := e.b.RoPE(e.s, xt.SliceRows(i, i+1), pt, rope); err != nil {
					return op("rope", err)
				}
			}
			return nil
		}
		pt, err := e.index("pos", 1, c.N, pos)
		if err != nil {
			return err
		}
		return op("rope", e.b.RoPE(e.s, xt, pt, rope))
	}
}

func prepSiLUMul(c Case, r *rand.Rand) exec {
	gate := uniform(r, c.N*c.Dim, 6)
	up := uniform(r, c.N*c.Dim, 1)
	return func(e *env, dt backend.DType) error {
		gt, err := e.input("gate", dt, c.N, c.Dim, gate)
		if err != nil {
			return err
		}
		ut, err := e.input("up", dt, c.N, c.Dim, up)
		if err != nil {
			return err
		}
		out, err := e.output("out", dt, c.N, c.Dim, nil)
		if err != nil {
			return err
		}
		return op("silu mul", e.b.SiLUMul(e.s, out, gt, ut))
	}
}

func prepGatherRows(c Case, r *rand.Rand) exec {
	x := uniform(r, c.Vocab*c.Dim, 1)
	rows := indices(r, c.N, c.Vocab)
	valid := make([]bool, c.N)
	for i, k := range roles(r, c.N) {
		valid[i] = k < c.N-c.Bad
		if !valid[i] {
			rows[i] = []int32{-1, int32(c.Vocab), math.MinInt32, int32(c.Vocab) + 5}[k%4]
		}
	}
	return func(e *env, dt backend.DType) error {
		xt, err := e.input("x", dt, c.Vocab, c.Dim, x)
		if err != nil {
			return err
		}
		return gatherRows(e, dt, c.N, c.Dim, "rows", rows, valid, func(out, idx backend.Tensor) error {
			return op("gather rows", e.b.GatherRows(e.s, out, xt, idx))
		})
	}
}

const kvLayers = 2 // caches have two layers; ops use layer 1, layer 0 must stay untouched

// kvWriteInputs draws the k and v rows of a KV write and the caches' starting contents
// (per layer K then V), with the slots the write addresses poisoned in the written layer.
func kvWriteInputs(c Case, r *rand.Rand, slots []int32) (k, v []float32, base [][]float32) {
	nkv, hd, bs := c.KVHeads, c.HeadDim, c.BlockSize
	k = uniform(r, c.N*nkv*hd, 1)
	v = uniform(r, c.N*nkv*hd, 1)
	size := c.Blocks * nkv * bs * hd
	base = make([][]float32, 2*kvLayers)
	for i := range base {
		base[i] = uniform(r, size, 1)
	}
	nan := float32(math.NaN())
	for _, s := range slots {
		for h := 0; h < nkv; h++ {
			row := (int(s)/bs*nkv+h)*bs + int(s)%bs
			for j := 1; j >= 0; j-- {
				for d := 0; d < hd; d++ {
					base[2*(kvLayers-1)+j][row*hd+d] = nan
				}
			}
		}
	}
	return k, v, base
}

// prepWriteKV: row i writes its k, v at position pos[i] of the sequence whose table is
// row seq[i] of tables [n+1][width] (a shuffled row, one spare); each computed row has
// a slot of its own, scattered over the cache. Idle rows have pos < 0; bad rows have
// the table entry for their position outside the cache, a position past the table, or
// a sequence with no table row.
func prepWriteKV(c Case, r *rand.Rand) exec {
	bs, w, n := c.BlockSize, cmp.Or(c.MaxBlocks, 3), c.N
	pos, seq := make([]int32, n), make([]int32, n)
	for i, sq := range r.Perm(n + 1)[:n] {
		seq[i] = int32(sq)
	}
	tables := make([]int32, (n+1)*w)
	for i := range tables { // entries a row does not use: anything, in range or not
		tables[i] = int32(r.IntN(c.Blocks+4) - 2)
	}
	perm := r.Perm(c.Blocks * bs) // the computed rows' slots: distinct
	slots := make([]int32, n)     // -1: the row writes nothing
	nValid := n - c.Idle - c.Bad
	for i, k := range roles(r, n) {
		row := tables[int(seq[i])*w : int(seq[i]+1)*w]
		slots[i] = -1
		switch {
		case k < nValid:
			j := r.IntN(w)
			pos[i] = int32(j*bs + perm[k]%bs)
			row[j] = int32(perm[k] / bs)
			slots[i] = int32(perm[k])
		case k < nValid+c.Idle: // idle over a table of valid blocks
			pos[i] = idlePos[k%len(idlePos)]
			for j := range row {
				row[j] = int32(r.IntN(c.Blocks))
			}
		case k%3 == 0: // the entry for pos is outside the cache
			j := r.IntN(w)
			pos[i] = int32(j*bs + r.IntN(bs))
			row[j] = []int32{-1, int32(c.Blocks), math.MinInt32, int32(c.Blocks) + 100}[k/3%4]
		case k%3 == 1: // pos past the table, whose entries are valid
			pos[i] = int32(w*bs + r.IntN(2*bs))
			for j := range row {
				row[j] = int32(r.IntN(c.Blocks))
			}
		default: // a sequence with no table, over valid blocks
			pos[i] = int32(r.IntN(w * bs))
			for j := range row {
				row[j] = int32(r.IntN(c.Blocks))
			}
			seq[i] = []int32{int32(n + 1), -1, math.MaxInt32}[k/3%3]
		}
	}
	var written []int32
	for _, s := range slots {
		if s >= 0 {
			written = append(written, s)
		}
	}
	k, v, base := kvWriteInputs(c, r, written)
	return func(e *env, dt backend.DType) error {
		kv, kt, vt, err := e.kvWriteOperands(c, dt, base, written, k, v)
		if err != nil {
			return err
		}
		if e.ref {
			for i, s := range slots {
				if s < 0 {
					continue
				}
				at, err := e.row(pos[i], tables[int(seq[i])*w:int(seq[i]+1)*w], 1)
				if err != nil {
					return err
				}
				if err := e.b.WriteKV(e.s, kv, kvLayers-1, kt.SliceRows(i, i+1), vt.SliceRows(i, i+1), at); err != nil {
					return op("write kv", err)
				}
			}
			return nil
		}
		at, err := e.kvIndex(pos, seq, tables, w, 1)
		if err != nil {
			return err
		}
		return op("write kv", e.b.WriteKV(e.s, kv, kvLayers-1, kt, vt, at))
	}
}

// kvIndex allocates a KVIndex's tensors (watched inputs) on the backend under test.
func (e *env) kvIndex(pos, seq, tables []int32, width, maxCtx int) (*backend.KVIndex, error) {
	pt, err := e.index("pos", 1, len(pos), pos)
	if err != nil {
		return nil, err
	}
	st, err := e.index("seq", 1, len(seq), seq)
	if err != nil {
		return nil, err
	}
	tt, err := e.index("tables", len(tables)/width, width, tables)
	if err != nil {
		return nil, err
	}
	return &backend.KVIndex{Pos: pt, Seq: st, Tables: tt, MaxCtx: maxCtx}, nil
}

// kvWriteOperands allocates a KV write's cache (filled with base, the written slots
// tracked) and its k and v rows.
func (e *env) kvWriteOperands(c Case, dt backend.DType, base [][]float32, written []int32, k, v []float32) (kv *backend.KVCache, kt, vt backend.Tensor, err error) {
	nkv, hd := c.KVHeads, c.HeadDim
	if kv, err = e.allocKV(kvLayers, c.Blocks, c.BlockSize, nkv, hd); err != nil {
		return nil, kt, vt, err
	}
	if err = e.fillKV(kv, base, kvLayers-1, written); err != nil {
		return nil, kt, vt, err
	}
	if kt, err = e.input("k", dt, c.N, nkv*hd, k); err != nil {
		return nil, kt, vt, err
	}
	vt, err = e.input("v", dt, c.N, nkv*hd, v)
	return kv, kt, vt, err
}

// attnLayout is an attention case: its sequences' block tables, its rows and the cache.
type attnLayout struct {
	seqs   []attnSeq
	blocks int // cache blocks
	// The rows: position, sequence (row of tables [len(tables)/width][width]), and
	// whether the op computes them (else zeros).
	pos, seq []int32
	valid    []bool
	tables   []int32
	width    int
	maxCtx   int
}

// attnSeq is one sequence of a case: rows [q0, q0+nq) at positions pos.., its table.
type attnSeq struct {
	q0, nq, pos int
	blocks      []int32
}

// spareBlocks are cache blocks no table names; they hold NaN.
const spareBlocks = 3

// layoutAttention lays out c's sequences over a shuffled cache (tables non-contiguous,
// the spares in between, shared prefixes, unused blocks named past a context), then the
// rows: each sequence's rows together, idle and bad rows between them, all in a
// shuffled order. Bad rows read an entry outside the cache within their context, have
// a context past MaxCtx or the table, or name no table.
func layoutAttention(c Case, r *rand.Rand) attnLayout {
	bs := c.BlockSize
	total := spareBlocks
	for _, s := range c.Seqs {
		total += (s.Past+s.NQ+bs-1)/bs - s.Shared + s.Extra
	}
	ids := r.Perm(total)
	next := 0
	take := func(n int) []int32 {
		t := make([]int32, n)
		for i := range t {
			t[i] = int32(ids[next])
			next++
		}
		return t
	}
	l := attnLayout{blocks: total}
	var data []int32 // the blocks holding context
	for i, s := range c.Seqs {
		need := (s.Past + s.NQ + bs - 1) / bs
		var table []int32
		if s.Shared > 0 {
			table = append(table, l.seqs[i-1].blocks[:s.Shared]...)
		}
		table = append(table, take(need-s.Shared)...)
		data = append(data, table...)
		table = append(table, take(s.Extra)...) // named, never within the context
		l.seqs = append(l.seqs, attnSeq{nq: s.NQ, pos: s.Past, blocks: table})
		l.width = max(l.width, len(table)+1) // every table has entries past its context
	}
	// Groups of rows in a shuffled order: a sequence's rows, or one idle or bad row.
	S := len(c.Seqs)
	groups := r.Perm(S + c.Idle + c.Bad)
	n := 0
	for _, g := range groups {
		if g < S {
			l.seqs[g].q0 = n
			n += c.Seqs[g].NQ
		} else {
			n++
		}
	}
	l.pos, l.seq, l.valid = make([]int32, n), make([]int32, n), make([]bool, n)
	nt := S + c.Bad // a table row per sequence, and one per bad row
	l.tables = make([]int32, nt*l.width)
	for i := range l.tables { // past each table: entries outside the cache, never read
		l.tables[i] = []int32{-1, int32(total), math.MinInt32, int32(total) + 7}[i%4]
	}
	for si, s := range l.seqs {
		copy(l.tables[si*l.width:], s.blocks)
		for j := range s.nq {
			l.pos[s.q0+j], l.seq[s.q0+j], l.valid[s.q0+j] = int32(s.pos+j), int32(si), true
			l.maxCtx = max(l.maxCtx, s.pos+j+1)
		}
	}
	l.maxCtx += c.Slack
	row := 0
	for _, g := range groups {
		if g < S {
			row += c.Seqs[g].NQ
			continue
		}
		s, k := &l.seqs[r.IntN(S)], g-S
		switch {
		case k < c.Idle: // idle, over a real sequence's table
			l.pos[row], l.seq[row] = idlePos[k%len(idlePos)], int32(r.IntN(S))
		case k%3 == 0: // an entry within the context outside the cache
			t := l.tables[(S+k-c.Idle)*l.width : (S+k-c.Idle+1)*l.width]
			copy(t, s.blocks)
			t[r.IntN(s.pos/bs+1)] = []int32{-1, int32(total)}[k/3%2]
			l.pos[row], l.seq[row] = int32(s.pos), int32(S+k-c.Idle)
		case k%3 == 1: // a context past MaxCtx or the table, whichever is shorter, valid entries
			t := l.tables[(S+k-c.Idle)*l.width : (S+k-c.Idle+1)*l.width]
			for j := range t {
				t[j] = data[r.IntN(len(data))]
			}
			l.pos[row], l.seq[row] = int32(min(l.maxCtx, l.width*bs)), int32(S+k-c.Idle)
		default: // no such sequence
			l.pos[row], l.seq[row] = int32(s.pos), []int32{int32(nt), -1}[k/3%2]
		}
		row++
	}
	return l
}

// attnCache draws the cache contents of an attention layout ([2*layer] K, [2*layer+1]
// V): random values at the positions of each sequence's context in the last layer, NaN
// everywhere else (layer 0, spare and extra blocks, and slots past a context).
func attnCache(c Case, l attnLayout, r *rand.Rand) [][]float32 {
	nkv, hd, bs := c.KVHeads, c.HeadDim, c.BlockSize
	size := l.blocks * nkv * bs * hd
	nan := float32(math.NaN())
	base := make([][]float32, 2*kvLayers)
	for i := range base {
		base[i] = make([]float32, size)
		for j := range base[i] {
			base[i][j] = nan
		}
	}
	for _, s := range l.seqs {
		for p := 0; p < s.pos+s.nq; p++ {
			blk := int(s.blocks[p/bs])
			for h := 0; h < nkv; h++ {
				row := (blk*nkv+h)*bs + p%bs
				for j := 0; j < 2; j++ {
					dst := base[2*(kvLayers-1)+j][row*hd : (row+1)*hd]
					if dst[0] == dst[0] {
						continue // a shared block, filled already
					}
					copy(dst, uniform(r, hd, 1))
				}
			}
		}
	}
	return base
}

func prepAttention(c Case, r *rand.Rand) exec {
	nh, nkv, hd, bs := c.Heads, c.KVHeads, c.HeadDim, c.BlockSize
	l, base, q := drawAttention(c, r)
	n := len(l.pos)
	return func(e *env, dt backend.DType) error {
		kv, err := e.allocKV(kvLayers, l.blocks, bs, nkv, hd)
		if err != nil {
			return err
		}
		if err := e.fillKV(kv, base, -1, nil); err != nil { // rounded in place: the reference sees the same cache
			return err
		}
		qt, err := e.input("q", dt, n, nh*hd, q)
		if err != nil {
			return err
		}
		h := &backend.AttnHeads{Heads: nh, KVHeads: nkv, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
		if e.ref {
			out, err := e.output("out", dt, n, nh*hd, make([]float32, n*nh*hd)) // rows not computed: zero
			if err != nil {
				return err
			}
			for i, ok := range l.valid {
				if !ok {
					continue
				}
				at, err := e.row(l.pos[i], l.tables[int(l.seq[i])*l.width:int(l.seq[i]+1)*l.width], l.maxCtx)
				if err != nil {
					return err
				}
				if err := e.b.Attention(e.s, out.SliceRows(i, i+1), qt.SliceRows(i, i+1), kv, kvLayers-1, at, h); err != nil {
					return op("attention", err)
				}
			}
			return nil
		}
		out, err := e.output("out", dt, n, nh*hd, nil)
		if err != nil {
			return err
		}
		at, err := e.kvIndex(l.pos, l.seq, l.tables, l.width, l.maxCtx)
		if err != nil {
			return err
		}
		return op("attention", e.b.Attention(e.s, out, qt, kv, kvLayers-1, at, h))
	}
}

// prepLoRA draws a LoRA stack of c.Slots slots of rank up to c.Rank (slot 0 full rank,
// slot 1 empty when there are three or more, the others random), its padding rows
// NaN (a kernel reading past a slot's rank fails), and each row's slot: adapter rows,
// then c.Idle base rows (-1) and c.Bad rows naming slots outside the stack.
func prepLoRA(c Case, r *rand.Rand) exec {
	S, R := c.Slots, c.Rank
	x := uniform(r, c.N*c.In, 1)
	init := uniform(r, c.N*c.Out, 1)
	ranks := make([]int32, S)
	for s := range ranks {
		ranks[s] = int32(1 + r.IntN(R))
	}
	ranks[0] = int32(R)
	if S >= 3 {
		ranks[1] = 0
	}
	a := uniform(r, S*R*c.In, float32(1/math.Sqrt(float64(c.In))))
	b := uniform(r, S*R*c.Out, 1)
	nan := float32(math.NaN())
	for s := 0; s < S; s++ {
		for k := int(ranks[s]); k < R; k++ {
			for j := 0; j < c.In; j++ {
				a[(s*R+k)*c.In+j] = nan
			}
			for j := 0; j < c.Out; j++ {
				b[(s*R+k)*c.Out+j] = nan
			}
		}
	}
	slots := make([]int32, c.N)
	valid := make([]bool, c.N)
	for i, k := range roles(r, c.N) {
		switch {
		case k < c.N-c.Idle-c.Bad:
			slots[i] = int32(r.IntN(S))
			valid[i] = ranks[slots[i]] > 0
		case k < c.N-c.Bad:
			slots[i] = -1
		default:
			slots[i] = []int32{int32(S), int32(S) + 7, math.MinInt32, math.MaxInt32}[k%4]
		}
	}
	return func(e *env, dt backend.DType) error {
		lo, ok := e.b.(backend.LoRAer)
		if !ok {
			return fmt.Errorf("lora: %w by this backend", ErrNotSupported)
		}
		xt, err := e.input("x", dt, c.N, c.In, x)
		if err != nil {
			return err
		}
		at, err := e.input("a", dt, S*R, c.In, a)
		if err != nil {
			return err
		}
		bt, err := e.input("b", dt, S*R, c.Out, b)
		if err != nil {
			return err
		}
		rt, err := e.index("ranks", 1, S, ranks)
		if err != nil {
			return err
		}
		out, err := e.output("out", dt, c.N, c.Out, init)
		if err != nil {
			return err
		}
		st := &backend.LoRAStack{Slots: S, MaxRank: R, Out: c.Out, In: c.In, A: at, B: bt, Ranks: rt}
		if e.ref { // one row at a time, only the rows an adapter applies to
			for i, ok := range valid {
				if !ok {
					continue
				}
				sl, err := e.b.Stage(e.s, slots[i:i+1])
				if err != nil {
					return err
				}
				if err := lo.LoRA(e.s, out.SliceRows(i, i+1), xt.SliceRows(i, i+1), st, sl); err != nil {
					return op("lora", err)
				}
			}
			return nil
		}
		sl, err := e.index("slots", 1, c.N, slots)
		if err != nil {
			return err
		}
		return op("lora", lo.LoRA(e.s, out, xt, st, sl))
	}
}

// gatherRows runs a row-gathering op (call: out [n][dim] from the rows idx names) on the
// backend under test in one call with idx staged as a device index, and on the
// reference one valid row at a time into zeros (a row outside the table stays zero), so
// the reference never sees a bad index.
func gatherRows(e *env, dt backend.DType, n, dim int, name string, idx []int32, valid []bool, call func(out, idx backend.Tensor) error) error {
	if e.ref {
		out, err := e.output("out", dt, n, dim, make([]float32, n*dim))
		if err != nil {
			return err
		}
		for i, ok := range valid {
			if !ok {
				continue
			}
			it, err := e.b.Stage(e.s, idx[i:i+1])
			if err != nil {
				return err
			}
			if err := call(out.SliceRows(i, i+1), it); err != nil {
				return err
			}
		}
		return nil
	}
	out, err := e.output("out", dt, n, dim, nil)
	if err != nil {
		return err
	}
	it, err := e.index(name, 1, n, idx)
	if err != nil {
		return err
	}
	return call(out, it)
}
