//go:build cuda

package cuda

import (
	"errors"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/cgo"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/sampling"
)

func open(t *testing.T) *Backend { t.Helper(); return openWith(t, Options{}) }

func openWith(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New(o)
	if errors.Is(err, cgo.ErrNoDevice) {
		t.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestOps checks every op against the CPU backend (backendtest) on the default kernels
// (v2), and the attention cases on kernels v1 too; it skips without a GPU.
func TestOps(t *testing.T) {
	b := open(t)
	rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Large: !testing.Short()})
	if rep.Failed() {
		t.Errorf("%s", rep.Summary())
	}
	t.Run("v1", func(t *testing.T) {
		b := openWith(t, Options{Kernels: KernelsV1})
		rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Large: !testing.Short(), Ops: []string{backendtest.OpAttention, backendtest.OpMatMul}})
		if rep.Failed() {
			t.Errorf("%s", rep.Summary())
		}
	})
}

// TestMatMulPaths checks the matmul paths the default TestOps never takes (only its
// prompt cases run W8A8, and AUTO picks one kernel per shape): W8A8 on every case from
// the first row (the MMA kernel where In % 32 == 0, the rest stay W8A16), and the SIMT reference
// kernels forced on every shape, W8A16, 16-bit and W8A8 alike — all on kernels v1 (v2's
// matmul paths: TestMatMulPathsV2).
func TestMatMulPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Options
		v    cgo.Variant
	}{
		{"w8a8", Options{W8A8: W8A8All, Kernels: KernelsV1}, cgo.MMAuto},
		{"simt", Options{W8A8: W8A8Off, Kernels: KernelsV1}, cgo.MMSIMT},
		{"w8a8-simt", Options{W8A8: W8A8All, Kernels: KernelsV1}, cgo.MMSIMT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(tc.opt)
			if errors.Is(err, cgo.ErrNoDevice) {
				t.Skipf("no CUDA device: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			b.mmVariant = tc.v
			rep := backendtest.Run(t, cpu.New(cpu.Options{}), b, backendtest.Options{Ops: []string{backendtest.OpMatMul}})
			if rep.Failed() {
				t.Errorf("%s", rep.Summary())
			}
		})
	}
}

// ---- index inputs on the device, and the decode loop (decode.go) ----

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// upF32 allocates an activation tensor of b holding data (converted from f32).
func upF32(t *testing.T, b *Backend, data []float32, rows, cols int) backend.Tensor {
	t.Helper()
	x, err := b.Alloc(b.Activations(), rows, cols)
	must(t, err)
	must(t, b.Upload(x, backend.Bytes(data), backend.F32))
	return x
}

func upI32(t *testing.T, b *Backend, data []int32, rows, cols int) backend.Tensor {
	t.Helper()
	x, err := b.Alloc(backend.I32, rows, cols)
	must(t, err)
	must(t, b.Upload(x, backend.Bytes(data), backend.I32))
	return x
}

func downF32(t *testing.T, b *Backend, x backend.Tensor) []float32 {
	t.Helper()
	out := make([]float32, x.Len())
	must(t, b.Download(backend.Bytes(out), backend.F32, x))
	return out
}

// cpuIndex is a one-row KVIndex on the CPU reference: position p through table.
func cpuIndex(t *testing.T, ref *cpu.Backend, p int32, table []int32, maxCtx int) *backend.KVIndex {
	x, err := ref.Stage(nil, append([]int32{p, 0}, table...))
	must(t, err)
	return &backend.KVIndex{Pos: x.View(0, 1, 1), Seq: x.View(1, 1, 1), Tables: x.View(2, 1, len(table)), MaxCtx: maxCtx}
}

func randF32(r *rand.Rand, n int, a float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*r.Float32() - 1) * a
	}
	return v
}

// indexedCase is a batch of decode rows exercising every rule of backend.KVIndex:
// positions at block boundaries, short rows beside a long one (so that the split-K
// attention of maxCtx has splits holding no position of a row), an idle row, a row
// past maxCtx and the table, and rows with a block entry out of the cache.
type indexedCase struct {
	n, heads, kvh, hd, bs, blocks, mb, maxCtx int
	pos                                       []int32
	tables                                    []int32 // [n][mb]
}

