package backendtest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// The indexed ops (backend.IndexedOps) run on the backend under test with their index
// inputs (ids, positions, block tables) in i32 tensors of that backend; the reference
// computes the same step with the host-slice ops, row by row: zeros for the rows the
// op must zero, nothing for the rows it must skip or leave alone. A backend without
// IndexedOps skips these cases as not supported.

func embedAtCases() []Case {
	var cs []Case
	for _, s := range []struct{ n, vocab, dim, bad int }{
		{1, 1, 1, 0}, {5, 7, 5, 2}, {7, 13, 11, 3}, {17, 257, 64, 4}, {3, 256, Llama3Dim, 1},
	} {
		for _, q := range []bool{false, true} {
			cs = append(cs, Case{Name: fmt.Sprintf("w=%s,n=%d,vocab=%d,dim=%d,bad=%d", wname(q), s.n, s.vocab, s.dim, s.bad),
				N: s.n, Vocab: s.vocab, Dim: s.dim, Int8: q, Bad: s.bad})
		}
	}
	cs = append(cs, Case{Name: fmt.Sprintf("w=i8,n=9,vocab=%d,dim=%d,bad=2", Llama3Vocab, Llama3Dim),
		N: 9, Vocab: Llama3Vocab, Dim: Llama3Dim, Int8: true, Bad: 2, Large: true})
	return cs
}

func ropeAtCases() []Case {
	var cs []Case
	for _, st := range []backend.RopeStyle{backend.RopePairs, backend.RopeRotateHalf} {
		for _, s := range []struct {
			n, idle, heads, hd int
			theta              float64
			llama3             bool
			maxPos             int
		}{
			{1, 0, 1, 2, 10000, false, 1},
			{5, 2, 3, 8, 10000, false, 37},
			{7, 3, 6, 48, 10000, false, 1024},
			{11, 1, 2, 64, Llama3Theta, true, 8192},
			{3, 1, Llama3Heads, Llama3HeadDim, Llama3Theta, true, 8192},    // q, real shape
			{13, 4, Llama3KVHeads, Llama3HeadDim, Llama3Theta, true, 8192}, // k, real shape
		} {
			style := "pairs"
			if st == backend.RopeRotateHalf {
				style = "half"
			}
			freq := fmt.Sprintf("theta=%g", s.theta)
			if s.llama3 {
				freq += ",llama3"
			}
			cs = append(cs, Case{Name: fmt.Sprintf("%s,n=%d,idle=%d,heads=%d,hd=%d,%s,pos<%d", style, s.n, s.idle, s.heads, s.hd, freq, s.maxPos),
				N: s.n, Idle: s.idle, Heads: s.heads, HeadDim: s.hd, Style: st, Theta: s.theta, Llama3: s.llama3, MaxPos: s.maxPos})
		}
	}
	return cs
}

func writeKVAtCases() []Case {
	var cs []Case
	for _, s := range []struct{ n, idle, bad, blocks, maxBlocks, bs, kvh, hd int }{
		{1, 0, 0, 1, 1, 1, 1, 1},
		{3, 1, 0, 4, 2, 1, 1, 8},
		{5, 1, 2, 5, 3, 16, 1, 8},
		{7, 2, 2, 9, 4, 5, 2, 48},
		{13, 3, 4, 7, 3, 5, 3, 12},
		{17, 2, 3, 9, 5, 16, 2, 64},
		{37, 5, 4, 6, 4, DefaultBlockLen, Llama3KVHeads, Llama3HeadDim}, // real heads
	} {
		cs = append(cs, Case{Name: fmt.Sprintf("n=%d,idle=%d,bad=%d,blocks=%d,width=%d,bs=%d,kvh=%d,hd=%d", s.n, s.idle, s.bad, s.blocks, s.maxBlocks, s.bs, s.kvh, s.hd),
			N: s.n, Idle: s.idle, Bad: s.bad, Blocks: s.blocks, MaxBlocks: s.maxBlocks, BlockSize: s.bs, KVHeads: s.kvh, HeadDim: s.hd})
	}
	return cs
}

