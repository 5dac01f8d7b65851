// Package ggml implements the tensor element types of GGML and GGUF files: their block
// layouts, dequantization bit-exact to ggml's reference (dequantize_row_<t>), and the
// reference quantizers (quantize_row_<t>_ref, what llama-quantize runs without an
// importance matrix), in plain Go.
//
// A row of n values of a block type is n/BlockSize consecutive blocks of BlockBytes
// bytes; blocks are independent. All multi-byte fields are little-endian and "fp16" is
// IEEE half. One file per type family documents its layout next to the code:
// q4.go (Q4_0, Q4_1), q5.go (Q5_0, Q5_1), q8.go (Q8_0, Q8_K), q2k.go, q3k.go,
// q4k.go (Q4_K and the 6-bit scale/min packing Q5_K shares), q5k.go, q6k.go;
// kquants.go holds the scale searches the K-quantizers share.
//
// Arithmetic follows the reference step by step in float32, each step rounded as ggml
// rounds it: products are wrapped in float32(...) wherever Go could otherwise fuse a
// multiply and an add into one FMA (the Go spec allows that; an explicit conversion
// forbids it), so results do not depend on GOAMD64 or the architecture.
package ggml

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/half"
)

// Type is a GGML tensor type id, as stored in a GGUF tensor info.
type Type uint32

// Type ids (ggml.h). Only the ones with a layout here (Known) can be read or written.
const (
	F32  Type = 0
	F16  Type = 1
	Q4_0 Type = 2
	Q4_1 Type = 3
	Q5_0 Type = 6
	Q5_1 Type = 7
	Q8_0 Type = 8
	Q8_1 Type = 9
	Q2_K Type = 10
	Q3_K Type = 11
	Q4_K Type = 12
	Q5_K Type = 13
	Q6_K Type = 14
	Q8_K Type = 15
	BF16 Type = 30
)

// QK_K is the number of values in a K-quant super-block.
const QK_K = 256

var names = map[Type]string{
	0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1",
	10: "Q2_K", 11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K",
	16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S",
	22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
	29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
}

// String is ggml's name of the type ("Q4_K"), or "unknown" for an id ggml never had.
func (t Type) String() string {
	if s, ok := names[t]; ok {
		return s
	}
	return "unknown"
}