func newIndexedCase(r *rand.Rand) *indexedCase {
	c := &indexedCase{heads: 4, kvh: 2, hd: 64, bs: 16, blocks: 256, mb: 64, maxCtx: 1024}
	c.pos = []int32{0, 5, 15, 16, 300, 700, 1023, -1, 40, 1024, 50}
	c.n = len(c.pos)
	c.tables = make([]int32, c.n*c.mb)
	perm := r.Perm(c.blocks)
	next := 0
	for i, p := range c.pos {
		row := c.tables[i*c.mb : (i+1)*c.mb]
		for j := range row {
			row[j] = int32(r.Intn(3*c.blocks) - c.blocks) // past the context: junk, never read
		}
		if p < 0 {
			continue
		}
		for j := 0; j <= int(p)/c.bs && j < c.mb; j++ {
			row[j] = int32(perm[next%c.blocks])
			next++
		}
	}
	// Row 8 (pos 40): an entry before pos's block is out of the cache: attention zeros,
	// the write still happens. Row 10 (pos 50): pos's own entry is out: neither.
	c.tables[8*c.mb+1] = -1
	c.tables[10*c.mb+50/c.bs] = int32(c.blocks)
	return c
}

// slot is what WriteKV must do for row i (-1: skip); attends whether Attention computes
// it (else zeros).
func (c *indexedCase) slot(i int) int32 {
	p := int(c.pos[i])
	if p < 0 || p/c.bs >= c.mb {
		return -1
	}
	blk := c.tables[i*c.mb+p/c.bs]
	if blk < 0 || int(blk) >= c.blocks {
		return -1
	}
	return blk*int32(c.bs) + int32(p%c.bs)
}

func (c *indexedCase) attends(i int) bool {
	p := int(c.pos[i])
	if p < 0 || p+1 > c.maxCtx || p/c.bs >= c.mb {
		return false
	}
	for _, blk := range c.tables[i*c.mb : i*c.mb+p/c.bs+1] {
		if blk < 0 || int(blk) >= c.blocks {
			return false
		}
	}
	return true
}

