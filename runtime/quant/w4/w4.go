// Package w4 is Vireo's W4A16 weight format: 4-bit weight levels with per-group scales,
// converted at load from GGUF Q4_0 and Q4_K blocks without changing a single dequantized
// value, laid out for the CUDA kernels (cuda/kernels/matmul2_w4a16.cu), plus the CPU
// reference those kernels are checked against.
//
// # Values
//
// A weight [Out][In] is cut, along each row, into groups of 32 inputs (Group). Input k
// of row r has a 4-bit level q (0..15) and belongs to group g = k/32, whose scale s and
// offset m (float32, formed from the stored fields exactly) give
//
//	Sym (from Q4_0):    y = s·(q−8)           s = the block's f16 d;            m = 0
//	Affine (from Q4_K): y = s·q − m           s = d·sc, m = dmin·mn (f32 products)
//
// where Q4_K's d and dmin are the super-block's f16 values and sc, mn the group's 6-bit
// scale and min. Every product is exact in float32 (an 11-bit f16 significand times a
// 6-bit and a 4-bit integer), so y is bit for bit ggml's dequantization of the block
// (runtime/quant/ggml). Scales are per group f16 for Q4_0. For Q4_K an f16 group scale
// d·sc would round (the product needs up to 17 significant bits; TestAffineScalesNotF16
// counts how often on the fixture), so the format keeps the type's two levels: per 256 inputs f16 d and dmin, per
// group the 6-bit sc and mn as bytes, multiplied in float32 in the kernel's registers.
//
// Q5_K is not converted: rounding its 5-bit levels to 4 doubles the level step, an error
// larger than the int8 form the CUDA backend keeps it in (TestQ5KStaysInt8 measures it),
// so the backend keeps Q5_K at int8 and logs so. Q4_1 and the other block types are not
// converted either.
//
// # Layout (what the kernels load)
//
// Levels: row r takes In/2 bytes at Q[r·In/2:]; the 16-byte chunk c of a row holds group
// c (inputs 32c … 32c+31), so one 16-byte load is one group of one row. Inside a chunk,
// the little-endian 32-bit word t holds inputs 32c+8t … 32c+8t+7, interleaved: input
// offset o (0..7) sits in nibble o/2 when o is even and nibble 4+o/2 when o is odd. So
// the nibble pairs (0,4), (1,5), (2,6), (3,7) are inputs (0,1), (2,3), (4,5), (6,7), and
// one AND with 0x000f000f of the word shifted by 0, 4, 8, 12, ORed into the exponent of
// 1024 (f16) or 128 (bf16), is a register pair of two adjacent inputs' levels: the
// dequantization in registers that tensor-core fragments take (Marlin's trick; the
// B fragment of mma.m16n8k16 wants pairs of adjacent k). Marlin also permutes rows so a
// thread's global load is its fragment; here the tile goes through shared memory and
// ldmatrix as in kernels v2 part 1, so rows stay in order.
//
// Scales: Sym: S[r·In/32 + g] the group's f16 d. Affine: S[(r·In/256 + b)·2 + {0, 1}]
// the super-block's f16 d and dmin, Sub[(r·In/32 + g)·2 + {0, 1}] the group's sc and mn.
//
// Bytes per weight: Sym 4.5 bits (Q4_0's own), Affine 4.625 bits (Q4_K's 4.5 plus the
// 6-bit fields unpacked to bytes).
package w4

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
)

// Group is the inputs per scale group, and per 16-byte chunk of levels.
const Group = 32

// Super is the inputs per Affine super-block (Q4_K's).
const Super = 256

// Mode says how a group's levels become values.
type Mode uint8

const (
	// Sym: y = s·(q−8), one f16 s per group (from Q4_0).
	Sym Mode = 1
	// Affine: y = (d·sc)·q − dmin·mn, f16 d and dmin per 256 inputs, 6-bit sc and mn
	// per group (from Q4_K).
	Affine Mode = 2
)