func attentionAtCases() []Case {
	var cs []Case
	add := func(heads, kvh, hd, bs, idle, bad, slack int, large bool, seqs ...SeqSpec) {
		var parts []string
		for i, s := range seqs {
			seqs[i].NQ = 1
			p := fmt.Sprint(s.Past)
			if s.Shared > 0 {
				p += fmt.Sprintf("s%d", s.Shared)
			}
			parts = append(parts, p)
		}
		cs = append(cs, Case{Name: fmt.Sprintf("h=%d,kvh=%d,hd=%d,bs=%d,pos=%s,idle=%d,bad=%d,slack=%d", heads, kvh, hd, bs, strings.Join(parts, ";"), idle, bad, slack),
			Heads: heads, KVHeads: kvh, HeadDim: hd, BlockSize: bs, Seqs: seqs, Idle: idle, Bad: bad, Slack: slack, Large: large})
	}
	add(1, 1, 8, 16, 0, 0, 0, false, SeqSpec{Past: 0})
	add(4, 2, 8, 4, 1, 2, 0, false, SeqSpec{Past: 9, Extra: 2}, SeqSpec{Past: 5}, SeqSpec{Past: 0}, SeqSpec{Past: 12, Shared: 2})
	add(6, 2, 12, 5, 2, 2, 3, false, SeqSpec{Past: 13, Extra: 1}, SeqSpec{Past: 2}, SeqSpec{Past: 24}, SeqSpec{Past: 7})
	add(6, 2, 48, 16, 1, 2, 40, false, SeqSpec{Past: 15}, SeqSpec{Past: 16}, SeqSpec{Past: 31, Shared: 1}, SeqSpec{Past: 47})
	add(8, 1, 32, 16, 1, 1, 17, false, SeqSpec{Past: 40}, SeqSpec{Past: 5}, SeqSpec{Past: 16}, SeqSpec{Past: 13})
	add(4, 2, 64, 1, 1, 2, 2, false, SeqSpec{Past: 3}, SeqSpec{Past: 7})
	// A long context next to short ones: a device kernel splits it (log-sum-exp merge).
	add(8, 2, 64, 16, 1, 2, 100, false, SeqSpec{Past: 1500}, SeqSpec{Past: 17})
	// Real shapes.
	add(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, 2, 2, 5, false,
		SeqSpec{Past: 40, Extra: 1}, SeqSpec{Past: 16}, SeqSpec{Past: 0}, SeqSpec{Past: 20}, SeqSpec{Past: 1100})
	add(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, 3, 2, 1000, true,
		SeqSpec{Past: 1022}, SeqSpec{Past: 500, Shared: 20}, SeqSpec{Past: 2046}, SeqSpec{Past: 16}, SeqSpec{Past: 0}, SeqSpec{Past: 463, Extra: 2})
	return cs
}

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
	if err := e.b.Upload(whole, g.before); err != nil {
		return backend.Tensor{}, fmt.Errorf("upload %s: %w", name, err)
	}
	g.view = backend.Tensor{DType: backend.I32, Rows: rows, Cols: cols, Off: whole.Off + guard, Buf: whole.Buf}
	return g.view, nil
}

// indexedOps returns the backend under test's IndexedOps, or a not-supported error.
func indexedOps(b backend.Backend, op string) (backend.IndexedOps, error) {
	ix, ok := b.(backend.IndexedOps)
	if !ok {
		return nil, fmt.Errorf("%s: the %s backend has no indexed ops: %w", op, b.Name(), ErrNotSupported)
	}
	return ix, nil
}

// roles shuffles the roles of a step's n rows: row i has rank roles[i], and the ranks
// below n-idle-bad are the valid rows, the next idle ones the idle rows, the last bad
// ones the bad rows.
func roles(r *rand.Rand, n int) []int { return r.Perm(n) }

// idlePos are the positions idle rows cycle through.
var idlePos = []int32{-1, math.MinInt32, -5}