// TestIndexRows checks Embed, RoPE, WriteKV and Attention on device index tensors with
// idle and out-of-range rows against the CPU backend, a row at a time, on the same
// (device-rounded) inputs; it skips without a GPU.
func TestIndexRows(t *testing.T) {
	b := open(t)
	ref := cpu.New(cpu.Options{})
	r := rand.New(rand.NewSource(1))
	c := newIndexedCase(r)
	s, err := b.NewStream()
	must(t, err)
	seqv := make([]int32, c.n)
	for i := range seqv {
		seqv[i] = int32(c.n - 1 - i) // row i's table is row n-1-i
	}
	tabv := make([]int32, len(c.tables))
	for i := range c.n {
		copy(tabv[int(seqv[i])*c.mb:], c.tables[i*c.mb:(i+1)*c.mb])
	}
	at := &backend.KVIndex{Pos: upI32(t, b, c.pos, 1, c.n), Seq: upI32(t, b, seqv, 1, c.n), Tables: upI32(t, b, tabv, c.n, c.mb), MaxCtx: c.maxCtx}

	t.Run("embed", func(t *testing.T) {
		const vocab, dim = 300, 96
		w, err := b.LoadWeight(&backend.HostWeight{Name: "embed", Out: vocab, In: dim, F32: randF32(r, vocab*dim, 1)})
		must(t, err)
		table := downF32(t, b, w.W) // as stored
		idv := []int32{0, 7, -3, vocab - 1, vocab + 5, 42}
		ids := upI32(t, b, idv, 1, len(idv))
		out, err := b.Alloc(b.Activations(), len(idv), dim)
		must(t, err)
		must(t, b.Embed(s, out, w, ids))
		must(t, b.Sync(s))
		got := downF32(t, b, out)
		for i, id := range idv {
			for k := 0; k < dim; k++ {
				want := float32(0)
				if id >= 0 && id < vocab {
					want = table[int(id)*dim+k]
				}
				if g := got[i*dim+k]; g != want {
					t.Fatalf("row %d (id %d) col %d: %v, want %v", i, id, k, g, want)
				}
			}
		}
	})

	t.Run("rope", func(t *testing.T) {
		cols := c.heads * c.hd
		inv := make([]float32, c.hd/2)
		for k := range inv {
			inv[k] = float32(math.Pow(10000, -2*float64(k)/float64(c.hd)))
		}
		for _, style := range []backend.RopeStyle{backend.RopePairs, backend.RopeRotateHalf} {
			rp := &backend.RoPE{Style: style, HeadDim: c.hd, InvFreq: inv}
			x := upF32(t, b, randF32(r, c.n*cols, 1), c.n, cols)
			in := downF32(t, b, x)
			must(t, b.RoPE(s, x, at.Pos, rp))
			must(t, b.Sync(s))
			got := downF32(t, b, x)
			want := slices.Clone(in)
			for i, p := range c.pos {
				if p >= 0 {
					pt, err := ref.Stage(nil, []int32{p})
					must(t, err)
					must(t, ref.RoPE(nil, cpu.F32(want[i*cols:(i+1)*cols], 1, cols), pt, rp))
				}
			}
			for i, p := range c.pos {
				g, w := got[i*cols:(i+1)*cols], want[i*cols:(i+1)*cols]
				if p < 0 && !slices.Equal(g, w) {
					t.Errorf("style %d: idle row %d changed", style, i)
				}
				if e := backendtest.NMSE(w, g); !(e <= backendtest.Tolerance(backendtest.OpRoPE, backend.F16)) {
					t.Errorf("style %d: row %d at %d: nmse %.3g", style, i, p, e)
				}
			}
		}
	})

	kv, err := b.AllocKV(1, c.blocks, c.bs, c.kvh, c.hd)
	must(t, err)
	kvRef, err := ref.AllocKV(1, c.blocks, c.bs, c.kvh, c.hd)
	must(t, err)
	cacheLen := c.blocks * c.kvh * c.bs * c.hd
	for _, pair := range [][2]backend.Tensor{{kv.K[0], kvRef.K[0]}, {kv.V[0], kvRef.V[0]}} {
		must(t, b.Upload(pair[0], backend.Bytes(randF32(r, cacheLen, 1)), backend.F32))
		copy(cpu.Float32s(pair[1]), downF32(t, b, pair[0]))
	}

	t.Run("write_kv", func(t *testing.T) {
		cols := c.kvh * c.hd
		k := upF32(t, b, randF32(r, c.n*cols, 1), c.n, cols)
		v := upF32(t, b, randF32(r, c.n*cols, 1), c.n, cols)
		kh, vh := downF32(t, b, k), downF32(t, b, v)
		must(t, b.WriteKV(s, kv, 0, k, v, at))
		must(t, b.Sync(s))
		for i := 0; i < c.n; i++ {
			if sl := c.slot(i); sl >= 0 {
				one := cpuIndex(t, ref, c.pos[i], c.tables[i*c.mb:(i+1)*c.mb], c.maxCtx)
				must(t, ref.WriteKV(nil, kvRef, 0, cpu.F32(kh[i*cols:(i+1)*cols], 1, cols), cpu.F32(vh[i*cols:(i+1)*cols], 1, cols), one))
			}
		}
		for _, pair := range [][2]backend.Tensor{{kv.K[0], kvRef.K[0]}, {kv.V[0], kvRef.V[0]}} {
			if !slices.Equal(downF32(t, b, pair[0]), cpu.Float32s(pair[1])) {
				t.Errorf("caches differ after WriteKV (slots %v)", func() (sl []int32) {
					for i := 0; i < c.n; i++ {
						sl = append(sl, c.slot(i))
					}
					return
				}())
			}
		}
	})

	t.Run("attention", func(t *testing.T) {
		cols := c.heads * c.hd
		h := &backend.AttnHeads{Heads: c.heads, KVHeads: c.kvh, HeadDim: c.hd, Scale: float32(1 / math.Sqrt(float64(c.hd)))}
		q := upF32(t, b, randF32(r, c.n*cols, 1), c.n, cols)
		qh := downF32(t, b, q)
		out := upF32(t, b, randF32(r, c.n*cols, 1), c.n, cols) // garbage: every row must be written
		for _, maxCtx := range []int{c.maxCtx, 4 * c.maxCtx} { // the second: more splits, more of them empty
			cc := *c
			cc.maxCtx = maxCtx
			atx := *at
			atx.MaxCtx = maxCtx
			must(t, b.Attention(s, out, q, kv, 0, &atx, h))
			must(t, b.Sync(s))
			got := downF32(t, b, out)
			for i, p := range c.pos {
				g := got[i*cols : (i+1)*cols]
				if !cc.attends(i) {
					if slices.ContainsFunc(g, func(v float32) bool { return v != 0 }) {
						t.Errorf("max ctx %d: row %d (pos %d) must be zeros", maxCtx, i, p)
					}
					continue
				}
				want := make([]float32, cols)
				one := cpuIndex(t, ref, p, c.tables[i*c.mb:(i+1)*c.mb], maxCtx)
				must(t, ref.Attention(nil, cpu.F32(want, 1, cols), cpu.F32(qh[i*cols:(i+1)*cols], 1, cols), kvRef, 0, one, h))
				if e := backendtest.NMSE(want, g); !(e <= backendtest.Tolerance(backendtest.OpAttention, backend.F16)) {
					t.Errorf("max ctx %d: row %d (pos %d): nmse %.3g", maxCtx, i, p, e)
				}
			}
		}
	})
}

