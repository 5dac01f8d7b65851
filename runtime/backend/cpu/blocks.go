package cpu

import (
	"fmt"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// Block-quantized weights (GGUF block types) stay as the file stores them and are
// multiplied natively, never expanded to floats: each MatMul quantizes its activations
// per token into the type's activation format (for Q8_0: Q8_0 itself, blocks of 32 with
// a float32 scale, as llama.cpp multiplies Q8_0 by Q8_0) and runs the type's kernels.
//
// Numerics: every output element is the type's kernel contract applied to its weight
// row and its token's own quantized activations (kern/q8.go for Q8_0), whichever tile
// or kernel computed it, so a row's result depends on nothing else in the batch:
// prompt and generated tokens, one row or many, get identical results.
//
// blockFormat is what a type needs; a new type (Q4_K, …) adds an entry with its
// activation format and kernels.
type blockFormat struct {
	values, bytes int // per weight block
	// actBlock is the activation block the kernels take (values, one float32 scale).
	actBlock int
	quantize func(qa []int8, da []float32, x []float32) // one token's activations
	// tile computes 4 weight rows × 4 tokens; rows4 4 rows × 1 token, bit-identical.
	tile  func(out *[16]float32, w []byte, ldw, nb int, qa []int8, lda int, da []float32, ldd int)
	rows4 func(out *[4]float32, w []byte, ldw, nb int, qa []int8, da []float32)
	// dequant expands one row (Embed).
	dequant func(dst []float32, row []byte)
}

var blockFormats = map[backend.DType]*blockFormat{
	backend.Q8_0: {values: kern.Q8Block, bytes: kern.Q8BlockBytes, actBlock: kern.Q8Block,
		quantize: kern.QuantizeQ8, tile: kern.Q8Tile4x4, rows4: kern.Q8Rows4, dequant: dequantQ8_0},
}

func dequantQ8_0(dst []float32, row []byte) {
	for b := 0; b < len(dst)/kern.Q8Block; b++ {
		blk := row[b*kern.Q8BlockBytes : (b+1)*kern.Q8BlockBytes]
		d := kern.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		for i := 0; i < kern.Q8Block; i++ {
			dst[b*kern.Q8Block+i] = d * float32(int8(blk[2+i]))
		}
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
	qa []int8
	da []float32
}

var actPool = sync.Pool{New: func() any { return new(actScratch) }}

// blockMatmul is MatMul with a block-quantized weight.
type blockMatmul struct {
	f          *blockFormat
	w          []byte
	o          []float32
	qa         []int8
	da         []float32
	n, in, out int
	nb, ldw    int
	acc        bool
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
	qa, da := grow(&sc.qa, n*in), grow(&sc.da, n*nab)
	// Quantize each token's activations (a small fraction of the multiply's work).
	c.parallel(n, 1, n*in/8, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			f.quantize(qa[t*in:(t+1)*in], da[t*nab:(t+1)*nab], xs[t*in:(t+1)*in])
		}
	})
	m := blockMatmul{f: f, w: wb, o: o, qa: qa, da: da, n: n, in: in, out: w.Out,
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
	var tile [16]float32
	var r4 [4]float32
	put := func(t, j int, v float32) {
		if m.acc {
			m.o[t*nout+j] += v
		} else {
			m.o[t*nout+j] = v
		}
	}
	for j := j0; j < j1; j += 4 {
		g := j // first row of the 4 computed
		if g+4 > nout {
			g = max(0, nout-4)
		}
		if nout < 4 {
			for t := 0; t < n; t++ {
				for jj := j; jj < j1; jj++ {
					put(t, jj, q8Row(m, jj, t))
				}
			}
			return
		}
		w := m.w[g*ldw:]
		lo, hi := j-g, min(j1, j+4)-g // the rows of this group that are ours
		t := 0
		for ; t+4 <= n; t += 4 {
			f.tile(&tile, w, ldw, nb, m.qa[t*in:], in, m.da[t*nab:], nab)
			for tt := 0; tt < 4; tt++ {
				for r := lo; r < hi; r++ {
					put(t+tt, g+r, tile[4*tt+r])
				}
			}
		}
		for ; t < n; t++ {
			f.rows4(&r4, w, ldw, nb, m.qa[t*in:(t+1)*in], m.da[t*nab:(t+1)*nab])
			for r := lo; r < hi; r++ {
				put(t, g+r, r4[r])
			}
		}
	}
}

// q8Row computes one element through the 4-row kernel for a matrix of fewer than 4
// rows (padding the group with row 0).
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
			return fmt.Errorf("embed: token id %d outside the vocabulary [0, %d)", id, table.Out)
		}
		f.dequant(o[i*d:(i+1)*d], wb[int(id)*rb:(int(id)+1)*rb])
	}
	return nil
}
