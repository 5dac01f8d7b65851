package half

import (
	"math"
	"testing"
)

func TestHalfConversions(t *testing.T) {
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e10, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {0x1p-14, 0x0400}, {0x1p-24, 0x0001}, {0x1p-25, 0}, {0x1.8p-24, 0x0002},
		{1 + 0x1p-11, 0x3c00}, {1 + 0x3p-11, 0x3c02}, {1 + 0x1p-10, 0x3c01}, {0.1, 0x2e66},
	} {
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("f16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	for _, c := range []struct {
		f float32
		h uint16
	}{
		{1, 0x3f80}, {-2, 0xc000}, {1 + 0x1p-8, 0x3f80}, {1 + 0x3p-8, 0x3f82}, {0.1, 0x3dcd}, {3.4e38, 0x7f80},
	} {
		if got := F32ToBF16(c.f); got != c.h {
			t.Errorf("bf16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := F32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("f16(NaN) = %#04x", h)
	}
	if f := BF16ToF32(F32ToBF16(float32(math.NaN()))); f == f {
		t.Errorf("bf16(NaN) came back as %g", f)
	}
	// Every finite half value survives the round trip; rounding is to nearest.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if got := F32ToF16(F16ToF32(uint16(h))); got != uint16(h) && h != 0x8000 {
			t.Fatalf("f16 %#04x -> %g -> %#04x", h, F16ToF32(uint16(h)), got)
		}
		if h&0x7f80 != 0x7f80 {
			if got := F32ToBF16(BF16ToF32(uint16(h))); got != uint16(h) {
				t.Fatalf("bf16 %#04x -> %#04x", h, got)
			}
		}
	}
}
