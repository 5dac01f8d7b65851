package kern

import (
	"encoding/binary"
	"math"
	"unsafe"

	f16 "github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// Block-quantized weights of GGUF's 4-, 5- and 6-bit types, multiplied as stored (no
// expansion to floats) with activations quantized on the fly, as llama.cpp's CPU
// backend multiplies them: Q8_K activations for the K-quants (Q2_K … Q6_K), Q8_0
// activations for Q4_0 and Q5_0, and Q8_1 (Q8_0 with the block's sum) for Q4_1 and
// Q5_1. (Q8_0 weights are q8.go's.) The weight layouts are GGUF's, exactly as
// the file stores them; runtime/quant/ggml documents them and dequantizes them
// bit-exactly.
//
// # Activations
//
// A token's activations (n values, a multiple of the format's ActBlock) become
// n/ActBlock records of ActRecord bytes (QFormat.Quantize):
//
//   - K-quants, 320-byte records per 256 values: ggml's quantize_row_q8_K_ref exactly
//     (max = the value of largest magnitude, first if tied; iscale = -127/max;
//     q = min(127, nearest-even(iscale·x)); d = 1/iscale; all zero when max is 0).
//     @0 the 256 quants (Q4_K and Q5_K store the 32-value groups in the order 0 2 1 3 4
//     6 5 7, the order their weight nibbles come in 64-byte loads); @256 d (float32);
//     @288 the group sums the type needs: Q4_K and Q5_K eight int32 sums of 32, the
//     others Q8_K's sixteen int16 sums of 16.
//   - Q4_0, Q4_1, Q5_0, Q5_1, 72-byte records per 32 values: llama.cpp's x86
//     quantize_row_q8_0/q8_1 exactly (d = fp16(max|x|/127), q = nearest-even(x·(127/max|x|)),
//     all zero when max|x| is 0; Q8_1's s = fp16(max|x|/127 · Σq)); @0 the 32 quants;
//     @32 eight 4-byte lane terms c_j (below); @64 d (float32, exactly the fp16 value).
//
// # Numerics (the contract every level keeps bit for bit)
//
// A (weight row, token) product keeps eight float32 lanes L0..L7, zero at the start.
// For each weight block in order, integer lane sums are formed exactly, lane j taking
// positions p with p%32/4 == j (the four bytes VPDPBUSD/VPMADDWD sum into int32 lane j
// of a 32-byte group), and folded in with single-rounding fused multiply-adds:
//
//   - Q4_0, Q5_0: I_j = c_j + Σ q_p·a_p over the lane's four positions, q the unsigned
//     stored level and c_j = -8·Σa_p (Q4_0) or -16·Σa_p (Q5_0), i.e. Σ (q-8)·a;
//     L_j = fma(float32(I_j), d·d_a, L_j).
//   - Q4_1, Q5_1: I_j = Σ q_p·a_p; L_j = fma(float32(I_j), d·d_a, L_j), then
//     L_j = fma(c_j, m, L_j) with c_0 = s (the activation block's rounded sum, as
//     float32) and c_1..c_7 = 0.
//   - Q4_K, Q5_K (sub-blocks of 32 with scale sc_s and min m_s): I_j = Σ sc·q·a over
//     the lane's 32 positions of the super-block; M_j = m_j·(Σ a over sub-block j);
//     L_j = fma(float32(I_j), d·d_a, L_j), then L_j = fma(-float32(M_j), dmin·d_a, L_j).
//   - Q2_K (sub-blocks of 16, 4-bit scale and min): I_j as above with q in 0..3;
//     M_j = m_{2j}·B_{2j} + m_{2j+1}·B_{2j+1} (B the Q8_K sums of 16); the same two FMAs.
//   - Q3_K, Q6_K (sub-blocks of 16, signed scales, levels q-4 and q-32): with the
//     unsigned level u (0..7, 0..63), T_j = Σ sc·u·a over the lane's positions −
//     off·(sc_{2j}·B_{2j} + sc_{2j+1}·B_{2j+1}), off 4 or 32 (so Σ_j T_j is the exact
//     integer product); L_j = fma(float32(T_j), d·d_a, L_j).
//
// d, dmin and m are the weight block's fp16 fields as float32, d_a the activation
// record's scale; every product of two float32 scales is rounded to float32. The result
// is ((L0+L1)+(L2+L3)) + ((L4+L5)+(L6+L7)). Every kernel (the one-row decode kernels
// behind Dot and Rows4, the 4x4 tiles, every implementation level) computes exactly
// this, so a token's result depends only on the weight row and its own activations. All
// integer sums fit in int32. The portable level rounds its FMAs exactly (round-to-odd in
// float64), so it is bit-identical to the assembly.
//
// # Implementations
//
// Assembly at two levels: AVX2 (kq_avx2_amd64.s: 256-bit registers, one 32-value group
// per step, VPMADDUBSW then VPMADDWD with the group's scales) and AVX-512 VNNI
// (kq_vnni_amd64.s: 512-bit registers, two groups per step, VPMADDUBSW then VPDPWSSD;
// the activation quantizers; 4x4 tiles for the K-quants Q2_K … Q6_K, which unpack a
// weight super-block once for four tokens, and for Q4_0, Q4_1, Q5_0 and Q5_1
// (kq_ltile_amd64.go), which unpack each row's 32-value block once into a 256-bit
// register for four tokens and take the sixteen (row, token) scale products d·d_a from
// one 16-lane multiply per block, computed 32 blocks ahead into the frame; at the other
// levels Tile4x4 runs Rows4 per token, unpacking every
// block again for each token). The decode kernels read one weight row from start to end:
// rows streamed one after another keep the hardware prefetchers fed, where four
// interleaved rows got 40-60% of the DRAM bandwidth on this machine. The exception are
// the legacy types at AVX-512 VNNI, whose one-row kernels wait on FMA latency (one or,
// with a min, two dependent FMAs per 32 values and lane): their Rows4 runs a four-row
// kernel (four independent chains) that prefetches the next four rows in order, so the
// memory is still read ahead sequentially (decode/dram 1.4-1.8x the one-row kernel on
// this machine: BenchmarkQKernels decode/dram against decode/dram-row1). Q4_K's Rows4
// does the same (four rows sharing the activation loads, the next four prefetched in
// order: 1.05-1.16x its one-row kernel, BenchmarkQDecode); the Q4_K, Q5_K and Q6_K
// one-row kernels prefetch 4 KiB ahead in software; Q4_K's and Q5_K's unpack each
// super-block's scales and mins in general-purpose registers (idle in the vector loop)
// rather than with vector shuffles, and Q6_K's assembles its 6-bit levels with GFNI
// affine transforms where the CPU has GFNI (q6kRow1GFNI; q6kRow1VNNI otherwise), all
// integer and data-movement steps under the same float steps. Levels and kernels are
// checked against the portable code bit for bit (kq_test.go; kq_dec_linux_amd64_test.go
// for the Q6_K kernel a CPU does not register), and the portable code against ggml's
// dequantization.

// QFormat is one weight type's kernels.
type QFormat struct {
	Name       string
	Block      int // values per weight block
	BlockBytes int // bytes per weight block
	ActBlock   int // values per activation record
	ActRecord  int // bytes per activation record

	quant func(rec []byte, x []float32, n int) // n values into n/ActBlock records
	dot   func(w []byte, nb int, act []byte) float32
	row1  [3]row1Func  // one row x one token per level (nil: the portable code)
	rows4 [3]rows4Func // 4 rows x one token per level (nil: row1 per row)
	tile  [3]tileFunc  // 4 rows x 4 tokens per level (nil: Rows4 per token)
	typ   ggml.Type
}

// row1Func computes one row times one token into *out.
type row1Func func(out *float32, w *byte, nb int, act *byte)

// rows4Func computes 4 rows (ldw apart) times one token: out[r].
type rows4Func func(out *[4]float32, w *byte, ldw, nb int, act *byte)

// tileFunc computes 4 rows (ldw apart) times 4 tokens (lda bytes apart): out[4t+r].
type tileFunc func(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

// Activation record sizes.
const (
	qkActRecord = 320 // per 256 values
	qlActRecord = 72  // per 32 values
)

// ActBytes is the size of one token's quantized activations for rows of n values.
func (f *QFormat) ActBytes(n int) int { return n / f.ActBlock * f.ActRecord }

// RowBytes is the size of a weight row of n values.
func (f *QFormat) RowBytes(n int) int { return n / f.Block * f.BlockBytes }

// Quantize quantizes one token's activations x (a multiple of ActBlock values) into
// act (at least ActBytes(len(x)) bytes).
func (f *QFormat) Quantize(act []byte, x []float32) {
	if len(x)%f.ActBlock != 0 || len(act) < f.ActBytes(len(x)) {
		panic("kern: QFormat.Quantize sizes")
	}
	if len(x) == 0 {
		return
	}
	f.quant(act, x, len(x))
}

func (f *QFormat) check(w []byte, ldw, rows, nb int, act []byte) {
	if nb <= 0 || ldw < nb*f.BlockBytes || len(w) < (rows-1)*ldw+nb*f.BlockBytes ||
		len(act) < nb*f.Block/f.ActBlock*f.ActRecord {
		panic("kern: " + f.Name + " operands out of range")
	}
}

// Dot is one weight row (nb blocks) times one token's quantized activations.
func (f *QFormat) Dot(w []byte, nb int, act []byte) float32 {
	f.check(w, nb*f.BlockBytes, 1, nb, act)
	if k := f.row1[qLevel()]; k != nil {
		var out float32
		k(&out, &w[0], nb, unsafe.SliceData(act))
		return out
	}
	return f.dot(w, nb, act)
}

// Rows4 sets out[r] to weight row r (4 rows of nb blocks, ldw bytes apart, from w)
// times one token's quantized activations: a four-row kernel where the format has one
// (the legacy types with AVX-512 VNNI), else the rows one after another (the one-row
// decode kernel).
func (f *QFormat) Rows4(out *[4]float32, w []byte, ldw, nb int, act []byte) {
	f.check(w, ldw, 4, nb, act)
	l := qLevel()
	if k := f.rows4[l]; k != nil {
		k(out, unsafe.SliceData(w), ldw, nb, unsafe.SliceData(act))
		return
	}
	if k := f.row1[l]; k != nil {
		for r := range out {
			k(&out[r], &w[r*ldw], nb, unsafe.SliceData(act))
		}
		return
	}
	for r := range out {
		out[r] = f.dot(w[r*ldw:], nb, act)
	}
}

// Tile4x4 sets out[4t+r] to weight row r times token t of four tokens whose quantized
// activations lie lda bytes apart in act. Bit-identical to Rows4 per token.
func (f *QFormat) Tile4x4(out *[16]float32, w []byte, ldw, nb int, act []byte, lda int) {
	need := nb * f.Block / f.ActBlock * f.ActRecord
	f.check(w, ldw, 4, nb, act)
	if lda < need || len(act) < 3*lda+need {
		panic("kern: " + f.Name + " tile activations out of range")
	}
	if k := f.tile[qLevel()]; k != nil {
		k(out, unsafe.SliceData(w), ldw, nb, unsafe.SliceData(act), lda)
		return
	}
	var r4 [4]float32
	for t := 0; t < 4; t++ {
		f.Rows4(&r4, w, ldw, nb, act[t*lda:])
		copy(out[4*t:4*t+4], r4[:])
	}
}

// DequantizeRow expands one weight row of len(dst) values (ggml's dequantization,
// bit-exact).
func (f *QFormat) DequantizeRow(dst []float32, row []byte) {
	if len(dst)%f.Block != 0 || len(row) < f.RowBytes(len(dst)) {
		panic("kern: " + f.Name + " dequantize sizes")
	}
	if err := ggml.Dequantize(f.typ, dst, row[:f.RowBytes(len(dst))]); err != nil {
		panic("kern: " + err.Error())
	}
}

// Implementation levels of the block kernels: qLevelGo, qLevelAVX2 (AVX2 and FMA:
// VPMADDUBSW/VPMADDWD on 256-bit registers) and qLevelVNNI (AVX-512 BW/VL and VNNI:
// 512-bit registers, VPDPWSSD/VPDPBUSD).
const (
	qLevelGo = iota
	qLevelAVX2
	qLevelVNNI
)

func qLevel() int {
	switch {
	case level == levelAVX512 && Features.VNNI:
		return qLevelVNNI
	case level >= levelAVX2:
		return qLevelAVX2
	}
	return qLevelGo
}

// QLevel names the block kernels' implementation in use ("avx512-vnni", "avx2", "go").
func QLevel() string {
	return [...]string{"go", "avx2", "avx512-vnni"}[qLevel()]
}

// The formats.
var (
	QQ4_0 = &QFormat{Name: "Q4_0", Block: 32, BlockBytes: 18, ActBlock: 32, ActRecord: qlActRecord,
		quant: quantLegacy(-8), dot: dotQ4_0, typ: ggml.Q4_0}
	QQ4_1 = &QFormat{Name: "Q4_1", Block: 32, BlockBytes: 20, ActBlock: 32, ActRecord: qlActRecord,
		quant: quantLegacy(0), dot: dotQ4_1, typ: ggml.Q4_1}
	QQ5_0 = &QFormat{Name: "Q5_0", Block: 32, BlockBytes: 22, ActBlock: 32, ActRecord: qlActRecord,
		quant: quantLegacy(-16), dot: dotQ5_0, typ: ggml.Q5_0}
	QQ5_1 = &QFormat{Name: "Q5_1", Block: 32, BlockBytes: 24, ActBlock: 32, ActRecord: qlActRecord,
		quant: quantLegacy(0), dot: dotQ5_1, typ: ggml.Q5_1}
	QQ2_K = &QFormat{Name: "Q2_K", Block: 256, BlockBytes: 84, ActBlock: 256, ActRecord: qkActRecord,
		quant: quantQ8K(false), dot: dotQ2K, typ: ggml.Q2_K}
	QQ3_K = &QFormat{Name: "Q3_K", Block: 256, BlockBytes: 110, ActBlock: 256, ActRecord: qkActRecord,
		quant: quantQ8K(false), dot: dotQ3K, typ: ggml.Q3_K}
	QQ4_K = &QFormat{Name: "Q4_K", Block: 256, BlockBytes: 144, ActBlock: 256, ActRecord: qkActRecord,
		quant: quantQ8K(true), dot: dotQ4K, typ: ggml.Q4_K}
	QQ5_K = &QFormat{Name: "Q5_K", Block: 256, BlockBytes: 176, ActBlock: 256, ActRecord: qkActRecord,
		quant: quantQ8K(true), dot: dotQ5K, typ: ggml.Q5_K}
	QQ6_K = &QFormat{Name: "Q6_K", Block: 256, BlockBytes: 210, ActBlock: 256, ActRecord: qkActRecord,
		quant: quantQ8K(false), dot: dotQ6K, typ: ggml.Q6_K}
)

// QFormats lists every format.
var QFormats = []*QFormat{QQ4_0, QQ4_1, QQ5_0, QQ5_1, QQ2_K, QQ3_K, QQ4_K, QQ5_K, QQ6_K}

// Field access.

func le16(b []byte) uint16          { return binary.LittleEndian.Uint16(b) }
func half(b []byte) float32         { return halfToF32(le16(b)) }
func f32at(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[i:])) }
func i32at(b []byte, i int) int32   { return int32(binary.LittleEndian.Uint32(b[i:])) }
func i16at(b []byte, i int) int32   { return int32(int16(binary.LittleEndian.Uint16(b[i:]))) }