// tinyLM is a one-layer decode step over a DecodeIO's buffers: embed, q/k/v, RoPE,
// the cache write, attention, the output projection with the residual, the classifier.
type tinyLM struct {
	vocab, dim, heads, kvh, hd int
	embed, wq, wk, wv, wo, out *backend.Weight
	rope                       backend.RoPE
	attn                       backend.AttnHeads
	x, q, k, v, att            backend.Tensor
}

func newTinyLM(t *testing.T, b *Backend, r *rand.Rand, rows int) *tinyLM {
	m := &tinyLM{vocab: 300, dim: 64, heads: 4, kvh: 2, hd: 16}
	w := func(name string, out, in int, a float32) *backend.Weight {
		x, err := b.LoadWeight(&backend.HostWeight{Name: name, Out: out, In: in, F32: randF32(r, out*in, a)})
		must(t, err)
		return x
	}
	d, kvd := m.dim, m.kvh*m.hd
	m.embed, m.wq, m.wk, m.wv = w("embed", m.vocab, d, 1), w("wq", d, d, 0.3), w("wk", kvd, d, 0.3), w("wv", kvd, d, 0.3)
	m.wo, m.out = w("wo", d, d, 0.3), w("out", m.vocab, d, 0.4)
	inv := make([]float32, m.hd/2)
	for k := range inv {
		inv[k] = float32(math.Pow(10000, -2*float64(k)/float64(m.hd)))
	}
	m.rope = backend.RoPE{Style: backend.RopePairs, HeadDim: m.hd, InvFreq: inv}
	m.attn = backend.AttnHeads{Heads: m.heads, KVHeads: m.kvh, HeadDim: m.hd, Scale: float32(1 / math.Sqrt(float64(m.hd)))}
	a := func(cols int) backend.Tensor {
		x, err := b.Alloc(b.Activations(), rows, cols)
		must(t, err)
		return x
	}
	m.x, m.q, m.k, m.v, m.att = a(d), a(d), a(kvd), a(kvd), a(d)
	return m
}

func (m *tinyLM) step(b *Backend, s backend.Stream, io *backend.DecodeIO, kv *backend.KVCache, maxCtx int) error {
	at := io.Index(maxCtx)
	return errors.Join(
		b.Embed(s, m.x, m.embed, io.IDs),
		b.MatMul(s, m.q, m.x, m.wq, backend.Epilogue{}),
		b.MatMul(s, m.k, m.x, m.wk, backend.Epilogue{}),
		b.MatMul(s, m.v, m.x, m.wv, backend.Epilogue{}),
		b.RoPE(s, m.q, io.Pos, &m.rope),
		b.RoPE(s, m.k, io.Pos, &m.rope),
		b.WriteKV(s, kv, 0, m.k, m.v, &at),
		b.Attention(s, m.att, m.q, kv, 0, &at, &m.attn),
		b.MatMul(s, m.x, m.att, m.wo, backend.Epilogue{Accumulate: true}),
		b.MatMul(s, io.Logits, m.x, m.out, backend.Epilogue{}),
	)
}

func newDecodeIO(t *testing.T, b *Backend, rows, maxBlocks, vocab int) *backend.DecodeIO {
	io := &backend.DecodeIO{Rows: rows, MaxBlocks: maxBlocks}
	idle := make([]int32, rows)
	for i := range idle {
		idle[i] = -1
	}
	seq := make([]int32, rows)
	for i := range seq {
		seq[i] = int32(i)
	}
	io.IDs = upI32(t, b, make([]int32, rows), 1, rows)
	io.Pos = upI32(t, b, idle, 1, rows)
	io.Seq = upI32(t, b, seq, 1, rows)
	io.Tables = upI32(t, b, make([]int32, rows*maxBlocks), rows, maxBlocks)
	var err error
	io.Logits, err = b.Alloc(b.Activations(), rows, vocab)
	must(t, err)
	return io
}

