package backendtest

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// Llama-3-8B's shapes, the real-shape cases' source.
const (
	Llama3Dim       = 4096
	Llama3FFN       = 14336
	Llama3Vocab     = 128256
	Llama3Heads     = 32
	Llama3KVHeads   = 8
	Llama3HeadDim   = 128
	Llama3Theta     = 500000
	Llama3MaxPos    = 8192 // original_max_position_embeddings of the rope scaling
	DefaultBlockLen = 16
)

// SeqSpec is one sequence of an attention case: Past cached tokens, then NQ new query
// rows. Extra appends that many unused block ids to its table (they must never be read);
// Shared makes its first Shared blocks those of the previous sequence (a shared prefix).
type SeqSpec struct {
	Past, NQ int
	Extra    int `json:",omitempty"`
	Shared   int `json:",omitempty"`
}

// Case is one op on one shape and dtype. Fields an op does not use are zero.
type Case struct {
	Op    string        // one of the Op* constants
	Name  string        // unique: op/parameters/dtype
	DType backend.DType // activation dtype on the backend under test: F32, F16 or BF16
	Large bool          // real shape too slow for the default CPU run; Options.Large adds it
	Seed  uint64        // inputs are drawn from this (the same for every dtype variant)

	N   int // rows: tokens for embed, rmsnorm, matmul, rope, silu_mul; slots for write_kv; gathered rows
	Dim int // row width (embed, rmsnorm, silu_mul, gather_rows)

	Vocab int // embed: table rows; gather_rows: source rows

	In, Out    int  // matmul weight [Out][In] (with GLU: [2·Out][In], output [N][Out])
	Int8       bool // embed, matmul: int8 weights with one scale per row (else f32)
	Accumulate bool // matmul epilogue: out += x·Wᵀ
	// Sparse24 makes the matmul weight 2:4 sparse (the two largest of every 4): the
	// backend under test gets the compressed weight, the reference the dense masked
	// matrix, so a 2:4 kernel is checked against the dense kernel on the same weights.
	Sparse24 bool `json:",omitempty"`
	// Rank > 0 makes the matmul weight a low-rank pair (factors [Rank][In] and
	// [Out][Rank]) on both sides.
	// lora: the stack's MaxRank, with Slots adapter slots; Idle rows are base rows
	// (slot -1), Bad rows name a slot outside the stack.
	Rank  int  `json:",omitempty"`
	Slots int  `json:",omitempty"`
	GLU   bool `json:",omitempty"` // matmul epilogue SiLUGLU: out = silu(x·Wgᵀ)·(x·Wuᵀ)
	// Prompt marks the matmul's rows as prompt tokens (backend.Epilogue.Prompt): a
	// device then runs int8 weights W8A8 (activations quantized per token), whatever
	// the row count; unmarked rows are generated tokens (W8A16).
	Prompt bool `json:",omitempty"`
	// W4 (Q4_0 or Q4_K) makes the matmul weight GGUF blocks of that type (ggml's
	// quantizer on random floats): a device backend that loads those blocks
	// (backend.BlockLoader: the CUDA backend's W4A16) gets them, any other backend what
	// the model hands it (the dequantized floats, Source set), and the reference the
	// exact dequantized floats (runtime/quant/w4's reference values).
	W4 backend.DType `json:",omitempty"`

	Eps float32 // rmsnorm

	Heads   int               // rope (heads of the rotated tensor), attention (query heads)
	HeadDim int               // rope, write_kv, attention
	Style   backend.RopeStyle // rope
	Theta   float64           // rope base
	Llama3  bool              // rope: Llama-3 frequency scaling (factor 8, low 1, high 4, 8192)
	MaxPos  int               // rope: positions drawn from [0, MaxPos)

	KVHeads   int       // write_kv, attention
	BlockSize int       // write_kv, attention
	Blocks    int       // write_kv: blocks in the cache (attention derives its own)
	Seqs      []SeqSpec // attention: the sequences whose rows the batch computes

	// Index inputs are I32 tensors of the backend, and rows whose index data says so are
	// left alone rather than failing the op (backend.KVIndex). Among a case's rows (for
	// attention: those of Seqs, then Idle and Bad more) Idle have pos < 0 and Bad carry
	// index data out of range: an id outside the vocabulary (embed), a row outside the
	// source (gather_rows), a block-table entry outside the cache, a position past the
	// table or MaxCtx, a sequence with no table (write_kv, attention).
	Idle      int `json:",omitempty"` // rope, write_kv, attention; rmsnorm_quant: rows of zeros
	Bad       int `json:",omitempty"` // embed, write_kv, attention, gather_rows
	MaxBlocks int `json:",omitempty"` // write_kv: block table width (0: 3; attention derives its own)
	Slack     int `json:",omitempty"` // attention: MaxCtx is the longest valid context plus this
}