func (m Mode) String() string {
	switch m {
	case Sym:
		return "sym"
	case Affine:
		return "affine"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Weight is one matrix in the W4A16 format.
type Weight struct {
	Out, In int
	Mode    Mode
	Q       []byte   // [Out][In/2] levels, the layout above
	S       []uint16 // Sym: [Out][In/32] f16; Affine: [Out][In/256][2] f16 d, dmin
	Sub     []uint8  // Affine: [Out][In/32][2] sc, mn (0..63); nil for Sym
}

// ModeOf is the mode a GGUF block type converts to, or false when it does not convert.
func ModeOf(t ggml.Type) (Mode, bool) {
	switch t {
	case ggml.Q4_0:
		return Sym, true
	case ggml.Q4_K:
		return Affine, true
	}
	return 0, false
}

// Align is the multiple of inputs a row of mode m needs.
func Align(m Mode) int {
	if m == Affine {
		return Super
	}
	return Group
}

// Pos is where input k of a row keeps its level: byte k/32·16 + (k%32)/8·4 + nibble/2 of
// the row, at bit shift 4·(nibble%2), nibble = o/2 for even o = k%8, 4+o/2 for odd o.
func Pos(k int) (byteOff int, shift uint) {
	o := k % 8
	nib := o / 2
	if o%2 == 1 {
		nib += 4
	}
	return k/Group*16 + k%Group/8*4 + nib/2, uint(4 * (nib % 2))
}

// Level is the 4-bit level of row r, input k.
func (w *Weight) Level(r, k int) uint8 {
	b, sh := Pos(k)
	return w.Q[r*w.In/2+b] >> sh & 15
}

// GroupScale is group g of row r's scale and offset in float32: the value of level q is
// s·(q−8) (Sym) or s·q − m (Affine), m = 0 for Sym.
func (w *Weight) GroupScale(r, g int) (s, m float32) {
	if w.Mode == Sym {
		return half.F16ToF32(w.S[r*w.In/Group+g]), 0
	}
	b := (r*w.In/Super + g*Group/Super) * 2
	d, dmin := half.F16ToF32(w.S[b]), half.F16ToF32(w.S[b+1])
	i := (r*w.In/Group + g) * 2
	return d * float32(w.Sub[i]), dmin * float32(w.Sub[i+1])
}

// Value is the dequantized weight of row r, input k (bit for bit ggml's).
func (w *Weight) Value(r, k int) float32 {
	s, m := w.GroupScale(r, k/Group)
	q := w.Level(r, k)
	if w.Mode == Sym {
		return float32(int(q)-8) * s
	}
	return float32(s*float32(q)) - m
}

// DequantRow writes row r's In values into dst.
func (w *Weight) DequantRow(r int, dst []float32) {
	for g := 0; g < w.In/Group; g++ {
		s, m := w.GroupScale(r, g)
		for o := range Group {
			k := g*Group + o
			q := w.Level(r, k)
			if w.Mode == Sym {
				dst[k] = float32(int(q)-8) * s
			} else {
				dst[k] = float32(s*float32(q)) - m
			}
		}
	}
}

// Dequantize is the whole matrix [Out][In] in float32.
func (w *Weight) Dequantize() []float32 {
	out := make([]float32, w.Out*w.In)
	for r := range w.Out {
		w.DequantRow(r, out[r*w.In:(r+1)*w.In])
	}
	return out
}

// Bytes is the device size of the weight: levels, scales and sub-scales.
func (w *Weight) Bytes() int { return len(w.Q) + 2*len(w.S) + len(w.Sub) }

// Check reports whether the weight's slices match its shape and mode.
func (w *Weight) Check() error {
	switch {
	case w.Mode != Sym && w.Mode != Affine:
		return fmt.Errorf("w4: unknown mode %d", w.Mode)
	case w.Out <= 0 || w.In <= 0 || w.In%Align(w.Mode) != 0:
		return fmt.Errorf("w4: shape [%d][%d] is not whole %s groups of %d", w.Out, w.In, w.Mode, Align(w.Mode))
	case len(w.Q) != w.Out*w.In/2:
		return fmt.Errorf("w4: %d level bytes for [%d][%d]", len(w.Q), w.Out, w.In)
	case w.Mode == Sym && (len(w.S) != w.Out*w.In/Group || w.Sub != nil):
		return fmt.Errorf("w4: sym weight [%d][%d] with %d scales and %d sub-scales", w.Out, w.In, len(w.S), len(w.Sub))
	case w.Mode == Affine && (len(w.S) != 2*w.Out*w.In/Super || len(w.Sub) != 2*w.Out*w.In/Group):
		return fmt.Errorf("w4: affine weight [%d][%d] with %d scales and %d sub-scales", w.Out, w.In, len(w.S), len(w.Sub))
	}
	return nil
}

// FromBlocks converts out rows of in values of GGUF blocks of type t (exactly as the file
// stores them) to the W4A16 format. Types other than Q4_0 and Q4_K, shapes that are not
// whole blocks, and a byte count that does not match are errors; nothing is allocated
// before the sizes are checked.
func FromBlocks(t ggml.Type, out, in int, blocks []byte) (*Weight, error) {
	mode, ok := ModeOf(t)
	if !ok {
		return nil, fmt.Errorf("w4: %s blocks do not convert to W4A16 (Q4_0 and Q4_K do)", t)
	}
	if out <= 0 || in <= 0 || in%t.BlockSize() != 0 {
		return nil, fmt.Errorf("w4: %s weight [%d][%d]: rows are not whole blocks of %d", t, out, in, t.BlockSize())
	}
	rb, err := t.RowBytes(in)
	if err != nil {
		return nil, fmt.Errorf("w4: %w", err)
	}
	if out > math.MaxInt/rb || len(blocks) != out*rb {
		return nil, fmt.Errorf("w4: %s weight [%d][%d]: %d bytes, need %d rows of %d", t, out, in, len(blocks), out, rb)
	}
	w := &Weight{Out: out, In: in, Mode: mode, Q: make([]byte, out*in/2)}
	switch mode {
	case Sym:
		w.S = make([]uint16, out*in/Group)
		for r := range out {
			row := blocks[r*rb : (r+1)*rb]
			for g := 0; g < in/Group; g++ {
				b := row[18*g : 18*g+18]
				w.S[r*in/Group+g] = uint16(b[0]) | uint16(b[1])<<8
				for j := range 16 { // Q4_0: qs[j] low nibble is value j, high value j+16
					w.put(r, g*Group+j, b[2+j]&15)
					w.put(r, g*Group+j+16, b[2+j]>>4)
				}
			}
		}
	case Affine:
		w.S = make([]uint16, 2*out*in/Super)
		w.Sub = make([]uint8, 2*out*in/Group)
		for r := range out {
			row := blocks[r*rb : (r+1)*rb]
			for sb := 0; sb < in/Super; sb++ {
				b := row[144*sb : 144*sb+144]
				i := (r*in/Super + sb) * 2
				w.S[i] = uint16(b[0]) | uint16(b[1])<<8
				w.S[i+1] = uint16(b[2]) | uint16(b[3])<<8
				scales, qs := b[4:16], b[16:144]
				for s := range 8 {
					sc, mn := scaleMinK4(s, scales)
					g := sb*8 + s
					w.Sub[(r*in/Group+g)*2] = sc
					w.Sub[(r*in/Group+g)*2+1] = mn
					for l := range 32 { // group s: qs[32·(s/2)+l], low nibble for even s
						q := qs[32*(s/2)+l]
						if s%2 == 0 {
							q &= 15
						} else {
							q >>= 4
						}
						w.put(r, g*Group+l, q)
					}
				}
			}
		}
	}
	return w, nil
}

func (w *Weight) put(r, k int, q uint8) {
	b, sh := Pos(k)
	i := r*w.In/2 + b
	w.Q[i] = w.Q[i]&^(15<<sh) | (q&15)<<sh
}

// scaleMinK4 unpacks group s's 6-bit scale and min of a Q4_K/Q5_K super-block (the
// packing runtime/quant/ggml documents).
func scaleMinK4(s int, q []byte) (sc, m uint8) {
	if s < 4 {
		return q[s] & 63, q[s+4] & 63
	}
	return q[s+4]&15 | q[s-4]>>6<<4, q[s+4]>>4 | q[s]>>6<<4
}

// MatMul is the CPU reference of a W4A16 product: out[i][j] = Σ_k x[i][k]·W[j][k] over
// n rows of x ([n][In]) into out ([n][Out]), each dot product in float32 in increasing
// k over the dequantized row (the same values ggml's dequantization gives).
func MatMul(out, x []float32, n int, w *Weight) error {
	if err := w.Check(); err != nil {
		return err
	}
	if n < 0 || len(x) < n*w.In || len(out) < n*w.Out {
		return fmt.Errorf("w4 matmul: %d rows with %d inputs and %d outputs for [%d][%d]", n, len(x), len(out), w.Out, w.In)
	}
	row := make([]float32, w.In)
	for j := range w.Out {
		w.DequantRow(j, row)
		for i := range n {
			var s float32
			for k, v := range x[i*w.In : (i+1)*w.In] {
				s += float32(v * row[k]) // no fused multiply-add: the reference rounds each product
			}
			out[i*w.Out+j] = s
		}
	}
	return nil
}