func rowParams(r *backend.DecodeRow) sampling.Params {
	return sampling.Params{Temperature: r.Temperature, TopK: r.TopK, TopP: r.TopP, MinP: r.MinP,
		RepetitionPenalty: r.RepetitionPenalty, PresencePenalty: r.PresencePenalty,
		FrequencyPenalty: r.FrequencyPenalty, Seed: r.Seed}
}

// hostLoop is the reference of DecodeLoop: the same step issued eagerly on the device
// with the rows' inputs uploaded by the host before every step, its logits read back
// and sampled by runtime/sampling on the CPU, and the rows advanced on the host as
// backend.DecodeLooper specifies. It returns tokens [steps][io.Rows].
func hostLoop(t *testing.T, b *Backend, s backend.Stream, m *tinyLM, io *backend.DecodeIO, kv *backend.KVCache, maxCtx int, rows []backend.DecodeRow, steps int) []int32 {
	t.Helper()
	R, MB := io.Rows, io.MaxBlocks
	rs := make([]backend.DecodeRow, len(rows))
	for i := range rows {
		rs[i] = rows[i]
		rs[i].History = slices.Clone(rows[i].History)
	}
	alive := make([]bool, R)
	for i := range rs {
		alive[i] = true
	}
	var smp sampling.Sampler
	toks := make([]int32, steps*R)
	ids, pos, tab := make([]int32, R), make([]int32, R), make([]int32, R*MB)
	for k := 0; k < steps; k++ {
		for i := range tab {
			tab[i] = -1
		}
		for i := 0; i < R; i++ {
			ids[i], pos[i] = 0, -1
			if alive[i] {
				ids[i], pos[i] = rs[i].ID, rs[i].Pos
				copy(tab[i*MB:], rs[i].Blocks)
			}
		}
		must(t, b.Upload(io.IDs, backend.Bytes(ids), backend.I32))
		must(t, b.Upload(io.Pos, backend.Bytes(pos), backend.I32))
		must(t, b.Upload(io.Tables, backend.Bytes(tab), backend.I32))
		must(t, m.step(b, s, io, kv, maxCtx))
		must(t, b.Sync(s))
		logits := downF32(t, b, io.Logits)
		V := io.Logits.Cols
		for i := 0; i < R; i++ {
			if !alive[i] {
				toks[k*R+i] = backend.TokenEnded
				continue
			}
			r := &rs[i]
			p := rowParams(r)
			tok := int32(smp.Sample(logits[i*V:(i+1)*V], &p, r.Index, r.History))
			toks[k*R+i] = tok
			r.History = append(r.History, tok)
			r.Index++
			if slices.Contains(r.Stop, tok) || r.Pos+1 >= r.Limit {
				alive[i] = false
				continue
			}
			r.ID, r.Pos = tok, r.Pos+1
		}
	}
	return toks
}

// advanceRows continues rows after a loop's tokens, as an engine would.
func advanceRows(rows []backend.DecodeRow, toks []int32, R, steps int) []backend.DecodeRow {
	var out []backend.DecodeRow
	for i := range rows {
		r := rows[i]
		r.History = slices.Clone(r.History)
		ended := false
		for k := 0; k < steps; k++ {
			tok := toks[k*R+i]
			if tok < 0 {
				ended = true
				break
			}
			r.History = append(r.History, tok)
			r.Index++
			if slices.Contains(r.Stop, tok) || r.Pos+1 >= r.Limit {
				ended = true
				break
			}
			r.ID, r.Pos = tok, r.Pos+1
		}
		if !ended {
			out = append(out, r)
		}
	}
	return out
}

// TestDecodeLoop replays a captured tiny decode step through DecodeLoop and compares
// every token with hostLoop (the step eager on the device, sampling by
// runtime/sampling on the CPU): greedy, seeded temperature with top-k, top-p with
// penalties and a history, min-p, unfiltered sampling at a long context (split-K
// attention), a stop id, a length limit and idle rows; then a second, longer loop
// continuing the survivors. It skips without a GPU.
func TestDecodeLoop(t *testing.T) {
	for _, k := range []Kernels{KernelsV2, KernelsV1} {
		t.Run(string(k), func(t *testing.T) { testDecodeLoop(t, k) })
	}
}