// Options select the cases a Run checks.
type Options struct {
	Large bool     // also the large real-shape cases
	Ops   []string // only these ops; nil for all
	Match string   // only cases whose name contains this
	// Exclude leaves out cases whose name contains any of its "|"-separated parts (the
	// harness's own tests use it to skip the real-shape kernel-path cases they do not
	// need; the GPU check's sanitizer phase to keep only small shapes).
	Exclude string
	DTypes  []backend.DType // activation dtypes; nil for F32, F16 and BF16
	Seed    uint64          // mixed into every case's seed
	// OnResult, when set, gets each case's result as soon as it is known (the GPU check
	// writes it out at once, so a run cut off by its time cap keeps what it checked).
	OnResult func(Result) `json:"-"`
}

// Cases returns the cases opt selects, in a fixed order.
func Cases(opt Options) []Case {
	dts := opt.DTypes
	if dts == nil {
		dts = []backend.DType{backend.F32, backend.F16, backend.BF16}
	}
	var out []Case
	for _, op := range Ops {
		if opt.Ops != nil && !slices.Contains(opt.Ops, op) {
			continue
		}
		for _, c := range generators[op]() {
			c.Op = op
			if c.Large && !opt.Large {
				continue
			}
			base := c.Name
			for _, dt := range dts {
				c.DType = dt
				c.Name = op + "/" + base + "/" + dt.String()
				if opt.Match != "" && !strings.Contains(c.Name, opt.Match) {
					continue
				}
				if excluded(c.Name, opt.Exclude) {
					continue
				}
				h := fnv.New64a()
				h.Write([]byte(op + "/" + base))
				c.Seed = h.Sum64() ^ opt.Seed
				out = append(out, c)
			}
		}
	}
	return out
}

var generators = map[string]func() []Case{
	OpEmbed:        embedCases,
	OpRMSNorm:      rmsnormCases,
	OpRMSNormQuant: rmsnormQuantCases,
	OpMatMul:       matmulCases,
	OpRoPE:         ropeCases,
	OpWriteKV:      writeKVCases,
	OpAttention:    attentionCases,
	OpSiLUMul:      siluCases,
	OpGatherRows:   gatherCases,
	OpLoRA:         loraCases,
}

func excluded(name, exclude string) bool {
	if exclude == "" {
		return false
	}
	for _, part := range strings.Split(exclude, "|") {
		if part != "" && strings.Contains(name, part) {
			return true
		}
	}
	return false
}

// PathCases names the default real-shape matmul cases that reach every kernel path of
// a device backend (see matmulCases): Options{Exclude: PathCases} leaves them out.
var PathCases = fmt.Sprintf("in=%d,out=%d", Llama3Dim, Llama3KVHeads*Llama3HeadDim)

func wname(int8 bool) string {
	if int8 {
		return "i8"
	}
	return "f32"
}

// Embed: tables of odd shapes and the real one, f32 and int8, with ids at the ends of
// the vocabulary; the "bad" variants mix in ids outside it (the rows must be zero).
func embedCases() []Case {
	var cs []Case
	for _, s := range []struct{ n, vocab, dim, bad int }{
		{1, 1, 1, 0}, {5, 7, 5, 0}, {7, 13, 11, 0}, {17, 257, 64, 0}, {3, 256, Llama3Dim, 0},
		{5, 7, 5, 2}, {7, 13, 11, 3}, {17, 257, 64, 4}, {3, 256, Llama3Dim, 1},
	} {
		for _, q := range []bool{false, true} {
			name := fmt.Sprintf("w=%s,n=%d,vocab=%d,dim=%d", wname(q), s.n, s.vocab, s.dim)
			if s.bad > 0 {
				name += fmt.Sprintf(",bad=%d", s.bad)
			}
			cs = append(cs, Case{Name: name, N: s.n, Vocab: s.vocab, Dim: s.dim, Int8: q, Bad: s.bad})
		}
	}
	// The Llama-3 table, int8 (half a gigabyte; f32 would be two).
	cs = append(cs, Case{Name: fmt.Sprintf("w=i8,n=7,vocab=%d,dim=%d", Llama3Vocab, Llama3Dim),
		N: 7, Vocab: Llama3Vocab, Dim: Llama3Dim, Int8: true, Large: true})
	cs = append(cs, Case{Name: fmt.Sprintf("w=i8,n=9,vocab=%d,dim=%d,bad=2", Llama3Vocab, Llama3Dim),
		N: 9, Vocab: Llama3Vocab, Dim: Llama3Dim, Int8: true, Bad: 2, Large: true})
	return cs
}

