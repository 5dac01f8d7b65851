package cpu

import (
	"fmt"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// GGUF Q8_0 weights stay as the file stores them and are multiplied natively, never
// expanded to floats: each MatMul quantizes its activations per token into Q8_0 blocks
// of 32, exactly as llama.cpp's x86 quantize_row_q8_0 does, and runs kern's Q8_0
// kernels. The other block types (Q4_0 … Q6_K) go through quant.go, whose kernels
// unpack weights in registers; Q8_0 has its own path because its prefill tile reads
// packed row groups (Q8Pack4: the quants' sign bits flipped once for VPDPBUSD, the
// scales as float32) that quant.go's tile interface has no step for.
//
// Numerics: every output element is kern's Q8_0 contract (kern/q8.go: the same as
// kern/kq.go's for the other types) applied to its weight row and its token's own
// quantized activations, whichever tile or kernel computed it, so a row's result
// depends on nothing else in the batch: prompt and generated tokens, one row or many,
// get identical results.
//
// blockFormat is what such a path needs.
type blockFormat struct {
	values, bytes int // per weight block
	// actBlock is the activation block the kernels take (values, one float32 scale).
	actBlock int
	// quantize quantizes one token's activations: values, one scale per block, and
	// the corrections the tile kernel takes (8 int32 per block).
	quantize func(qa []int8, da []float32, ca []int32, x []float32)
	// pack prepares 4 weight rows for tile (packBytes(nb) bytes and 4·nb scales);
	// interleave lays out the scales of 4 tokens as tile takes them.
	pack       func(pw []byte, pd []float32, w []byte, ldw, nb int)
	interleave func(da4 []float32, da []float32, ldd, nb int)
	// tile computes 4 packed weight rows × 4 tokens; rows4 4 rows of the stored
	// weights × 1 token. The two are bit-identical.
	tile  func(out *[16]float32, pw []byte, pd []float32, nb int, qa []int8, lda int, da4 []float32, ca []int32, ldc int)
	rows4 func(out *[4]float32, w []byte, ldw, nb int, qa []int8, da []float32)
	// dequant expands one row (Embed).
	dequant func(dst []float32, row []byte)
}

var blockFormats = map[backend.DType]*blockFormat{
	backend.Q8_0: {values: kern.Q8Block, bytes: kern.Q8BlockBytes, actBlock: kern.Q8Block,
		quantize: kern.QuantizeQ8, pack: kern.Q8Pack4, interleave: kern.Q8Interleave4,
		tile: kern.Q8Tile4x4, rows4: kern.Q8Rows4, dequant: dequantQ8_0},
}

func dequantQ8_0(dst []float32, row []byte) {
	if err := ggml.Dequantize(ggml.Q8_0, dst, row); err != nil {
		panic(err) // the caller sized both from the weight's shape
	}
}

// blockRows returns a block weight's bytes and format.
func blockRows(op string, w *backend.Weight) ([]byte, *blockFormat, error) {
	f := blockFormats[w.W.DType]
	b, ok := w.W.Buf.(*buf)
	if f == nil || !ok || b.u8 == nil {
		return nil, nil, fmt.Errorf("%s: weight %q (%s) is not a CPU block weight", op, w.Name, w.W.DType)
	}
	rb := w.W.DType.RowBytes(w.In)
	off := w.W.Off / f.values * f.bytes
	if rb < 0 || off+w.Out*rb > len(b.u8) {
		return nil, nil, fmt.Errorf("%s: weight %q: %d bytes for %d rows of %s", op, w.Name, len(b.u8), w.Out, w.W.DType)
	}
	return b.u8[off : off+w.Out*rb], f, nil
}

// actScratch holds a MatMul's quantized activations.
type actScratch struct {
	qa  []int8
	da  []float32
	ca  []int32
	da4 []float32
}

var actPool = sync.Pool{New: func() any { return new(actScratch) }}

// packScratch holds one goroutine's packed weight rows.
type packScratch struct {
	pw []byte
	pd []float32
}

var packPool = sync.Pool{New: func() any { return new(packScratch) }}

// blockMatmul is MatMul with a block-quantized weight.
type blockMatmul struct {
	f          *blockFormat
	w          []byte
	o          []float32
	qa         []int8
	da, da4    []float32
	ca         []int32
	n, in, out int
	nb, ldw    int
	acc        bool
}

// tokenBlock is how many tokens one pass over a group of weight rows serves: their
// quantized activations (about 2.1 bytes per value with the tile's corrections and
// scales) stay within 768 KiB of L2 while each packed row group (4 rows, in L1) meets
// all of them: 176 tokens at width 2048, 64 at 5632.
func tokenBlock(in int) int {
	t := (768 << 10) / (2*in + in/8)
	return max(16, min(256, t)) &^ 3
}

func (c *Backend) matmulBlocks(o, xs []float32, w *backend.Weight, n int, acc bool) error {
	wb, f, err := blockRows("matmul", w)
	if err != nil {
		return err
	}
	if w.In%f.actBlock != 0 {
		return fmt.Errorf("matmul: weight %q: width %d is not a multiple of %d", w.Name, w.In, f.actBlock)
	}
	sc := actPool.Get().(*actScratch)
	defer actPool.Put(sc)
	in := w.In
	nab := in / f.actBlock
	groups := n / 4 // tokens in whole groups of 4 go through the tile kernel
	qa, da := grow(&sc.qa, n*in), grow(&sc.da, n*nab)
	ca, da4 := grow(&sc.ca, groups*4*8*nab), grow(&sc.da4, groups*4*nab)
	// Quantize each token's activations (a small fraction of the multiply's work).
	c.parallel(n, 4, n*in/4, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			var cat []int32
			if t < 4*groups {
				cat = ca[t*8*nab : (t+1)*8*nab]
			}
			f.quantize(qa[t*in:(t+1)*in], da[t*nab:(t+1)*nab], cat, xs[t*in:(t+1)*in])
		}
		for g := (t0 + 3) / 4; 4*g+4 <= min(t1, 4*groups); g++ {
			f.interleave(da4[4*g*nab:], da[4*g*nab:], nab, nab)
		}
	})
	m := blockMatmul{f: f, w: wb, o: o, qa: qa, da: da, da4: da4, ca: ca, n: n, in: in, out: w.Out,
		nb: in / f.values, ldw: w.W.DType.RowBytes(in), acc: acc}
	work := n * w.Out * in
	if c.chunks(w.Out, work) <= 1 {
		m.run(0, w.Out)
		return nil
	}
	pm := m
	c.parallel(w.Out, 4, work, pm.run)
	return nil
}

