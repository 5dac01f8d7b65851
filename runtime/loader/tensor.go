package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// q8Block is the number of elements in one Q8_0 block and q8BlockBytes its size.
const (
	q8Block      = 32
	q8BlockBytes = 2 + q8Block
)

var hostLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// NumElements is the product of the shape (1 for a scalar shape).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Rows is the number of rows of a matrix: the product of all but the last dimension
// (1 for a vector).
func (t *Tensor) Rows() int {
	if len(t.Shape) == 0 {
		return 1
	}
	n := 1
	for _, d := range t.Shape[:len(t.Shape)-1] {
		n *= d
	}
	return n
}

// Cols is the innermost (last) dimension.
func (t *Tensor) Cols() int {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// dataSize returns the bytes n elements of type d take, with cols the innermost
// dimension (Q8_0 needs it to be a multiple of 32).
func dataSize(d DType, n, cols int) (int, error) {
	switch d {
	case F32:
		return n * 4, nil
	case F16, BF16:
		return n * 2, nil
	case Q8_0:
		if cols%q8Block != 0 {
			return 0, fmt.Errorf("Q8_0 needs the innermost dimension to be a multiple of %d, got %d", q8Block, cols)
		}
		return n / q8Block * q8BlockBytes, nil
	}
	return 0, fmt.Errorf("unknown dtype %d", int(d))
}

func (t *Tensor) checkSize() error {
	want, err := dataSize(t.Type, t.NumElements(), t.Cols())
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if len(t.Data) != want {
		return fmt.Errorf("tensor %q: %s %v needs %d bytes, has %d", t.Name, t.Type, t.Shape, want, len(t.Data))
	}
	return nil
}

// Float32 returns the elements as float32. For F32 data that is 4-byte aligned on a
// little-endian host the slice aliases Data (and the file mapping: do not write to it,
// and do not use it after Checkpoint.Close); otherwise a new slice is returned.
func (t *Tensor) Float32() ([]float32, error) {
	if err := t.checkSize(); err != nil {
		return nil, err
	}
	n := t.NumElements()
	switch t.Type {
	case F32:
		if n == 0 {
			return []float32{}, nil
		}
		if hostLittleEndian && uintptr(unsafe.Pointer(&t.Data[0]))%4 == 0 {
			return unsafe.Slice((*float32)(unsafe.Pointer(&t.Data[0])), n), nil
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
		return out, nil
	case F16:
		out := make([]float32, n)
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
		return out, nil
	case Q8_0:
		out := make([]float32, n)
		for b := 0; b < n/q8Block; b++ {
			blk := t.Data[b*q8BlockBytes : (b+1)*q8BlockBytes]
			d := F16ToF32(binary.LittleEndian.Uint16(blk))
			for j := 0; j < q8Block; j++ {
				out[b*q8Block+j] = d * float32(int8(blk[2+j]))
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("tensor %q: unknown dtype %d", t.Name, int(t.Type))
}

// Q8_0Blocks splits a Q8_0 tensor into one float32 scale per block of 32 elements and
// the int8 quants (len(q) == NumElements, block b holds q[32b:32b+32]); both are copies.
func (t *Tensor) Q8_0Blocks() (scales []float32, q []int8, err error) {
	if t.Type != Q8_0 {
		return nil, nil, fmt.Errorf("tensor %q: Q8_0Blocks on a %s tensor", t.Name, t.Type)
	}
	if err := t.checkSize(); err != nil {
		return nil, nil, err
	}
	nb := t.NumElements() / q8Block
	scales = make([]float32, nb)
	q = make([]int8, nb*q8Block)
	for b := 0; b < nb; b++ {
		blk := t.Data[b*q8BlockBytes : (b+1)*q8BlockBytes]
		scales[b] = F16ToF32(binary.LittleEndian.Uint16(blk))
		for j := 0; j < q8Block; j++ {
			q[b*q8Block+j] = int8(blk[2+j])
		}
	}
	return scales, q, nil
}

// NewTensor encodes values (row-major, len == product of shape) as a tensor of type
// typ: F16 and BF16 round to nearest even; Q8_0 uses one f16 scale per 32 elements
// (amax/127) and rounds against the stored scale, so every element is within scale/2.
func NewTensor(name string, typ DType, shape []int, values []float32) (*Tensor, error) {
	t := &Tensor{Name: name, Type: typ, Shape: append([]int(nil), shape...)}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("tensor %q: non-positive dimension in shape %v", name, shape)
		}
		n *= d
	}
	if len(values) != n {
		return nil, fmt.Errorf("tensor %q: shape %v needs %d values, got %d", name, shape, n, len(values))
	}
	size, err := dataSize(typ, n, t.Cols())
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	t.Data = make([]byte, size)
	switch typ {
	case F32:
		for i, v := range values {
			binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range values {
			binary.LittleEndian.PutUint16(t.Data[2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range values {
			binary.LittleEndian.PutUint16(t.Data[2*i:], F32ToBF16(v))
		}
	case Q8_0:
		for b := 0; b < n/q8Block; b++ {
			blk := t.Data[b*q8BlockBytes : (b+1)*q8BlockBytes]
			xs := values[b*q8Block : (b+1)*q8Block]
			var amax float32
			for _, x := range xs {
				amax = max(amax, float32(math.Abs(float64(x))))
			}
			h := F32ToF16(amax / 127)
			binary.LittleEndian.PutUint16(blk, h)
			d := F16ToF32(h)
			var id float32
			if d != 0 {
				id = 1 / d
			}
			for j, x := range xs {
				q := math.RoundToEven(float64(x * id))
				q = max(-127, min(127, q))
				blk[2+j] = byte(int8(q))
			}
		}
	default:
		return nil, errors.New("unreachable")
	}
	return t, nil
}

// F16ToF32 converts IEEE half-precision bits to float32 (exact).
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or nan
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: mant * 2^-24
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// F32ToF16 converts a float32 to IEEE half bits, rounding to nearest even; values past
// the half range become infinities, NaN stays NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		// subnormal half: shift the mantissa with its implicit bit.
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, up to infinity: correct
	}
	return sign | uint16(half)
}

// F32ToBF16 converts a float32 to bfloat16 bits, rounding to nearest even.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40 // quiet NaN
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