// RMSNormQuant: RMSNorm's shapes (rows of scales 0.1, 1 and 10), and rows of zeros
// (Idle of them: scale 1, q 0) among others.
func rmsnormQuantCases() []Case {
	cs := rmsnormCases()
	cs = append(cs, Case{Name: "n=6,dim=40,eps=1e-05,zero=2", N: 6, Dim: 40, Eps: 1e-5, Idle: 2},
		Case{Name: fmt.Sprintf("n=3,dim=%d,eps=1e-05,zero=1", Llama3Dim), N: 3, Dim: Llama3Dim, Eps: 1e-5, Idle: 1})
	return cs
}

func rmsnormCases() []Case {
	var cs []Case
	for _, s := range []struct {
		n, dim int
		eps    float32
	}{
		{1, 1, 1e-5}, {5, 5, 1e-5}, {3, 7, 1e-6}, {7, 13, 1e-5}, {2, 17, 1e-6}, {13, 64, 1e-5},
		{5, Llama3Dim, 1e-5}, // real shape, cheap
	} {
		cs = append(cs, Case{Name: fmt.Sprintf("n=%d,dim=%d,eps=%g", s.n, s.dim, s.eps), N: s.n, Dim: s.dim, Eps: s.eps})
	}
	cs = append(cs, Case{Name: fmt.Sprintf("n=67,dim=%d,eps=1e-05", Llama3Dim), N: 67, Dim: Llama3Dim, Eps: 1e-5, Large: true})
	return cs
}