func prepEmbedAt(c Case, r *rand.Rand) exec {
	hw := hostWeight("table", c.Vocab, c.Dim, c.Int8, r)
	ids := indices(r, c.N, c.Vocab)
	valid := make([]bool, c.N)
	for i, k := range roles(r, c.N) {
		valid[i] = k < c.N-c.Bad
		if !valid[i] {
			ids[i] = []int32{-1, int32(c.Vocab), math.MinInt32, 1 << 30}[k%4]
		}
	}
	return func(e *env, dt backend.DType) error {
		if e.ref {
			w, err := e.weight(hw)
			if err != nil {
				return err
			}
			out, err := e.output("out", dt, c.N, c.Dim, make([]float32, c.N*c.Dim))
			if err != nil {
				return err
			}
			for i, ok := range valid {
				if ok {
					if err := e.b.Embed(e.s, out.SliceRows(i, i+1), w, slices.Clone(ids[i:i+1])); err != nil {
						return op("embed", err)
					}
				}
			}
			return nil
		}
		ix, err := indexedOps(e.b, "embed at")
		if err != nil {
			return err
		}
		w, err := e.weight(hw)
		if err != nil {
			return err
		}
		out, err := e.output("out", dt, c.N, c.Dim, nil)
		if err != nil {
			return err
		}
		it, err := e.index("ids", 1, c.N, ids)
		if err != nil {
			return err
		}
		return op("embed at", ix.EmbedAt(e.s, out, w, it))
	}
}

func prepRoPEAt(c Case, r *rand.Rand) exec {
	x := uniform(r, c.N*c.Heads*c.HeadDim, 1)
	pos := indices(r, c.N, c.MaxPos)
	for i, k := range roles(r, c.N) {
		if k >= c.N-c.Idle {
			pos[i] = idlePos[k%len(idlePos)]
		}
	}
	freq := Llama3InvFreq(c.HeadDim, c.Theta, c.Llama3)
	return func(e *env, dt backend.DType) error {
		var ix backend.IndexedOps
		if !e.ref {
			var err error
			if ix, err = indexedOps(e.b, "rope at"); err != nil {
				return err
			}
		}
		rope := &backend.RoPE{Style: c.Style, HeadDim: c.HeadDim, InvFreq: slices.Clone(freq)}
		xt, err := e.output("x", dt, c.N, c.Heads*c.HeadDim, x) // idle rows must come back as they are
		if err != nil {
			return err
		}
		if e.ref {
			for i, p := range pos {
				if p >= 0 {
					if err := e.b.RoPE(e.s, xt.SliceRows(i, i+1), []int32{p}, rope); err != nil {
						return op("rope", err)
					}
				}
			}
			return nil
		}
		pt, err := e.index("pos", 1, c.N, pos)
		if err != nil {
			return err
		}
		return op("rope at", ix.RoPEAt(e.s, xt, pt, rope))
	}
}

func prepWriteKVAt(c Case, r *rand.Rand) exec {
	bs, w := c.BlockSize, c.MaxBlocks
	pos := make([]int32, c.N)
	tables := make([]int32, c.N*w)
	for i := range tables { // entries a row does not use: anything, in range or not
		tables[i] = int32(r.IntN(c.Blocks+4) - 2)
	}
	perm := r.Perm(c.Blocks * bs) // the valid rows' slots: distinct
	slots := make([]int32, c.N)   // -1: the row writes nothing
	nValid := c.N - c.Idle - c.Bad
	for i, k := range roles(r, c.N) {
		row := tables[i*w : (i+1)*w]
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
		case k%2 == 0: // the entry for pos is outside the cache
			j := r.IntN(w)
			pos[i] = int32(j*bs + r.IntN(bs))
			row[j] = []int32{-1, int32(c.Blocks), math.MinInt32, int32(c.Blocks) + 100}[k/2%4]
		default: // pos past the table, whose entries are valid
			pos[i] = int32(w*bs + r.IntN(2*bs))
			for j := range row {
				row[j] = int32(r.IntN(c.Blocks))
			}
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
		var ix backend.IndexedOps
		if !e.ref {
			var err error
			if ix, err = indexedOps(e.b, "write kv at"); err != nil {
				return err
			}
		}
		kv, kt, vt, err := e.kvWriteOperands(c, dt, base, written, k, v)
		if err != nil {
			return err
		}
		if e.ref {
			for i, s := range slots {
				if s >= 0 {
					if err := e.b.WriteKV(e.s, kv, kvLayers-1, kt.SliceRows(i, i+1), vt.SliceRows(i, i+1), []int32{s}); err != nil {
						return op("write kv", err)
					}
				}
			}
			return nil
		}
		pt, err := e.index("pos", 1, c.N, pos)
		if err != nil {
			return err
		}
		tt, err := e.index("tables", c.N, w, tables)
		if err != nil {
			return err
		}
		return op("write kv at", ix.WriteKVAt(e.s, kv, kvLayers-1, kt, vt, pt, tt))
	}
}

