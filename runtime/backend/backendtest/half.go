package backendtest

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/backend"
)

// littleEndian lets f32 encoding be a plain copy.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func f32Bytes(s []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
}

// F32ToF16 rounds f to IEEE half precision, to nearest even; overflow gives ±Inf and
// NaN stays NaN (quiet).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
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
	if e <= 0 { // subnormal half (or zero): value = m·2⁻²⁴
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - e)
		v := mant >> shift
		rem, halfway := mant&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > halfway || (rem == halfway && v&1 == 1) {
			v++
		}
		return sign | uint16(v)
	}
	v := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && v&1 == 1) {
		v++ // a carry into the exponent is the correct rounding, up to Inf
	}
	return sign | uint16(v)
}

// F16ToF32 widens an IEEE half exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// F32ToBF16 rounds f to bfloat16, to nearest even; NaN stays NaN (quiet).
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if f != f {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16ToF32 widens a bfloat16 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Round returns f as stored in dt (f32, f16 or bf16) and read back.
func Round(dt backend.DType, f float32) float32 {
	switch dt {
	case backend.F16:
		return F16ToF32(F32ToF16(f))
	case backend.BF16:
		return BF16ToF32(F32ToBF16(f))
	}
	return f
}

func roundAll(dt backend.DType, s []float32) {
	if dt == backend.F32 {
		return
	}
	for i, v := range s {
		s[i] = Round(dt, v)
	}
}

func isFloat(dt backend.DType) bool {
	return dt == backend.F32 || dt == backend.F16 || dt == backend.BF16
}

// encode lays floats out as dt's little-endian bytes (the Upload format).
func encode(dt backend.DType, s []float32) []byte {
	out := make([]byte, len(s)*dt.Size())
	switch dt {
	case backend.F32:
		if littleEndian {
			copy(out, f32Bytes(s))
			break
		}
		for i, v := range s {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case backend.F16:
		for i, v := range s {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToF16(v))
		}
	case backend.BF16:
		for i, v := range s {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToBF16(v))
		}
	default:
		panic(fmt.Sprintf("backendtest: encode %s", dt))
	}
	return out
}

// decode reads dt's little-endian bytes (the Download format) as floats.
func decode(dt backend.DType, b []byte) []float32 {
	n := len(b) / dt.Size()
	out := make([]float32, n)
	switch dt {
	case backend.F32:
		if littleEndian {
			copy(f32Bytes(out), b)
			break
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case backend.F16:
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case backend.BF16:
		for i := range out {
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		panic(fmt.Sprintf("backendtest: decode %s", dt))
	}
	return out
}

// precisionRank orders float dtypes from most to least precise; the lowest one a case
// touches on the backend under test picks its tolerance.
func precisionRank(dt backend.DType) int {
	switch dt {
	case backend.F16:
		return 1
	case backend.BF16:
		return 2
	}
	return 0
}