func matmulCases() []Case {
	var cs []Case
	// Rows are generated tokens (W8A16 on a device) unless role says prompt; the int8
	// cases of prefill-chunk sizes (128 rows and more) are prompt rows (W8A8), and a few
	// cases take the other role at the other sizes (addRole): the role, not the row
	// count, picks the numerics.
	addRole := func(n, in, out int, q, acc, large, prompt bool) {
		name := fmt.Sprintf("w=%s,n=%d,in=%d,out=%d", wname(q), n, in, out)
		if acc {
			name += ",acc"
		}
		if prompt {
			name += ",prompt"
		}
		cs = append(cs, Case{Name: name, N: n, In: in, Out: out, Int8: q, Accumulate: acc, Large: large, Prompt: prompt})
	}
	add := func(n, in, out int, q, acc, large bool) { addRole(n, in, out, q, acc, large, q && n >= 128) }
	glu := func(n, in, out int, q, large bool) {
		name := fmt.Sprintf("w=%s,n=%d,in=%d,out=%d,glu", wname(q), n, in, out)
		if q && n >= 128 {
			name += ",prompt"
		}
		cs = append(cs, Case{Name: name, N: n, In: in, Out: out, Int8: q, GLU: true, Large: large, Prompt: q && n >= 128})
	}
	// Odd shapes; 9 and 17 rows cross a device's decode/prefill regime switch (8 rows),
	// 65 the CPU's 64-row block.
	for _, s := range [][3]int{{1, 1, 1}, {1, 5, 7}, {5, 7, 11}, {7, 13, 5}, {9, 17, 11}, {17, 64, 33}, {65, 32, 9}, {3, 256, 129}} {
		for _, q := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				add(s[0], s[1], s[2], q, acc, false)
			}
		}
	}
	// Column tails of the tensor-core kernels (64×64 block tiles, warps of 32×32, m16n8
	// fragments) with k % 32 == 0, past a device's W8A8 threshold (128 rows: W8A8 for
	// int8 weights, the 16-bit MMA kernel for float ones).
	add(130, 96, 100, true, false, false)
	add(129, 64, 33, false, true, false)
	// Real shapes: one decode row of a 4096×4096 int8 projection runs by default.
	add(1, Llama3Dim, Llama3Dim, true, true, false)
	// Every kernel path of a device backend at a real shape, the k/v projection
	// (4096 → 1024: Llama-3-8B's outputs are all multiples of 64, so only rows have
	// tails), with the row tail of each tile: SIMT (blocks of 8 rows) 7 rows; the
	// tensor-core W8A16 kernel (from 9 rows, 64-row tiles) 9 and 127; W8A8 (prompt rows)
	// 128, 130 and 191; float weights (16-bit on a device: SIMT below 9 rows, MMA from
	// 9) 5, 9 and 130.
	for _, n := range []int{7, 9, 127, 128, 130, 191} {
		add(n, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, n == 130, false)
	}
	// The other role at each size: 130 generated rows (a large decode batch: W8A16),
	// and prompt chunks of 5 and 50 rows (W8A8 with kernels v2's 16- and 64-row tiles,
	// row tails and split-K at the real shape; column tails at 96 → 100).
	addRole(130, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, false, false, false)
	addRole(5, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, false, false, true)
	addRole(50, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, true, false, true)
	addRole(9, 96, 100, true, false, false, true)
	addRole(40, 96, 100, true, true, false, true)
	// Kernels v2 (the CUDA backend's Options.Kernels; runtime/backend/cuda/kmodel picks
	// a tile per row count: 16 rows up to 16, 32 up to 32, 64 up to 64, 128 past, W8A8
	// 128, or 16/64/128 from the first row): the row tails of the 32- and 64-row tiles
	// at the real shape (with split-K there), and a column tail of the 64-row one.
	add(20, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, false, false)
	add(50, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, true, false)
	add(40, 96, 100, true, false, false)
	add(40, 96, 100, true, true, false)
	for _, n := range []int{5, 9, 130} {
		add(n, Llama3Dim, Llama3KVHeads*Llama3HeadDim, false, n == 9, false)
	}
	add(5, Llama3Dim, Llama3Dim, false, false, true)           // f32 attention projection
	add(17, Llama3Dim, Llama3FFN, true, false, true)           // gate/up, prefill rows
	add(3, Llama3FFN, Llama3Dim, true, true, true)             // down, residual accumulate
	add(2, Llama3Dim, Llama3Vocab, true, false, true)          // classifier
	add(64, Llama3Dim, 2*Llama3KVHeads*128, true, false, true) // k/v projection, a prefill chunk
	// Prefill chunks through W8A8 at the FFN shapes: a full 512-row chunk of gate/up,
	// and down with a row tail and the residual accumulate; 16-bit MMA at 200 rows.
	add(512, Llama3Dim, Llama3FFN, true, false, true)
	add(333, Llama3FFN, Llama3Dim, true, true, true)
	add(200, Llama3Dim, Llama3Dim, false, false, true)
	// W4A16 (GGUF Q4_0 and Q4_K blocks; the CUDA backend's kernels v2 W4A16 configs:
	// 16-row decode tiles up to 16 rows, 32 up to 32, 64-row tiles past): odd row and
	// column counts with k in whole groups (32; Q4_K 256), stage tails (k = 96, 160,
	// 768: not multiples of the 128-k stage), every epilogue, a row into a second tile
	// of each height, the Llama-3-8B k/v shape at decode and batched rows (split-K there).
	w4 := func(t backend.DType, n, in, out int, acc, glu, large bool) {
		name := fmt.Sprintf("w=%s,n=%d,in=%d,out=%d", t, n, in, out)
		if acc {
			name += ",acc"
		}
		if glu {
			name += ",glu"
		}
		cs = append(cs, Case{Name: name, N: n, In: in, Out: out, W4: t, Accumulate: acc, GLU: glu, Large: large})
	}
	for _, s := range []struct {
		n, in, out int
		acc, glu   bool
	}{{1, 32, 7, false, false}, {5, 96, 11, true, false}, {9, 64, 33, false, true}, {17, 160, 136, true, false},
		{33, 256, 129, false, true}, {65, 128, 40, true, false}, {130, 96, 100, false, false}} {
		w4(backend.Q4_0, s.n, s.in, s.out, s.acc, s.glu, false)
	}
	for _, s := range []struct {
		n, in, out int
		acc, glu   bool
	}{{1, 256, 7, false, false}, {9, 512, 33, true, false}, {17, 256, 136, false, true}, {40, 768, 100, true, false},
		{130, 256, 9, false, false}} {
		w4(backend.Q4_K, s.n, s.in, s.out, s.acc, s.glu, false)
	}
	for _, t := range []backend.DType{backend.Q4_0, backend.Q4_K} {
		w4(t, 1, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, false, false)
		w4(t, 20, Llama3Dim, Llama3KVHeads*Llama3HeadDim, false, false, false)
		w4(t, 50, Llama3Dim, Llama3KVHeads*Llama3HeadDim, t == backend.Q4_K, false, false)
		w4(t, 3, Llama3Dim, Llama3Dim, false, true, true)
		w4(t, 2, Llama3FFN, Llama3Dim, true, false, true)
	}
	// 2:4 weights against the dense kernels on the masked weights: the SIMT path with
	// rows of any multiple of 4 (36, 100) and of 32, up to and past 8 rows; the 16-bit
	// mma.sp path from 9 rows (k % 32 == 0); int8 past 128 rows (W8A8, k % 64 == 0); an
	// output tail of each tile (64 features × 32 tokens); the Llama-3 k/v projection.
	sp := func(n, in, out int, q, acc, large bool) {
		add(n, in, out, q, acc, large)
		c := &cs[len(cs)-1]
		c.Sparse24 = true
		c.Name += ",2:4"
	}
	for _, s := range [][3]int{{1, 4, 1}, {1, 36, 7}, {5, 100, 9}, {8, 64, 33}, {9, 32, 17}, {33, 96, 65}, {130, 128, 70}} {
		for _, q := range []bool{false, true} {
			sp(s[0], s[1], s[2], q, s[0]%2 == 1, false)
		}
	}
	for _, n := range []int{1, 9, 130} {
		for _, q := range []bool{false, true} {
			sp(n, Llama3Dim, Llama3KVHeads*Llama3HeadDim, q, n == 9, false)
		}
	}
	sp(512, Llama3Dim, Llama3FFN, true, false, true)
	// Low-rank pairs: two matmuls through the backend's scratch, on both sides.
	lr := func(n, in, out, rank int, q, acc bool) {
		add(n, in, out, q, acc, false)
		c := &cs[len(cs)-1]
		c.Rank = rank
		c.Name += fmt.Sprintf(",rank=%d", rank)
	}
	for _, s := range [][4]int{{1, 5, 7, 1}, {5, 64, 33, 8}, {9, 96, 17, 32}, {130, 128, 70, 64}, {3, Llama3Dim, Llama3Dim, 512}} {
		for _, q := range []bool{false, true} {
			lr(s[0], s[1], s[2], s[3], q, s[0] == 5)
		}
	}
	// The SiLU-GLU epilogue (gate and up rows of one weight, silu(gate)·up out): odd
	// shapes across the SIMT / tensor-core / W8A8 switches with column tails, and each
	// kernel path at the k/v projection's real shape (PathCases: SIMT 7 rows, MMA 9,
	// W8A8 130; 16-bit MMA 9); the gate/up projection itself (a decode row and a
	// 512-row chunk) is Large.
	for _, s := range [][3]int{{1, 5, 3}, {5, 7, 11}, {9, 64, 33}, {17, 96, 40}, {130, 96, 50}} {
		for _, q := range []bool{false, true} {
			glu(s[0], s[1], s[2], q, false)
		}
	}
	for _, n := range []int{7, 9, 130} {
		glu(n, Llama3Dim, Llama3KVHeads*Llama3HeadDim, true, false)
	}
	glu(9, Llama3Dim, Llama3KVHeads*Llama3HeadDim, false, false)
	glu(1, Llama3Dim, Llama3FFN, true, true)
	glu(512, Llama3Dim, Llama3FFN, true, true)
	return cs
}