// halfToF32 converts IEEE half bits to float32 (exact).
func halfToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// fmaF32 is a·b+c rounded once to float32: the product and sum are exact in float64
// plus an error term, rounded to odd in float64 and then to nearest float32 (which is
// correct rounding, float64 having more than 24+1 bits).
func fmaF32(a, b, c float32) float32 {
	p := float64(float64(a) * float64(b)) // exact: 24+24 bits
	cc := float64(c)
	s := p + cc
	if math.IsInf(s, 0) || math.IsNaN(s) {
		return float32(s)
	}
	bb := s - p
	e := (p - (s - bb)) + (cc - bb)
	if e != 0 {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

func reduce8(l *[8]float32) float32 {
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// Activation quantization.

// quantLegacy quantizes into 72-byte records (llama.cpp's Q8_0, or Q8_1 with corr 0)
// and the lane terms: corr·Σa over each lane as int32 (Q4_0: -8, Q5_0: -16), or, with
// corr 0, Q8_1's s in lane 0.
func quantLegacy(corr int32) func(act []byte, x []float32, n int) {
	return func(act []byte, x []float32, n int) {
		if quantQ8_0Fast(act, x[:n], corr) {
			return
		}
		for b := 0; b < n/32; b++ {
			quantQ8_0Record(act[b*qlActRecord:(b+1)*qlActRecord], x[32*b:32*b+32], corr)
		}
	}
}

func quantQ8_0Record(rec []byte, x []float32, corr int32) {
	var amax float32
	for _, v := range x[:32] {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if amax != 0 {
		id = 127 / amax
	}
	var sum int32
	for i, v := range x[:32] {
		q := int32(math.RoundToEven(float64(v * id)))
		rec[i] = byte(int8(q))
		sum += q
	}
	for j := 0; j < 8; j++ {
		var c uint32
		if corr != 0 {
			s := int32(int8(rec[4*j])) + int32(int8(rec[4*j+1])) + int32(int8(rec[4*j+2])) + int32(int8(rec[4*j+3]))
			c = uint32(corr * s)
		} else if j == 0 {
			c = math.Float32bits(halfToF32(f16.F32ToF16(d * float32(sum))))
		}
		binary.LittleEndian.PutUint32(rec[32+4*j:], c)
	}
	binary.LittleEndian.PutUint32(rec[64:], math.Float32bits(halfToF32(f16.F32ToF16(d))))
	binary.LittleEndian.PutUint32(rec[68:], 0)
}

// q4kChunk is where sub-block s of a Q4_K/Q5_K super-block lies in the activation
// record (in units of 32 bytes): the order 0 2 1 3 4 6 5 7.
var q4kChunk = [8]int{0, 2, 1, 3, 4, 6, 5, 7}

// nearestEven rounds to the nearest integer, ties to even, as ggml's nearest_int
// (|f| < 2^22).
func nearestEven(f float32) int32 {
	v := float32(f) + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// quantQ8K quantizes into 320-byte records (see the package comment); perm lays the
// quants out in Q4_K order with eight int32 sums of 32, else natural order with
// sixteen int16 sums of 16.
func quantQ8K(perm bool) func(act []byte, x []float32, n int) {
	return func(act []byte, x []float32, n int) {
		for b := 0; b < n/256; b++ {
			rec := act[b*qkActRecord : (b+1)*qkActRecord]
			if !quantQ8KFast(rec, x[256*b:256*b+256]) {
				quantQ8KRecord(rec, x[256*b:256*b+256], perm)
				continue
			}
			if perm {
				permuteQ4K(rec)
			}
		}
	}
}

// permuteQ4K turns a record in natural order with sixteen int16 sums into Q4_K's order
// with eight int32 sums of 32.
func permuteQ4K(rec []byte) {
	var q [256]byte
	copy(q[:], rec[:256])
	var s32 [8]int32
	for s := range s32 {
		s32[s] = bsum16(rec, 2*s) + bsum16(rec, 2*s+1)
	}
	for s := 0; s < 8; s++ {
		copy(rec[32*q4kChunk[s]:32*q4kChunk[s]+32], q[32*s:32*s+32])
		binary.LittleEndian.PutUint32(rec[288+4*s:], uint32(s32[s]))
	}
}

func quantQ8KRecord(rec []byte, x []float32, perm bool) {
	var q [256]int8
	var amax, mx float32
	for _, v := range x[:256] {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	var d float32
	if amax != 0 {
		iscale := -127 / mx
		for j, v := range x[:256] {
			q[j] = int8(min(127, nearestEven(float32(iscale*v))))
		}
		d = 1 / iscale
	}
	if perm {
		for s := 0; s < 8; s++ {
			c := q4kChunk[s]
			var sum int32
			for l := 0; l < 32; l++ {
				rec[32*c+l] = byte(q[32*s+l])
				sum += int32(q[32*s+l])
			}
			binary.LittleEndian.PutUint32(rec[288+4*s:], uint32(sum))
		}
	} else {
		for i, v := range q {
			rec[i] = byte(v)
		}
		for g := 0; g < 16; g++ {
			var sum int32
			for _, v := range q[16*g : 16*g+16] {
				sum += int32(v)
			}
			binary.LittleEndian.PutUint16(rec[288+2*g:], uint16(int16(sum)))
		}
	}
	binary.LittleEndian.PutUint32(rec[256:], math.Float32bits(d))
	clear(rec[260:288])
}

// The portable kernels: the contract, literally.

// dotLegacy runs the legacy-type contract; level(blk, p) is the unsigned stored level
// of position p of a block, and hasMin says whether the type has a min (Q4_1, Q5_1).
func dotLegacy(w []byte, nb, bsz int, act []byte, level func(blk []byte, p int) int32, hasMin bool) float32 {
	var l [8]float32
	for b := 0; b < nb; b++ {
		blk := w[b*bsz : (b+1)*bsz]
		rec := act[b*qlActRecord : (b+1)*qlActRecord]
		da := f32at(rec, 64)
		dd := half(blk) * da
		m := half(blk[2:])
		for j := 0; j < 8; j++ {
			var s int32
			if !hasMin {
				s = i32at(rec, 32+4*j)
			}
			for p := 4 * j; p < 4*j+4; p++ {
				s += level(blk, p) * int32(int8(rec[p]))
			}
			l[j] = fmaF32(float32(s), dd, l[j])
			if hasMin {
				l[j] = fmaF32(f32at(rec, 32+4*j), m, l[j])
			}
		}
	}
	return reduce8(&l)
}

// nibble is position p of 32 values packed as legacy nibbles at qs.
func nibble(qs []byte, p int) int32 {
	if p < 16 {
		return int32(qs[p] & 15)
	}
	return int32(qs[p-16] >> 4)
}

func dotQ4_0(w []byte, nb int, act []byte) float32 {
	return dotLegacy(w, nb, 18, act, func(blk []byte, p int) int32 { return nibble(blk[2:], p) }, false)
}

func dotQ4_1(w []byte, nb int, act []byte) float32 {
	return dotLegacy(w, nb, 20, act, func(blk []byte, p int) int32 { return nibble(blk[4:], p) }, true)
}

func q5Level(qh uint32, qs []byte, p int) int32 {
	return nibble(qs, p) | int32(qh>>p&1)<<4
}

func dotQ5_0(w []byte, nb int, act []byte) float32 {
	return dotLegacy(w, nb, 22, act, func(blk []byte, p int) int32 {
		return q5Level(binary.LittleEndian.Uint32(blk[2:]), blk[6:], p)
	}, false)
}

func dotQ5_1(w []byte, nb int, act []byte) float32 {
	return dotLegacy(w, nb, 24, act, func(blk []byte, p int) int32 {
		return q5Level(binary.LittleEndian.Uint32(blk[4:]), blk[8:], p)
	}, true)
}

// kBlock is one K-quant super-block unpacked for the portable kernels: the unsigned
// level of each value, the scale of each value's sub-block, and the lane terms that do
// not depend on the levels.
type kBlock struct {
	u  [256]int32
	sc [256]int32
}

// dotK runs the K-quant contract. unpack fills the levels and scales of one block and
// returns d, dmin (0 without a min), and the per-lane min or offset terms given the
// activation record (to subtract).
func dotK(w []byte, nb, bsz int, act []byte, perm, hasMin bool, unpack func(k *kBlock, blk, rec []byte) (d, dmin float32, sub [8]int32)) float32 {
	var l [8]float32
	var k kBlock
	for b := 0; b < nb; b++ {
		blk := w[b*bsz : (b+1)*bsz]
		rec := act[b*qkActRecord : (b+1)*qkActRecord]
		da := f32at(rec, 256)
		d, dmin, sub := unpack(&k, blk, rec)
		var I [8]int32
		for i := 0; i < 256; i++ {
			pos := i
			if perm {
				pos = 32*q4kChunk[i/32] + i%32
			}
			I[i%32/4] += k.sc[i] * k.u[i] * int32(int8(rec[pos]))
		}
		dd := d * da
		if !hasMin { // Q3_K, Q6_K: the offsets are inside T_j
			for j := range l {
				l[j] = fmaF32(float32(I[j]-sub[j]), dd, l[j])
			}
			continue
		}
		dm := dmin * da
		for j := range l {
			l[j] = fmaF32(float32(I[j]), dd, l[j])
			l[j] = fmaF32(-float32(sub[j]), dm, l[j])
		}
	}
	return reduce8(&l)
}

// bsum16 is Q8_K's sum of the 16 quants of group g (records in natural order).
func bsum16(rec []byte, g int) int32 { return i16at(rec, 288+2*g) }

func dotQ2K(w []byte, nb int, act []byte) float32 {
	return dotK(w, nb, 84, act, false, true, func(k *kBlock, blk, rec []byte) (float32, float32, [8]int32) {
		scales, qs := blk[0:16], blk[16:80]
		for i := 0; i < 256; i++ {
			half, j, l := i/128, i%128/32, i%32
			k.u[i] = int32(qs[32*half+l] >> (2 * j) & 3)
			k.sc[i] = int32(scales[i/16] & 15)
		}
		var sub [8]int32
		for j := 0; j < 8; j++ {
			sub[j] = int32(scales[2*j]>>4)*bsum16(rec, 2*j) + int32(scales[2*j+1]>>4)*bsum16(rec, 2*j+1)
		}
		return half(blk[80:]), half(blk[82:]), sub
	})
}

// q3kScales unpacks Q3_K's sixteen 6-bit scales (unsigned, before the -32).
func q3kScales(s []byte) (sc [16]int32) {
	for k := 0; k < 16; k++ {
		var low int32
		if k < 8 {
			low = int32(s[k] & 15)
		} else {
			low = int32(s[k-8] >> 4)
		}
		hi := int32(s[8+k%4] >> (2 * (k / 4)) & 3)
		sc[k] = low | hi<<4
	}
	return sc
}

func dotQ3K(w []byte, nb int, act []byte) float32 {
	return dotK(w, nb, 110, act, false, false, func(k *kBlock, blk, rec []byte) (float32, float32, [8]int32) {
		hmask, qs := blk[0:32], blk[32:96]
		sc := q3kScales(blk[96:108])
		for i := 0; i < 256; i++ {
			half, j, l := i/128, i%128/32, i%32
			q := int32(qs[32*half+l] >> (2 * j) & 3)
			h := int32(hmask[l] >> (4*half + j) & 1)
			k.u[i] = q + 4*h
			k.sc[i] = sc[i/16] - 32
		}
		var sub [8]int32
		for j := 0; j < 8; j++ {
			sub[j] = 4 * ((sc[2*j]-32)*bsum16(rec, 2*j) + (sc[2*j+1]-32)*bsum16(rec, 2*j+1))
		}
		return half(blk[108:]), 0, sub
	})
}

// scaleMinK4 unpacks sub-block s's 6-bit scale and min (Q4_K, Q5_K).
func scaleMinK4(s int, q []byte) (sc, m int32) {
	if s < 4 {
		return int32(q[s] & 63), int32(q[s+4] & 63)
	}
	return int32(q[s+4]&15 | q[s-4]>>6<<4), int32(q[s+4]>>4 | q[s]>>6<<4)
}

func unpackQ45K(k *kBlock, blk, rec []byte, qh []byte) (float32, float32, [8]int32) {
	scales, qs := blk[4:16], blk[16:144]
	if qh != nil {
		qs = blk[48:176]
	}
	var sub [8]int32
	for s := 0; s < 8; s++ {
		sc, m := scaleMinK4(s, scales)
		sub[s] = m * i32at(rec, 288+4*s)
		for l := 0; l < 32; l++ {
			b := qs[32*(s/2)+l]
			q := int32(b & 15)
			if s%2 == 1 {
				q = int32(b >> 4)
			}
			if qh != nil {
				q |= int32(qh[l]>>s&1) << 4
			}
			k.u[32*s+l], k.sc[32*s+l] = q, sc
		}
	}
	return half(blk), half(blk[2:]), sub
}

func dotQ4K(w []byte, nb int, act []byte) float32 {
	return dotK(w, nb, 144, act, true, true, func(k *kBlock, blk, rec []byte) (float32, float32, [8]int32) {
		return unpackQ45K(k, blk, rec, nil)
	})
}

func dotQ5K(w []byte, nb int, act []byte) float32 {
	return dotK(w, nb, 176, act, true, true, func(k *kBlock, blk, rec []byte) (float32, float32, [8]int32) {
		return unpackQ45K(k, blk, rec, blk[16:48])
	})
}

func dotQ6K(w []byte, nb int, act []byte) float32 {
	return dotK(w, nb, 210, act, false, false, func(k *kBlock, blk, rec []byte) (float32, float32, [8]int32) {
		ql, qh, scales := blk[0:128], blk[128:192], blk[192:208]
		for i := 0; i < 256; i++ {
			half, g, l := i/128, i%128/32, i%32
			lb := ql[64*half+32*(g%2)+l]
			low := int32(lb & 15)
			if g >= 2 {
				low = int32(lb >> 4)
			}
			k.u[i] = low | int32(qh[32*half+l]>>(2*g)&3)<<4
			k.sc[i] = int32(int8(scales[i/16]))
		}
		var sub [8]int32
		for j := 0; j < 8; j++ {
			sub[j] = 32 * (int32(int8(scales[2*j]))*bsum16(rec, 2*j) + int32(int8(scales[2*j+1]))*bsum16(rec, 2*j+1))
		}
		return half(blk[208:]), 0, sub
	})
}
