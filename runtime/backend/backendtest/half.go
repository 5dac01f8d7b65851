package backendtest

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/half"
)

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

// encode lays floats out as dt's little-endian bytes (the Upload format; the hosts
// Vireo runs on are little-endian, see backend.Bytes).
func encode(dt backend.DType, s []float32) []byte {
	if dt == backend.F32 {
		return slices.Clone(backend.Bytes(s))
	}
	out := make([]byte, len(s)*dt.Size())
	for i, v := range s {
		switch dt {
		case backend.F16:
			binary.LittleEndian.PutUint16(out[2*i:], half.F32ToF16(v))
		case backend.BF16:
			binary.LittleEndian.PutUint16(out[2*i:], half.F32ToBF16(v))
		default:
			panic(fmt.Sprintf("backendtest: encode %s", dt))
		}
	}
	return out
}

// decode reads dt's little-endian bytes (the Download format) as floats.
func decode(dt backend.DType, b []byte) []float32 {
	out := make([]float32, len(b)/dt.Size())
	if dt == backend.F32 {
		copy(backend.Bytes(out), b)
		return out
	}
	for i := range out {
		switch dt {
		case backend.F16:
			out[i] = half.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		case backend.BF16:
			out[i] = half.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		default:
			panic(fmt.Sprintf("backendtest: decode %s", dt))
		}
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