// ParseType returns the type ggml names s (case-insensitive: "q4_k" is Q4_K).
func ParseType(s string) (Type, bool) {
	for t, n := range names {
		if equalFold(n, s) {
			return t, true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// layout is what a type needs: values and bytes per block, and the per-block codecs.
type layout struct {
	block, bytes int
	dequant      func(y []float32, b []byte) // one block: len(y) == block, len(b) == bytes
	quant        func(b []byte, x []float32) // one block
}

var layouts = map[Type]layout{
	F32:  {1, 4, dequantF32, quantF32},
	F16:  {1, 2, dequantF16, quantF16},
	BF16: {1, 2, dequantBF16, quantBF16},
	Q4_0: {32, 18, dequantQ4_0, quantQ4_0},
	Q4_1: {32, 20, dequantQ4_1, quantQ4_1},
	Q5_0: {32, 22, dequantQ5_0, quantQ5_0},
	Q5_1: {32, 24, dequantQ5_1, quantQ5_1},
	Q8_0: {32, 34, dequantQ8_0, quantQ8_0},
	Q2_K: {QK_K, 84, dequantQ2_K, quantQ2_K},
	Q3_K: {QK_K, 110, dequantQ3_K, quantQ3_K},
	Q4_K: {QK_K, 144, dequantQ4_K, quantQ4_K},
	Q5_K: {QK_K, 176, dequantQ5_K, quantQ5_K},
	Q6_K: {QK_K, 210, dequantQ6_K, quantQ6_K},
	Q8_K: {QK_K, 292, dequantQ8_K, quantQ8_K},
}

// Known reports whether the type has a layout here (F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, Q2_K … Q6_K and Q8_K).
func (t Type) Known() bool { _, ok := layouts[t]; return ok }

// Quantized reports a known block-quantized type (not F32, F16 or BF16).
func (t Type) Quantized() bool { return t.Known() && layouts[t].block > 1 }

// BlockSize is the number of values in one block (1 for float types, 0 if unknown).
func (t Type) BlockSize() int { return layouts[t].block }

// BlockBytes is the size of one block in bytes (0 if unknown).
func (t Type) BlockBytes() int { return layouts[t].bytes }

// RowBytes is the size of a row of n values, or an error when the type is unknown or n
// is not a whole number of blocks.
func (t Type) RowBytes(n int) (int, error) {
	l, ok := layouts[t]
	if !ok {
		return 0, fmt.Errorf("ggml: type %s has no known layout", t)
	}
	if n < 0 || n%l.block != 0 {
		return 0, fmt.Errorf("ggml: %s needs rows of a multiple of %d values, got %d", t, l.block, n)
	}
	if n/l.block > math.MaxInt/l.bytes {
		return 0, fmt.Errorf("ggml: %d values of %s overflow", n, t)
	}
	return n / l.block * l.bytes, nil
}

// Dequantize decodes src, whole blocks of type t, into dst: len(dst) values, a multiple
// of the block size, from exactly RowBytes(len(dst)) bytes.
func Dequantize(t Type, dst []float32, src []byte) error {
	l, err := check(t, len(dst), len(src))
	if err != nil {
		return err
	}
	for i, j := 0, 0; i < len(dst); i, j = i+l.block, j+l.bytes {
		l.dequant(dst[i:i+l.block:i+l.block], src[j:j+l.bytes:j+l.bytes])
	}
	return nil
}

// Quantize encodes src into dst as blocks of type t with ggml's reference quantizer
// (no importance matrix): len(src) a multiple of the block size, len(dst) exactly
// RowBytes(len(src)). F16 and BF16 round to nearest even. Values to be block-quantized
// must be finite (ggml's quantizers are undefined on NaN and infinities): a non-finite
// value is an error naming its index.
func Quantize(t Type, dst []byte, src []float32) error {
	l, err := check(t, len(src), len(dst))
	if err != nil {
		return err
	}
	if l.block > 1 {
		for i, v := range src {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("ggml: cannot quantize to %s: value %d is %v", t, i, v)
			}
		}
	}
	for i, j := 0, 0; i < len(src); i, j = i+l.block, j+l.bytes {
		b := dst[j : j+l.bytes : j+l.bytes]
		clear(b)
		l.quant(b, src[i:i+l.block:i+l.block])
	}
	return nil
}

func check(t Type, n, nbytes int) (layout, error) {
	want, err := t.RowBytes(n)
	if err != nil {
		return layout{}, err
	}
	if nbytes != want {
		return layout{}, fmt.Errorf("ggml: %d values of %s take %d bytes, got %d", n, t, want, nbytes)
	}
	return layouts[t], nil
}

// Float types: one value per "block".

func dequantF32(y []float32, b []byte) { y[0] = math.Float32frombits(le32(b)) }
func quantF32(b []byte, x []float32)   { put32(b, math.Float32bits(x[0])) }
func dequantF16(y []float32, b []byte) { y[0] = half.F16ToF32(le16(b)) }
func quantF16(b []byte, x []float32)   { put16(b, half.F32ToF16(x[0])) }
func dequantBF16(y []float32, b []byte) {
	y[0] = math.Float32frombits(uint32(le16(b)) << 16)
}
func quantBF16(b []byte, x []float32) { put16(b, half.F32ToBF16(x[0])) }

// Little-endian field access.

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func put16(b []byte, v uint16) { b[0], b[1] = byte(v), byte(v>>8) }
func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// f16 reads an fp16 field as float32; putF16 rounds v to fp16 and stores it.
func f16(b []byte) float32       { return half.F16ToF32(le16(b)) }
func putF16(b []byte, v float32) { put16(b, half.F32ToF16(v)) }

// abs32 is fabsf.
func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }
