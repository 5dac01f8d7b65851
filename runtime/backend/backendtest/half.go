package backendtest

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/half"
)

// littleEndian lets f32 encoding be a plain copy.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func f32Bytes(s []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
}

// Round returns f as stored in dt (f32, f16 or bf16) and read back.
func Round(dt backend.DType, f float32) float32 {
	switch dt {
	case backend.F16:
		return half.F16ToF32(half.F32ToF16(f))
	case backend.BF16:
		return half.BF16ToF32(half.F32ToBF16(f))
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
			binary.LittleEndian.PutUint16(out[2*i:], half.F32ToF16(v))
		}
	case backend.BF16:
		for i, v := range s {
			binary.LittleEndian.PutUint16(out[2*i:], half.F32ToBF16(v))
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
			out[i] = half.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case backend.BF16:
		for i := range out {
			out[i] = half.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
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