func testDecodeLoop(t *testing.T, set Kernels) {
	b := openWith(t, Options{Kernels: set})
	r := rand.New(rand.NewSource(2))
	const R, bs, blocks, maxCtx = 8, 16, 256, 1024
	const MB = maxCtx / bs
	s, err := b.NewStream()
	must(t, err)
	m := newTinyLM(t, b, r, R)
	io := newDecodeIO(t, b, R, MB, m.vocab)
	refIO := newDecodeIO(t, b, R, MB, m.vocab)
	kv, err := b.AllocKV(1, blocks, bs, m.kvh, m.hd)
	must(t, err)
	kvRef, err := b.AllocKV(1, blocks, bs, m.kvh, m.hd)
	must(t, err)
	cacheLen := blocks * m.kvh * bs * m.hd
	initK, initV := randF32(r, cacheLen, 1), randF32(r, cacheLen, 1)
	resetCaches := func() {
		for _, c := range []*backend.KVCache{kv, kvRef} {
			must(t, b.Upload(c.K[0], backend.Bytes(initK), backend.F32))
			must(t, b.Upload(c.V[0], backend.Bytes(initV), backend.F32))
		}
	}
	resetCaches()

	perm := r.Perm(blocks)
	nextBlock := 0
	row := func(pos, limit int32) backend.DecodeRow {
		rw := backend.DecodeRow{ID: int32(r.Intn(m.vocab)), Pos: pos, Limit: limit, Params: sampling.Params{TopP: 1, RepetitionPenalty: 1, Seed: uint64(r.Int63())}}
		for j := 0; j < int(limit+bs-1)/bs; j++ {
			rw.Blocks = append(rw.Blocks, int32(perm[nextBlock]))
			nextBlock++
		}
		return rw
	}
	rows := []backend.DecodeRow{row(3, 100), row(20, 100), row(33, 100), row(15, 100), row(40, 43), row(700, 1000)}
	rows[1].Temperature, rows[1].TopK, rows[1].Index = 0.9, 20, 3
	rows[2].Temperature, rows[2].TopP, rows[2].RepetitionPenalty, rows[2].PresencePenalty, rows[2].FrequencyPenalty = 1.1, 0.8, 1.3, 0.2, 0.1
	rows[2].History = []int32{5, 9, 9, 200, 17, 5}
	rows[4].Temperature, rows[4].MinP = 0.7, 0.1
	rows[5].Temperature, rows[5].Index = 1, 11

	// Capture: one eager step first (every row idle) sizes the scratch and uploads the
	// RoPE table, which a capture cannot do.
	must(t, m.step(b, s, io, kv, maxCtx))
	must(t, b.Sync(s))
	must(t, b.BeginCapture(s))
	stepErr := m.step(b, s, io, kv, maxCtx)
	g, endErr := b.EndCapture(s)
	must(t, errors.Join(stepErr, endErr))
	defer g.Destroy()

	// The stop id of row 3: the greedy token of its third step.
	const steps1, steps2 = 5, 9
	pre := hostLoop(t, b, s, m, refIO, kvRef, maxCtx, rows, steps1)
	rows[3].Stop = []int32{pre[2*R+3], -7}
	resetCaches()

	check := func(name string, rows []backend.DecodeRow, steps int) []int32 {
		want := hostLoop(t, b, s, m, refIO, kvRef, maxCtx, rows, steps)
		toks, done, err := b.DecodeLoop(s, g, io, rows, steps)
		must(t, err)
		must(t, b.Sync(s))
		if !done.Done() {
			t.Fatalf("%s: done event pending after Sync", name)
		}
		got := slices.Clone(toks)
		if len(got) != steps*R {
			t.Fatalf("%s: %d tokens for %d steps of %d rows", name, len(got), steps, R)
		}
		for i := 0; i < R; i++ {
			for k := 0; k < steps; k++ {
				g, w := got[k*R+i], want[k*R+i]
				if g == backend.TokenHost && set == KernelsV2 {
					t.Errorf("%s: row %d step %d: the v2 sampler gave the row to the host", name, i, k)
					break
				}
				if g == backend.TokenHost {
					t.Logf("%s: row %d step %d: the device sampler gave the row to the host (allowed; rest of the row not compared)", name, i, k)
					break
				}
				if g != w {
					t.Errorf("%s: row %d step %d: token %d, want %d (row: got %v, want %v)", name, i, k, g, w, column(got, R, i), column(want, R, i))
					break
				}
			}
		}
		return got
	}
	toks := check("loop 1", rows, steps1)
	c3 := column(toks, R, 3)
	k3 := slices.Index(c3, rows[3].Stop[0]) // step 2 or earlier (greedy may repeat a token)
	if k3 < 0 || k3 > 2 || slices.ContainsFunc(c3[k3+1:], func(v int32) bool { return v != backend.TokenEnded }) {
		t.Errorf("row 3 should end on its stop id %d by step 2: %v", rows[3].Stop[0], c3)
	}
	if c := column(toks, R, 4); c[2] < 0 || c[3] != backend.TokenEnded {
		t.Errorf("row 4 should end at its limit after step 2: %v", c)
	}
	for _, i := range []int{6, 7} {
		if c := column(toks, R, i); slices.ContainsFunc(c, func(v int32) bool { return v != backend.TokenEnded }) {
			t.Errorf("idle row %d: %v", i, c)
		}
	}
	check("loop 2", advanceRows(rows, toks, R, steps1), steps2)

	// Refusals.
	for name, f := range map[string]func() error{
		"too many rows": func() error { _, _, err := b.DecodeLoop(s, g, io, make([]backend.DecodeRow, R+1), 1); return err },
		"pos >= limit": func() error {
			_, _, err := b.DecodeLoop(s, g, io, []backend.DecodeRow{{Pos: 5, Limit: 5}}, 1)
			return err
		},
		"stops": func() error {
			_, _, err := b.DecodeLoop(s, g, io, []backend.DecodeRow{{Pos: 0, Limit: 5, Stop: make([]int32, backend.MaxStopIDs+1)}}, 1)
			return err
		},
		"blocks": func() error {
			_, _, err := b.DecodeLoop(s, g, io, []backend.DecodeRow{{Pos: 0, Limit: 5, Blocks: make([]int32, MB+1)}}, 1)
			return err
		},
		"steps": func() error { _, _, err := b.DecodeLoop(s, g, io, nil, 0); return err },
		"limit past the captured context": func() error {
			_, _, err := b.DecodeLoop(s, g, io, []backend.DecodeRow{{Pos: 0, Limit: maxCtx + 1, Blocks: make([]int32, MB)}}, 1)
			return err
		},
		"blocks short of the limit": func() error {
			_, _, err := b.DecodeLoop(s, g, io, []backend.DecodeRow{{Pos: 0, Limit: 2*bs + 1, Blocks: make([]int32, 2)}}, 1)
			return err
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: DecodeLoop accepted it", name)
		}
	}
}

