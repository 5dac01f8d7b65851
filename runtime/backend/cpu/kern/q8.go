package kern

import (
	"encoding/binary"
	"math"
	"unsafe"

	f16 "github.com/vireo-ai/vireo/runtime/half"
)

// Q8_0 block kernels: weights stored as GGUF/ggml Q8_0 blocks (Q8BlockBytes bytes for
// Q8Block values: an IEEE half scale d, then 32 int8 q; value = d·q), multiplied with
// activations quantized the same way on the fly (W8A8, as llama.cpp multiplies Q8_0 by
// Q8_0): each token's activations are quantized on their own, in blocks of 32 aligned
// with the weight blocks, to int8 with one scale per block (QuantizeQ8), exactly as
// llama.cpp's x86 quantize_row_q8_0 does.
//
// Numerics (the contract every entry point and every implementation level keeps, so a
// result depends only on the weight row and the token's own activations — never on
// which kernel, tile or batch computed it):
//
//   - activation block: d_a = max|x|/127 rounded to fp16 (kept as float32),
//     q = x·(127/max|x|) rounded to nearest even (all zero when max|x| = 0), as
//     kq.go's Q8_0 records: the same contract as Q4_0 … Q6_K;
//   - per (row, token), eight float32 lanes L0..L7 start at zero; for each block b in
//     increasing order, lane j takes the exact integer I = Σ_{k<4} w[32b+4j+k]·a[32b+4j+k],
//     converts it to float32 (exact: |I| < 2^17) and adds it times the product of the
//     two scales (rounded) with one fused multiply-add: L_j = fma(float32(I), d_w·d_a, L_j);
//   - the result is ((L0+L1)+(L2+L3)) + ((L4+L5)+(L6+L7)).
//
// The AVX-512 VNNI level (VPDPBUSD on 256-bit registers) follows it bit for bit; the
// portable level emulates the single-rounding FMA in float64, which can differ in the
// last bit in rare cases, so the levels agree to rounding.
//
// The prefill tile (Q8Tile4x4, 4 packed rows × 4 tokens) is bound by the two pipes that
// multiply (on the Zen 4 class EPYC this was measured on), not by loads: per block
// product it used to issue VPDPBUSD, VMULPS (d_w·d_a) and the FMA there. It now
// computes a block's 16 scale products with one 512-bit VMULPS, up to 32 blocks ahead,
// into a frame scratch, and the FMA takes its product as an embedded broadcast from
// memory: the same rounded float32 d_w·d_a, one multiplier operation fewer, 1.3x the
// tile. 512-bit tiles (two (row, token) pairs per register) measured slower: Zen 4
// splits them into 256-bit halves on the same pipes, and such a register needs two
// products, a VMULPS or a permute per register (q8_amd64.s, bench/NOTES.md).

// Q8Block is the number of values in a Q8_0 block; Q8BlockBytes its size in bytes
// (ggml's layout, runtime/quant/ggml; a test keeps them equal).
const (
	Q8Block      = 32
	Q8BlockBytes = 34
)

// HasQ8 reports whether the Q8_0 kernels run in assembly on this CPU (else they run
// in portable Go, much slower).
func HasQ8() bool { return level == levelAVX512 && Features.VNNI }

// QuantizeQ8 quantizes x (a multiple of 32 values) into qa (len(x) values) and da
// (one scale per block of 32). When ca is not nil it also gets, per block, the eight
// int32 corrections -128·(sum of each 4 consecutive values) that Q8Tile4x4 needs (8
// per block).
func QuantizeQ8(qa []int8, da []float32, ca []int32, x []float32) {
	nb := len(x) / Q8Block
	if len(x)%Q8Block != 0 || len(qa) < len(x) || len(da) < nb || (ca != nil && len(ca) < 8*nb) {
		panic("kern: QuantizeQ8 sizes")
	}
	if nb == 0 {
		return
	}
	quantizeQ8Impl(qa[:len(x)], da[:nb], x)
	if ca != nil {
		for i := range ca[:8*nb] {
			q := qa[4*i : 4*i+4]
			ca[i] = -128 * (int32(q[0]) + int32(q[1]) + int32(q[2]) + int32(q[3]))
		}
	}
}

func quantizeQ8Generic(qa []int8, da []float32, x []float32) {
	for b := range da {
		blk := x[b*Q8Block : (b+1)*Q8Block]
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		da[b] = f16.F16ToF32(f16.F32ToF16(amax / 127))
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		for i, v := range blk {
			q := math.RoundToEven(float64(v * id))
			qa[b*Q8Block+i] = int8(max(-127, min(127, q)))
		}
	}
}

// checkQ8 panics unless rows rows of nb blocks at stride ldw bytes lie in w, and the
// activation blocks do in qa and da.
func checkQ8(w []byte, ldw, rows, nb int, qa []int8, da []float32) {
	if nb <= 0 || ldw < nb*Q8BlockBytes || len(w) < (rows-1)*ldw+nb*Q8BlockBytes || len(qa) < nb*Q8Block || len(da) < nb {
		panic("kern: Q8_0 operands out of range")
	}
}