// RoPE: both styles, plain and Llama-3-scaled frequencies, positions up to 8191; the
// "idle" variants mix in rows at negative positions (they must come back as they were).
func ropeCases() []Case {
	var cs []Case
	for _, st := range []backend.RopeStyle{backend.RopePairs, backend.RopeRotateHalf} {
		for _, s := range []struct {
			n, idle, heads, hd int
			theta              float64
			llama3             bool
			maxPos             int
		}{
			{1, 0, 1, 2, 10000, false, 1},
			{5, 0, 3, 8, 10000, false, 37},
			{7, 0, 5, 12, 10000, false, 1024},
			{11, 0, 2, 64, Llama3Theta, true, 8192},
			{3, 0, Llama3Heads, Llama3HeadDim, Llama3Theta, true, 8192},    // q, real shape
			{13, 0, Llama3KVHeads, Llama3HeadDim, Llama3Theta, true, 8192}, // k, real shape
			{5, 2, 3, 8, 10000, false, 37},
			{7, 3, 6, 48, 10000, false, 1024},
			{11, 1, 2, 64, Llama3Theta, true, 8192},
			{3, 1, Llama3Heads, Llama3HeadDim, Llama3Theta, true, 8192},
			{13, 4, Llama3KVHeads, Llama3HeadDim, Llama3Theta, true, 8192},
		} {
			style := "pairs"
			if st == backend.RopeRotateHalf {
				style = "half"
			}
			freq := fmt.Sprintf("theta=%g", s.theta)
			if s.llama3 {
				freq += ",llama3"
			}
			name := fmt.Sprintf("%s,n=%d,heads=%d,hd=%d,%s,pos<%d", style, s.n, s.heads, s.hd, freq, s.maxPos)
			if s.idle > 0 {
				name = fmt.Sprintf("%s,n=%d,idle=%d,heads=%d,hd=%d,%s,pos<%d", style, s.n, s.idle, s.heads, s.hd, freq, s.maxPos)
			}
			cs = append(cs, Case{Name: name, N: s.n, Idle: s.idle, Heads: s.heads, HeadDim: s.hd, Style: st, Theta: s.theta, Llama3: s.llama3, MaxPos: s.maxPos})
		}
	}
	return cs
}

// WriteKV: slots scattered over the cache through shuffled table rows; the idle/bad
// variants mix in rows at negative positions and rows whose table entry, position or
// sequence is out of range (they must write nothing).
func writeKVCases() []Case {
	var cs []Case
	for _, s := range []struct{ n, idle, bad, blocks, maxBlocks, bs, kvh, hd int }{
		{1, 0, 0, 1, 0, 1, 1, 1}, {3, 0, 0, 4, 0, 1, 1, 8}, {5, 0, 0, 5, 0, 16, 1, 8}, {13, 0, 0, 7, 0, 5, 3, 12},
		{17, 0, 0, 9, 0, 16, 2, 64},
		{37, 0, 0, 6, 0, DefaultBlockLen, Llama3KVHeads, Llama3HeadDim}, // real heads, 37 scattered slots
		{1, 0, 0, 1, 1, 1, 1, 1},
		{3, 1, 0, 4, 2, 1, 1, 8},
		{5, 1, 2, 5, 3, 16, 1, 8},
		{7, 2, 2, 9, 4, 5, 2, 48},
		{13, 3, 4, 7, 3, 5, 3, 12},
		{17, 2, 3, 9, 5, 16, 2, 64},
		{37, 5, 4, 6, 4, DefaultBlockLen, Llama3KVHeads, Llama3HeadDim},
	} {
		name := fmt.Sprintf("n=%d,blocks=%d,bs=%d,kvh=%d,hd=%d", s.n, s.blocks, s.bs, s.kvh, s.hd)
		if s.maxBlocks > 0 {
			name = fmt.Sprintf("n=%d,idle=%d,bad=%d,blocks=%d,width=%d,bs=%d,kvh=%d,hd=%d", s.n, s.idle, s.bad, s.blocks, s.maxBlocks, s.bs, s.kvh, s.hd)
		}
		cs = append(cs, Case{Name: name, N: s.n, Idle: s.idle, Bad: s.bad, Blocks: s.blocks, MaxBlocks: s.maxBlocks, BlockSize: s.bs, KVHeads: s.kvh, HeadDim: s.hd})
	}
	return cs
}

func attentionCases() []Case {
	var cs []Case
	add := func(heads, kvh, hd, bs int, large bool, seqs ...SeqSpec) {
		var parts []string
		for _, s := range seqs {
			p := fmt.Sprintf("%d+%d", s.Past, s.NQ)
			if s.Shared > 0 {
				p += fmt.Sprintf("s%d", s.Shared)
			}
			parts = append(parts, p)
		}
		cs = append(cs, Case{Name: fmt.Sprintf("h=%d,kvh=%d,hd=%d,bs=%d,seqs=%s", heads, kvh, hd, bs, strings.Join(parts, ";")),
			Heads: heads, KVHeads: kvh, HeadDim: hd, BlockSize: bs, Seqs: seqs, Large: large})
	}
	add(1, 1, 8, 16, false, SeqSpec{Past: 0, NQ: 1})
	add(4, 2, 8, 4, false, SeqSpec{Past: 0, NQ: 5}, SeqSpec{Past: 9, NQ: 1, Extra: 2}, SeqSpec{Past: 6, NQ: 3})
	add(6, 2, 12, 5, false, SeqSpec{Past: 13, NQ: 1, Extra: 1}, SeqSpec{Past: 2, NQ: 7}, SeqSpec{Past: 0, NQ: 1}, SeqSpec{Past: 24, NQ: 2})
	add(3, 3, 16, 16, false, SeqSpec{Past: 0, NQ: 17}, SeqSpec{Past: 33, NQ: 1, Extra: 1})
	add(8, 1, 32, 16, false, SeqSpec{Past: 13, NQ: 11}, SeqSpec{Past: 40, NQ: 1}, SeqSpec{Past: 5, NQ: 1}, SeqSpec{Past: 16, NQ: 4})
	add(4, 2, 64, 1, false, SeqSpec{Past: 3, NQ: 2}, SeqSpec{Past: 7, NQ: 1})
	add(4, 2, 16, 4, false, SeqSpec{Past: 8, NQ: 2}, SeqSpec{Past: 9, NQ: 1, Shared: 2})
	// A lone decode row at a long context: a device kernel splits such contexts and
	// merges the splits (log-sum-exp), a path the short cases never reach.
	add(8, 2, 64, 16, false, SeqSpec{Past: 1500, NQ: 1})
	// Real shapes: a cheap mixed batch by default; long contexts and a 64-token chunk large.
	add(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, false,
		SeqSpec{Past: 40, NQ: 1, Extra: 1}, SeqSpec{Past: 16, NQ: 1}, SeqSpec{Past: 0, NQ: 1}, SeqSpec{Past: 20, NQ: 5})
	add(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, false, SeqSpec{Past: 1100, NQ: 1})
	add(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, true,
		SeqSpec{Past: 1022, NQ: 1}, SeqSpec{Past: 500, NQ: 1, Shared: 20}, SeqSpec{Past: 448, NQ: 64, Extra: 2},
		SeqSpec{Past: 2046, NQ: 1}, SeqSpec{Past: 16, NQ: 1}, SeqSpec{Past: 0, NQ: 16})

	// Decode steps as a captured graph runs them: one row per sequence, with idle rows
	// and rows of bad index data mixed in, and MaxCtx beyond the longest context.
	dec := func(heads, kvh, hd, bs, idle, bad, slack int, large bool, seqs ...SeqSpec) {
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
	dec(1, 1, 8, 16, 0, 0, 0, false, SeqSpec{Past: 0})
	dec(4, 2, 8, 4, 1, 2, 0, false, SeqSpec{Past: 9, Extra: 2}, SeqSpec{Past: 5}, SeqSpec{Past: 0}, SeqSpec{Past: 12, Shared: 2})
	dec(6, 2, 12, 5, 2, 2, 3, false, SeqSpec{Past: 13, Extra: 1}, SeqSpec{Past: 2}, SeqSpec{Past: 24}, SeqSpec{Past: 7})
	dec(6, 2, 48, 16, 1, 2, 40, false, SeqSpec{Past: 15}, SeqSpec{Past: 16}, SeqSpec{Past: 31, Shared: 1}, SeqSpec{Past: 47})
	dec(8, 1, 32, 16, 1, 1, 17, false, SeqSpec{Past: 40}, SeqSpec{Past: 5}, SeqSpec{Past: 16}, SeqSpec{Past: 13})
	dec(4, 2, 64, 1, 1, 2, 2, false, SeqSpec{Past: 3}, SeqSpec{Past: 7})
	// A long context next to short ones: a device kernel splits it (log-sum-exp merge).
	dec(8, 2, 64, 16, 1, 2, 100, false, SeqSpec{Past: 1500}, SeqSpec{Past: 17})
	dec(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, 2, 2, 5, false,
		SeqSpec{Past: 40, Extra: 1}, SeqSpec{Past: 16}, SeqSpec{Past: 0}, SeqSpec{Past: 20}, SeqSpec{Past: 1100})
	dec(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, 3, 2, 1000, true,
		SeqSpec{Past: 1022}, SeqSpec{Past: 500, Shared: 20}, SeqSpec{Past: 2046}, SeqSpec{Past: 16}, SeqSpec{Past: 0}, SeqSpec{Past: 463, Extra: 2})
	// Kernel paths of a device backend (the CUDA kernels v2, attention2.cu; their Go
	// test TestAttention2CasesReachEveryPath checks that these reach every path): prefill
	// chunks of one sequence long enough for tensor-core tiles of 64 rows, at head dims 64
	// and 128, with full and tail tiles of rows and of keys; a prefill pass whose tiles
	// mix sequences and idle or bad rows; decode at head dims whose lanes load 16 bytes
	// (256) or 4 bytes (100, 130, 250); a GQA group of 12 (two head chunks, the second
	// partial); a context past 32 splits of 256 positions (longer splits).
	add(4, 2, 64, 16, false, SeqSpec{Past: 37, NQ: 109})
	add(4, 1, 64, 16, false, SeqSpec{Past: 0, NQ: 64})
	add(8, 2, 128, 16, false, SeqSpec{Past: 0, NQ: 165, Extra: 1})
	add(Llama3Heads, Llama3KVHeads, Llama3HeadDim, DefaultBlockLen, false, SeqSpec{Past: 30, NQ: 70})
	pmix := len(cs)
	add(4, 2, 64, 8, false, SeqSpec{Past: 5, NQ: 40}, SeqSpec{Past: 20, NQ: 1}, SeqSpec{Past: 3, NQ: 50, Shared: 1}, SeqSpec{Past: 0, NQ: 30})
	cs[pmix].Idle, cs[pmix].Bad, cs[pmix].Slack = 2, 2, 3
	cs[pmix].Name += ",idle=2,bad=2,slack=3"
	dec(2, 1, 256, 16, 1, 1, 0, false, SeqSpec{Past: 300}, SeqSpec{Past: 20})
	dec(2, 2, 100, 16, 1, 0, 0, false, SeqSpec{Past: 70}, SeqSpec{Past: 600})
	dec(3, 1, 130, 8, 0, 1, 9, false, SeqSpec{Past: 33}, SeqSpec{Past: 290})
	dec(2, 1, 250, 16, 0, 0, 0, false, SeqSpec{Past: 17}, SeqSpec{Past: 260})
	dec(24, 2, 16, 16, 1, 1, 0, false, SeqSpec{Past: 45}, SeqSpec{Past: 700}, SeqSpec{Past: 3})
	dec(2, 1, 8, 16, 0, 0, 0, false, SeqSpec{Past: 8300}, SeqSpec{Past: 100})
	// A mixed batch (prefill chunks beside decode rows) with idle and bad rows too.
	mixed := len(cs)
	add(4, 2, 16, 4, false, SeqSpec{Past: 0, NQ: 6}, SeqSpec{Past: 9, NQ: 1, Extra: 1}, SeqSpec{Past: 5, NQ: 3})
	cs[mixed].Idle, cs[mixed].Bad, cs[mixed].Slack = 2, 3, 4
	cs[mixed].Name += ",idle=2,bad=3,slack=4"
	return cs
}

func siluCases() []Case {
	var cs []Case
	for _, s := range [][2]int{{1, 1}, {1, 5}, {5, 7}, {7, 13}, {3, 51}, {2, Llama3FFN}} {
		cs = append(cs, Case{Name: fmt.Sprintf("n=%d,dim=%d", s[0], s[1]), N: s[0], Dim: s[1]})
	}
	cs = append(cs, Case{Name: fmt.Sprintf("n=64,dim=%d", Llama3FFN), N: 64, Dim: Llama3FFN, Large: true})
	return cs
}

// GatherRows: rows from the ends of the source and repeats; the "bad" variant mixes in
// rows outside it (zeros).
func gatherCases() []Case {
	var cs []Case
	for _, s := range [][3]int{{1, 1, 1}, {5, 7, 5}, {7, 13, 11}, {3, 33, 17}, {4, 29, Llama3Dim}} {
		cs = append(cs, Case{Name: fmt.Sprintf("n=%d,src=%d,dim=%d", s[0], s[1], s[2]), N: s[0], Vocab: s[1], Dim: s[2]})
	}
	cs = append(cs, Case{Name: "n=9,src=13,dim=11,bad=3", N: 9, Vocab: 13, Dim: 11, Bad: 3})
	return cs
}

// loraCases: rows gathered over slots of different ranks (an empty slot among them),
// base rows and rows naming slots outside the stack mixed in, on odd shapes; then
// Llama-3-8B's q/o (4096→4096), gate/up (4096→14336) and down (14336→4096) shapes at
// rank 16 with 4 adapters in a batch of 16, and a prefill-sized batch.
func loraCases() []Case {
	var cs []Case
	for _, s := range []struct{ n, in, out, slots, rank, idle, bad int }{
		{1, 1, 1, 1, 1, 0, 0}, {1, 64, 17, 1, 16, 0, 0}, {7, 33, 45, 3, 5, 2, 2}, {37, 129, 96, 4, 8, 5, 3},
		{5, 300, 7, 2, 3, 0, 0}, {16, 70, 130, 5, 12, 3, 1},
	} {
		cs = append(cs, Case{Name: fmt.Sprintf("n=%d,in=%d,out=%d,slots=%d,rank=%d,idle=%d,bad=%d", s.n, s.in, s.out, s.slots, s.rank, s.idle, s.bad),
			N: s.n, In: s.in, Out: s.out, Slots: s.slots, Rank: s.rank, Idle: s.idle, Bad: s.bad})
	}
	for _, s := range []struct {
		n, in, out int
		large      bool
	}{{16, Llama3Dim, Llama3Dim, false}, {16, Llama3Dim, Llama3FFN, true}, {16, Llama3FFN, Llama3Dim, true}, {256, Llama3Dim, Llama3Dim, true}} {
		cs = append(cs, Case{Name: fmt.Sprintf("n=%d,in=%d,out=%d,slots=4,rank=16,idle=4", s.n, s.in, s.out),
			N: s.n, In: s.in, Out: s.out, Slots: 4, Rank: 16, Idle: 4, Large: s.large})
	}
	return cs
}

// Llama3InvFreq returns RoPE's inverse frequencies θ^(-2i/d) for i < headDim/2, scaled
// the Llama-3 way when llama3 is set (factor 8, low-frequency factor 1, high-frequency
// factor 4, original context 8192).
func Llama3InvFreq(headDim int, theta float64, llama3 bool) []float32 {
	const factor, lowFF, highFF, orig = 8.0, 1.0, 4.0, float64(Llama3MaxPos)
	f := make([]float32, headDim/2)
	for i := range f {
		v := 1 / math.Pow(theta, float64(2*i)/float64(headDim))
		if llama3 {
			wavelen := 2 * math.Pi / v
			switch {
			case wavelen < orig/highFF:
			case wavelen > orig/lowFF:
				v /= factor
			default:
				smooth := (orig/wavelen - lowFF) / (highFF - lowFF)
				v = (1-smooth)*v/factor + smooth*v
			}
		}
		f[i] = float32(v)
	}
	return f
}