// column is row i's tokens over the steps of a [steps][R] array.
func column(toks []int32, R, i int) []int32 {
	var c []int32
	for k := i; k < len(toks); k += R {
		c = append(c, toks[k])
	}
	return c
}

// TestUploadOrdering is the real-device twin of runtime/engine's unordered-upload
// detector (which runs on the CPU fake and cannot see inside Upload): 100 times, upload
// a 64 MiB buffer and read it at once from a kernel (GatherRows, rows reversed) on a
// non-blocking stream, then check every value. With Upload's copy on the legacy stream
// from pageable memory, the gather could read bytes whose DMA had not landed yet. It
// skips without a GPU.
func TestUploadOrdering(t *testing.T) {
	b := open(t)
	s, err := b.NewStream()
	must(t, err)
	const rows, cols = 4096, 4096 // 64 MiB of int32
	x, err := b.Alloc(backend.I32, rows, cols)
	must(t, err)
	out, err := b.Alloc(backend.I32, rows, cols)
	must(t, err)
	rev := make([]int32, rows)
	for i := range rev {
		rev[i] = int32(rows - 1 - i)
	}
	revT := upI32(t, b, rev, 1, rows)
	host := make([]int32, rows*cols)
	got := make([]int32, rows*cols)
	for it := 0; it < 100; it++ {
		for i := range host {
			host[i] = int32(uint32(i)*2654435761 + uint32(it)*40503)
		}
		must(t, b.Upload(x, backend.Bytes(host), backend.I32))
		must(t, b.GatherRows(s, out, x, revT))                    // at once, on a non-blocking stream
		must(t, b.Download(backend.Bytes(got), backend.I32, out)) // waits for s (out's writer), not the device
		bad, first := 0, -1
		for r := 0; r < rows; r++ {
			src := host[(rows-1-r)*cols : (rows-r)*cols]
			for c, v := range got[r*cols : (r+1)*cols] {
				if v != src[c] {
					if first < 0 {
						first = r*cols + c
					}
					bad++
				}
			}
		}
		if bad > 0 {
			t.Fatalf("iteration %d: %d of %d values wrong, first at row %d col %d", it, bad, rows*cols, first/cols, first%cols)
		}
	}
}