func prepAttentionAt(c Case, r *rand.Rand) exec {
	nh, nkv, hd, bs := c.Heads, c.KVHeads, c.HeadDim, c.BlockSize
	l := layoutAttention(c, r) // one decode row per sequence; its Q0 is not used
	base := attnCache(c, l, r)
	w, maxCtx := 0, 0
	var data []int32 // the blocks holding context
	for _, s := range l.seqs {
		w = max(w, len(s.Blocks)+1) // every row has entries past its context
		maxCtx = max(maxCtx, s.Pos+1)
		data = append(data, s.Blocks[:(s.Pos+bs)/bs]...)
	}
	maxCtx += c.Slack
	n := len(l.seqs) + c.Idle + c.Bad
	pos := make([]int32, n)
	tables := make([]int32, n*w)
	valid := make([]bool, n)
	for i, k := range roles(r, n) {
		row := tables[i*w : (i+1)*w]
		// Past a row's own blocks: entries outside the cache, never to be read.
		for j := range row {
			row[j] = []int32{-1, int32(l.blocks), math.MinInt32, int32(l.blocks) + 7}[j%4]
		}
		s := l.seqs[k%len(l.seqs)]
		switch {
		case k < len(l.seqs):
			valid[i] = true
			pos[i] = int32(s.Pos)
			copy(row, s.Blocks)
		case k < len(l.seqs)+c.Idle: // idle, over a real sequence's table
			pos[i] = idlePos[k%len(idlePos)]
			copy(row, s.Blocks)
		case k%2 == 0: // an entry within the context outside the cache
			pos[i] = int32(s.Pos)
			copy(row, s.Blocks)
			row[r.IntN(s.Pos/bs+1)] = []int32{-1, int32(l.blocks)}[k/2%2]
		default: // a context past maxCtx or the table (whichever is shorter), valid entries
			pos[i] = int32(min(maxCtx, w*bs))
			for j := range row {
				row[j] = data[r.IntN(len(data))]
			}
		}
	}
	q := uniform(r, n*nh*hd, 2)
	return func(e *env, dt backend.DType) error {
		var ix backend.IndexedOps
		if !e.ref {
			var err error
			if ix, err = indexedOps(e.b, "attention at"); err != nil {
				return err
			}
		}
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
		b := &backend.AttnBatch{Heads: nh, KVHeads: nkv, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
		if e.ref {
			out, err := e.output("out", dt, n, nh*hd, make([]float32, n*nh*hd)) // rows no sequence claims: zero
			if err != nil {
				return err
			}
			for i, ok := range valid {
				if ok {
					b.Seqs = append(b.Seqs, backend.AttnSeq{Q0: i, NQ: 1, Pos: int(pos[i]), Blocks: slices.Clone(tables[i*w : (i+1)*w])})
				}
			}
			return op("attention", e.b.Attention(e.s, out, qt, kv, kvLayers-1, b))
		}
		out, err := e.output("out", dt, n, nh*hd, nil)
		if err != nil {
			return err
		}
		pt, err := e.index("pos", 1, n, pos)
		if err != nil {
			return err
		}
		tt, err := e.index("tables", n, w, tables)
		if err != nil {
			return err
		}
		return op("attention at", ix.AttentionAt(e.s, out, qt, kv, kvLayers-1, pt, tt, b, maxCtx))
	}
}
