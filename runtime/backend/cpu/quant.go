package cpu

import (
	"fmt"
	"sync"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu/kern"
)

// GGUF's 4-, 5- and 6-bit block types (Q4_0, Q4_1, Q5_0, Q5_1 and the K-quants Q2_K …
// Q6_K) stay as the file stores them, read in place from its mapping, and are
// multiplied natively: each MatMul quantizes its activations per token into the type's
// activation format, as llama.cpp does (Q8_K for the K-quants, 8-bit blocks of 32 for
// the others), and runs the type's kernels (kern/kq.go), which unpack the weights in
// registers. The embedding gathers rows with ggml's dequantization.
//
// Numerics: every output element is kern's contract applied to its weight row and its
// token's own quantized activations, whichever kernel (decode or tile), level or split
// computed it. So a row's result depends on nothing else in the batch: a token scored
// in a prompt of any length and the same token generated alone get bit-identical
// results.
var quantFormats = map[backend.DType]*kern.QFormat{
	backend.Q4_0: kern.QQ4_0, backend.Q4_1: kern.QQ4_1, backend.Q5_0: kern.QQ5_0, backend.Q5_1: kern.QQ5_1,
	backend.Q2_K: kern.QQ2_K, backend.Q3_K: kern.QQ3_K, backend.Q4_K: kern.QQ4_K, backend.Q5_K: kern.QQ5_K,
	backend.Q6_K: kern.QQ6_K,
}

// LoadsBlocks reports the block types the CPU backend multiplies natively: these and
// Q8_0 (blocks.go).
func (c *Backend) LoadsBlocks(t backend.DType) bool {
	return quantFormats[t] != nil || blockFormats[t] != nil
}

var _ backend.BlockLoader = (*Backend)(nil)

// quantRows returns a block weight's bytes and kernels.
func quantRows(op string, w *backend.Weight) ([]byte, *kern.QFormat, error) {
	f := quantFormats[w.W.DType]
	b, ok := w.W.Buf.(*buf)
	if f == nil || !ok || b.u8 == nil {
		return nil, nil, fmt.Errorf("%s: weight %q (%s) is not a CPU block weight", op, w.Name, w.W.DType)
	}
	rb := w.W.DType.RowBytes(w.In)
	off := w.W.Off / f.Block * f.BlockBytes
	if rb < 0 || w.W.Off%f.Block != 0 || off+w.Out*rb > len(b.u8) {
		return nil, nil, fmt.Errorf("%s: weight %q: %d bytes for %d rows of %s", op, w.Name, len(b.u8), w.Out, w.W.DType)
	}
	return b.u8[off : off+w.Out*rb], f, nil
}

// quantScratch holds a MatMul's quantized activations.
type quantScratch struct{ act []byte }

var quantPool = sync.Pool{New: func() any { return new(quantScratch) }}

// quantMatmul is MatMul with a block-quantized weight.
type quantMatmul struct {
	f          *kern.QFormat
	w          []byte
	o          []float32
	act        []byte
	n, in, out int
	nb, ldw    int
	lda        int
	acc        bool
}

// quantTokenBlock is how many tokens one pass over a group of 4 weight rows serves:
// their quantized activations (about 1.25 bytes per value: 330 KB at width 2048) stay
// in L2 while the group's rows (in L1) meet all of them.
const quantTokenBlock = 128

func (c *Backend) matmulQuant(o, xs []float32, w *backend.Weight, n int, acc bool) error {
	wb, f, err := quantRows("matmul", w)
	if err != nil {
		return err
	}
	in := w.In
	if in%f.ActBlock != 0 {
		return fmt.Errorf("matmul: weight %q: width %d is not a multiple of %d", w.Name, in, f.ActBlock)
	}
	sc := quantPool.Get().(*quantScratch)
	defer quantPool.Put(sc)
	lda := f.ActBytes(in)
	act := grow(&sc.act, n*lda)
	// Quantize each token's activations (a small fraction of the multiply's work).
	c.parallel(n, 1, n*in/4, func(t0, t1 int) {
		for t := t0; t < t1; t++ {
			f.Quantize(act[t*lda:(t+1)*lda], xs[t*in:(t+1)*in])
		}
	})
	m := quantMatmul{f: f, w: wb, o: o, act: act, n: n, in: in, out: w.Out,
		nb: in / f.Block, ldw: f.RowBytes(in), lda: lda, acc: acc}
	work := n * w.Out * in
	if c.chunks(w.Out, work) <= 1 {
		m.run(0, w.Out)
		return nil
	}
	pm := m
	c.parallel(w.Out, 4, work, pm.run)
	return nil
}

// run computes output columns [j0, j1) for every token, in groups of 4 rows; a last
// group of fewer than 4 rows recomputes the rows before it (identically) and keeps only
// its own. A matrix of fewer than 4 rows goes through the portable kernel, which is
// bit-identical.
func (m *quantMatmul) run(j0, j1 int) {
	f, n, nout, nb, ldw, lda := m.f, m.n, m.out, m.nb, m.ldw, m.lda
	if nout < 4 {
		for t := 0; t < n; t++ {
			for j := j0; j < j1; j++ {
				m.put(t, j, f.Dot(m.w[j*ldw:(j+1)*ldw], nb, m.act[t*lda:(t+1)*lda]))
			}
		}
		return
	}
	var tile [16]float32
	var r4 [4]float32
	for t0 := 0; t0 < n; t0 += quantTokenBlock {
		t1 := min(n, t0+quantTokenBlock)
		for j := j0; j < j1; j += 4 {
			g := min(j, nout-4)           // first row of the 4 computed
			lo, hi := j-g, min(j1, j+4)-g // the rows of this group that are ours
			w := m.w[g*ldw:]
			t := t0
			for ; t+4 <= t1; t += 4 {
				f.Tile4x4(&tile, w, ldw, nb, m.act[t*lda:], lda)
				for tt := 0; tt < 4; tt++ {
					for r := lo; r < hi; r++ {
						m.put(t+tt, g+r, tile[4*tt+r])
					}
				}
			}
			for ; t < t1; t++ {
				f.Rows4(&r4, w, ldw, nb, m.act[t*lda:(t+1)*lda])
				for r := lo; r < hi; r++ {
					m.put(t, g+r, r4[r])
				}
			}
		}
	}
}

func (m *quantMatmul) put(t, j int, v float32) {
	if m.acc {
		m.o[t*m.out+j] += v
	} else {
		m.o[t*m.out+j] = v
	}
}

// embedQuant writes the dequantized table rows ids[i] into o.
func embedQuant(o []float32, table *backend.Weight, ids []int32) error {
	wb, f, err := quantRows("embed", table)
	if err != nil {
		return err
	}
	d, rb := table.In, f.RowBytes(table.In)
	for i, id := range ids {
		if id < 0 || int(id) >= table.Out {
			clear(o[i*d : (i+1)*d]) // as Embed: a zero row
			continue
		}
		f.DequantizeRow(o[i*d:(i+1)*d], wb[int(id)*rb:(int(id)+1)*rb])
	}
	return nil
}