// TestMatMulKernel pins MatMulKernel to the dispatch it mirrors on the shapes the
// backendtest matmul cases are built to reach. It needs no GPU (no device call).
func TestMatMulKernel(t *testing.T) {
	b := &Backend{opt: Options{Kernels: KernelsV1}}
	for _, tc := range []struct {
		n, in, out int
		w          backend.DType
		prompt     bool
		want       string
	}{
		{1, 4096, 4096, backend.I8, false, "w8a16-simt"},
		{8, 4096, 1024, backend.I8, false, "w8a16-simt"},
		{9, 4096, 1024, backend.I8, false, "w8a16-mma"},
		{127, 4096, 1024, backend.I8, false, "w8a16-mma"},
		{128, 4096, 1024, backend.I8, false, "w8a16-mma"},
		{128, 4096, 1024, backend.I8, true, "w8a8-mma"},
		{1, 4096, 1024, backend.I8, true, "w8a8-mma"},
		{130, 13, 7, backend.I8, true, "w8a16-simt"}, // k % 32 != 0: no W8A8, no MMA
		{9, 4096, 1024, backend.F16, true, "f16-mma"},
		{5, 4096, 1024, backend.BF16, false, "f16-simt"},
	} {
		if got, _, _ := b.MatMulKernel(tc.n, tc.in, tc.out, tc.w, backend.Epilogue{Prompt: tc.prompt}); got != tc.want {
			t.Errorf("n=%d in=%d out=%d w=%s prompt=%v: %s, want %s", tc.n, tc.in, tc.out, tc.w, tc.prompt, got, tc.want)
		}
	}
	// The SiLU-GLU epilogue's MMA blocks write 32 output columns (64 weight rows).
	if name, _, cols := b.MatMulKernel(9, 4096, 1024, backend.I8, backend.Epilogue{SiLUGLU: true}); name != "w8a16-mma" || cols != 32 {
		t.Errorf("glu: %s with %d-column tiles, want w8a16-mma with 32", name, cols)
	}
}

// TestMatMulCasesReachEveryPath: the default backendtest matmul cases (what the GPU
// check's ops phase runs) reach every kernel MatMul can pick with kernels v1
// — SIMT and tensor-core W8A16, W8A8, 16-bit SIMT and MMA — each at a Llama-3-8B shape
// (k = 4096) with a row tail in its tile, and the MMA and W8A8 kernels with column
// tails too. It needs no GPU (MatMulKernel makes no device call), so CI runs it
// (make cuda-check).
func TestMatMulCasesReachEveryPath(t *testing.T) {
	b := &Backend{opt: Options{Kernels: KernelsV1}}
	type reach struct{ real, rowTail, colTail bool }
	got := map[string]*reach{}
	for _, c := range backendtest.Cases(backendtest.Options{Ops: []string{backendtest.OpMatMul}, DTypes: []backend.DType{backend.F16}}) {
		w := backend.F16
		if c.Int8 {
			w = backend.I8
		}
		name, tr, tc := b.MatMulKernel(c.N, c.In, c.Out, w, backend.Epilogue{Accumulate: c.Accumulate, SiLUGLU: c.GLU, Prompt: c.Prompt})
		r := got[name]
		if r == nil {
			r = &reach{}
			got[name] = r
		}
		r.real = r.real || c.In == backendtest.Llama3Dim
		r.rowTail = r.rowTail || (c.In == backendtest.Llama3Dim && c.N%tr != 0)
		r.colTail = r.colTail || c.Out%tc != 0
	}
	for _, k := range []string{"w8a16-simt", "w8a16-mma", "w8a8-mma", "f16-simt", "f16-mma"} {
		r := got[k]
		switch {
		case r == nil:
			t.Errorf("%s: no default case reaches it", k)
		case !r.real || !r.rowTail:
			t.Errorf("%s: no case at a Llama-3-8B shape with a row tail (%+v)", k, *r)
		case strings.HasSuffix(k, "-mma") && !r.colTail:
			t.Errorf("%s: no case with a column tail", k)
		}
	}
}
