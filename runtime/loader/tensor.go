package loader

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/half"
	"github.com/vireo-ai/vireo/runtime/quant/ggml"
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
// dimension (a block-quantized type needs it to be a whole number of blocks: 32 values
// for Q4_0 … Q8_0, 256 for the K types).
func dataSize(d DType, n, cols int) (int, error) {
	g, ok := d.GGML()
	if !ok {
		return 0, fmt.Errorf("unknown dtype %d", int(d))
	}
	if d == I8 {
		return n, nil
	}
	if !g.Quantized() {
		return n * g.BlockBytes(), nil
	}
	if n == 0 {
		return 0, nil
	}
	if cols <= 0 || n%cols != 0 {
		return 0, fmt.Errorf("%d elements do not make rows of %d", n, cols)
	}
	row, err := g.RowBytes(cols)
	if err != nil {
		return 0, fmt.Errorf("%s needs the innermost dimension to be a multiple of %d, got %d", d, g.BlockSize(), cols)
	}
	if rows := n / cols; rows > 0 && row > math.MaxInt/rows {
		return 0, fmt.Errorf("%d rows of %d %s values overflow", rows, cols, d)
	}
	return n / cols * row, nil
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
			out[i] = half.F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out, nil
	case BF16:
		out := make([]float32, n)
		for i := range out {
			out[i] = half.BF16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out, nil
	case I8:
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(int8(t.Data[i]))
		}
		return out, nil
	}
	g, ok := t.Type.GGML()
	if !ok || !g.Quantized() {
		return nil, fmt.Errorf("tensor %q: unknown dtype %d", t.Name, int(t.Type))
	}
	out := make([]float32, n)
	if err := ggml.Dequantize(g, out, t.Data); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return out, nil
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
		scales[b] = half.F16ToF32(binary.LittleEndian.Uint16(blk))
		for j := 0; j < q8Block; j++ {
			q[b*q8Block+j] = int8(blk[2+j])
		}
	}
	return scales, q, nil
}

// NewTensor encodes values (row-major, len == product of shape) as a tensor of type
// typ: F16 and BF16 round to nearest even; the block-quantized types use ggml's
// reference quantizers (what llama-quantize writes without an importance matrix), row
// by row, so the innermost dimension must be a whole number of blocks.
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
	g, _ := typ.GGML()
	t.Data = make([]byte, size)
	if err := ggml.Quantize(g, t.Data, values); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return t, nil
}