// Q8Rows4 sets out[r] to the product of weight row r (4 rows of nb blocks, ldw bytes
// apart, from w) with one quantized token (qa, da): the decode kernel.
func Q8Rows4(out *[4]float32, w []byte, ldw, nb int, qa []int8, da []float32) {
	checkQ8(w, ldw, 4, nb, qa, da)
	if HasQ8() {
		q8Rows4VNNI(out, unsafe.SliceData(w), ldw, nb, unsafe.SliceData(qa), unsafe.SliceData(da))
		return
	}
	for r := range out {
		out[r] = q8DotGeneric(w[r*ldw:], nb, qa, da)
	}
}

// Q8Pack4 prepares four weight rows (4 rows of nb blocks, ldw bytes apart, from w) for
// Q8Tile4x4, block after block: pw[(4b+r)·32:] gets block b of row r with the sign bit
// of each quant flipped (q^0x80 = q+128, what the unsigned side of VPDPBUSD takes),
// pd[4b+r] its scale as float32. Packing a row group once serves every token group.
func Q8Pack4(pw []byte, pd []float32, w []byte, ldw, nb int) {
	if nb <= 0 || len(pw) < 4*nb*Q8Block || len(pd) < 4*nb || ldw < nb*Q8BlockBytes || len(w) < 3*ldw+nb*Q8BlockBytes {
		panic("kern: Q8Pack4 sizes")
	}
	if q8Pack4Impl(pw, pd, w, ldw, nb) {
		return
	}
	for r := 0; r < 4; r++ {
		row := w[r*ldw:]
		for b := 0; b < nb; b++ {
			blk := row[b*Q8BlockBytes : (b+1)*Q8BlockBytes : (b+1)*Q8BlockBytes]
			pd[4*b+r] = f16.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
			dst := pw[(4*b+r)*Q8Block : (4*b+r+1)*Q8Block : (4*b+r+1)*Q8Block]
			for i := 0; i < Q8Block; i += 8 {
				binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(blk[2+i:])^0x8080808080808080)
			}
		}
	}
}

// Q8Tile4x4 sets out[4t+r] to the product of packed weight row r (Q8Pack4) with token
// t of four quantized tokens: qa[t·lda:] with their corrections ca[t·ldc:]
// (QuantizeQ8), and their scales interleaved, da4[4b+t] (Q8Interleave4). Bit-identical
// to Q8Rows4 per token, so a token's result does not depend on the tokens beside it.
func Q8Tile4x4(out *[16]float32, pw []byte, pd []float32, nb int, qa []int8, lda int, da4 []float32, ca []int32, ldc int) {
	if nb <= 0 || len(pw) < 4*nb*Q8Block || len(pd) < 4*nb || lda < nb*Q8Block || ldc < 8*nb ||
		len(qa) < 3*lda+nb*Q8Block || len(da4) < 4*nb || len(ca) < 3*ldc+8*nb {
		panic("kern: Q8Tile4x4 operands out of range")
	}
	if HasQ8() {
		q8Tile4x4VNNI(out, unsafe.SliceData(pw), unsafe.SliceData(pd), nb, unsafe.SliceData(qa), lda, unsafe.SliceData(da4), unsafe.SliceData(ca), ldc)
		return
	}
	var da [4][]float32
	for t := range da {
		da[t] = make([]float32, nb)
		for b := range da[t] {
			da[t][b] = da4[4*b+t]
		}
	}
	for t := 0; t < 4; t++ {
		for r := 0; r < 4; r++ {
			out[4*t+r] = q8DotPackedGeneric(pw[r*Q8Block:], pd[r:], nb, qa[t*lda:], da[t])
		}
	}
}

// Q8Interleave4 writes the scales of four quantized tokens (da[t·ldd:], nb each) block
// by block into da4 (da4[4b+t]), as Q8Tile4x4 takes them.
func Q8Interleave4(da4 []float32, da []float32, ldd, nb int) {
	for t := 0; t < 4; t++ {
		for b := 0; b < nb; b++ {
			da4[4*b+t] = da[t*ldd+b]
		}
	}
}

// q8DotPackedGeneric is q8DotGeneric on a packed row (blocks 4·32 bytes apart).
func q8DotPackedGeneric(pw []byte, pd []float32, nb int, qa []int8, da []float32) float32 {
	var l [8]float32
	for b := 0; b < nb; b++ {
		a := qa[b*Q8Block : (b+1)*Q8Block]
		q := pw[4*b*Q8Block : 4*b*Q8Block+Q8Block]
		for j := 0; j < 8; j++ {
			var s int32
			for k := 4 * j; k < 4*j+4; k++ {
				s += (int32(q[k]) - 128) * int32(a[k])
			}
			l[j] = float32(math.FMA(float64(s), float64(pd[4*b]*da[b]), float64(l[j])))
		}
	}
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

// q8DotGeneric is one (row, token) product following the contract, with the FMA
// emulated in float64.
func q8DotGeneric(w []byte, nb int, qa []int8, da []float32) float32 {
	var l [8]float32
	for b := 0; b < nb; b++ {
		blk := w[b*Q8BlockBytes : (b+1)*Q8BlockBytes]
		dw := f16.F16ToF32(uint16(blk[0]) | uint16(blk[1])<<8)
		q := blk[2:]
		a := qa[b*Q8Block : (b+1)*Q8Block]
		for j := 0; j < 8; j++ {
			var s int32
			for k := 4 * j; k < 4*j+4; k++ {
				s += int32(int8(q[k])) * int32(a[k])
			}
			l[j] = float32(math.FMA(float64(s), float64(dw*da[b]), float64(l[j])))
		}
	}
	return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}