// run computes output columns [j0, j1) for every token, in 4-row groups; a last group
// of fewer than 4 rows recomputes the rows before it (identically) and keeps only its
// own.
func (m *blockMatmul) run(j0, j1 int) {
	f, n, in, nout, nb, ldw, nab := m.f, m.n, m.in, m.out, m.nb, m.ldw, m.in/m.f.actBlock
	if nout < 4 {
		for t := 0; t < n; t++ {
			for j := j0; j < j1; j++ {
				m.put(t, j, q8Row(m, j, t))
			}
		}
		return
	}
	groups := n / 4
	var ps *packScratch
	if groups > 0 {
		ps = packPool.Get().(*packScratch)
		defer packPool.Put(ps)
		grow(&ps.pw, 4*in)
		grow(&ps.pd, 4*nb)
	}
	var tile [16]float32
	var r4 [4]float32
	tb := tokenBlock(in)
	for t0 := 0; t0 < max(n, 1); t0 += tb {
		t1 := min(n, t0+tb)
		for j := j0; j < j1; j += 4 {
			g := min(j, nout-4)           // first row of the 4 computed
			lo, hi := j-g, min(j1, j+4)-g // the rows of this group that are ours
			w := m.w[g*ldw:]
			t := t0
			if t+4 <= min(t1, 4*groups) {
				f.pack(ps.pw, ps.pd, w, ldw, nb)
				for ; t+4 <= min(t1, 4*groups); t += 4 {
					f.tile(&tile, ps.pw, ps.pd, nb, m.qa[t*in:], in, m.da4[t*nab:], m.ca[t*8*nab:], 8*nab)
					for tt := 0; tt < 4; tt++ {
						for r := lo; r < hi; r++ {
							m.put(t+tt, g+r, tile[4*tt+r])
						}
					}
				}
			}
			for ; t < t1; t++ {
				f.rows4(&r4, w, ldw, nb, m.qa[t*in:(t+1)*in], m.da[t*nab:(t+1)*nab])
				for r := lo; r < hi; r++ {
					m.put(t, g+r, r4[r])
				}
			}
		}
	}
}

func (m *blockMatmul) put(t, j int, v float32) {
	if m.acc {
		m.o[t*m.out+j] += v
	} else {
		m.o[t*m.out+j] = v
	}
}

// q8Row computes one element through the 4-row kernel for a matrix of fewer than 4
// rows (padding the group with row j).
func q8Row(m *blockMatmul, j, t int) float32 {
	rows := make([]byte, 4*m.ldw)
	for r := 0; r < 4; r++ {
		copy(rows[r*m.ldw:], m.w[j*m.ldw:(j+1)*m.ldw])
	}
	var r4 [4]float32
	nab := m.in / m.f.actBlock
	m.f.rows4(&r4, rows, m.ldw, m.nb, m.qa[t*m.in:(t+1)*m.in], m.da[t*nab:(t+1)*nab])
	return r4[0]
}

// embedBlocks writes the dequantized table rows ids[i] into o.
func embedBlocks(o []float32, table *backend.Weight, ids []int32) error {
	wb, f, err := blockRows("embed", table)
	if err != nil {
		return err
	}
	d, rb := table.In, table.W.DType.RowBytes(table.In)
	for i, id := range ids {
		if id < 0 || int(id) >= table.Out {
			clear(o[i*d : (i+1)*d]) // as Embed: a zero row
			continue
		}
		f.dequant(o[i*d:(i+1)*d], wb[int(id)*rb:(int(id)+1)*rb])
	}
	return nil
}
