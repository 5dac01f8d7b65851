#include "textflag.h"

// e^(w[i]-mx) in 16 lanes: x = w-mx; n = round(x·log2e); r = x - n·ln2 (two parts);
// Cephes polynomial p(r); result p·2^n (VSCALEFPS); lanes with x < -87.34 (or NaN) are
// zero. The sum accumulates in one 16-lane register in index order (the tail chunk
// masked), then folds 256, 128, 64, 32 bits.

DATA expconst<>+0(SB)/4, $-87.33654
DATA expconst<>+4(SB)/4, $1.44269504088896341
DATA expconst<>+8(SB)/4, $0.693359375
DATA expconst<>+12(SB)/4, $-2.12194440e-4
DATA expconst<>+16(SB)/4, $1.9875691500e-4
DATA expconst<>+20(SB)/4, $1.3981999507e-3
DATA expconst<>+24(SB)/4, $8.3334519073e-3
DATA expconst<>+28(SB)/4, $4.1665795894e-2
DATA expconst<>+32(SB)/4, $1.6666665459e-1
DATA expconst<>+36(SB)/4, $5.0000001201e-1
DATA expconst<>+40(SB)/4, $1.0
GLOBL expconst<>(SB), RODATA|NOPTR, $44

// EXPCONSTS loads EXP16's constants into Z20..Z30.
#define EXPCONSTS \
	VBROADCASTSS expconst<>+0(SB), Z20; \
	VBROADCASTSS expconst<>+4(SB), Z21; \
	VBROADCASTSS expconst<>+8(SB), Z22; \
	VBROADCASTSS expconst<>+12(SB), Z23; \
	VBROADCASTSS expconst<>+16(SB), Z24; \
	VBROADCASTSS expconst<>+20(SB), Z25; \
	VBROADCASTSS expconst<>+24(SB), Z26; \
	VBROADCASTSS expconst<>+28(SB), Z27; \
	VBROADCASTSS expconst<>+32(SB), Z28; \
	VBROADCASTSS expconst<>+36(SB), Z29; \
	VBROADCASTSS expconst<>+40(SB), Z30

// EXP16 turns the 16 arguments in Z1 into their exponentials in Z5 (Z2..Z4 scratch,
// K2 scratch).
#define EXP16 \
	VCMPPS       $0x1D, Z20, Z1, K2; \
	VMULPS       Z21, Z1, Z2; \
	VRNDSCALEPS  $0, Z2, Z2; \
	VFNMADD231PS Z22, Z2, Z1; \
	VFNMADD231PS Z23, Z2, Z1; \
	VMOVAPS      Z24, Z5; \
	VFMADD213PS  Z25, Z1, Z5; \
	VFMADD213PS  Z26, Z1, Z5; \
	VFMADD213PS  Z27, Z1, Z5; \
	VFMADD213PS  Z28, Z1, Z5; \
	VFMADD213PS  Z29, Z1, Z5; \
	VMULPS       Z1, Z1, Z3; \
	VADDPS       Z30, Z1, Z4; \
	VFMADD213PS  Z4, Z3, Z5; \
	VSCALEFPS    Z2, Z5, Z5; \
	VMOVAPS.Z    Z5, K2, Z5

// func expShiftAVX512(w *float32, n int, mx float32) float32
TEXT ·expShiftAVX512(SB), NOSPLIT, $0-28
	MOVQ         w+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS mx+16(FP), Z0
	EXPCONSTS
	VPXORD       Z15, Z15, Z15
	CMPQ         CX, $16
	JLT          tail

loop:
	VMOVUPS (DI), Z1
	VSUBPS  Z0, Z1, Z1
	EXP16
	VMOVUPS Z5, (DI)
	VADDPS  Z5, Z15, Z15
	ADDQ    $64, DI
	SUBQ    $16, CX
	CMPQ    CX, $16
	JGE     loop

tail:
	TESTQ     CX, CX
	JEQ       reduce
	MOVL      $0xffff, R8
	BZHIL     CX, R8, AX
	KMOVW     AX, K1
	VMOVUPS.Z (DI), K1, Z1
	VSUBPS    Z0, Z1, Z1
	EXP16
	VMOVUPS   Z5, K1, (DI)
	VADDPS    Z5, Z15, K1, Z15

reduce:
	VEXTRACTF64X4 $1, Z15, Y1
	VADDPS        Y1, Y15, Y15
	VEXTRACTF128  $1, Y15, X1
	VADDPS        X1, X15, X15
	VMOVHLPS      X15, X15, X1
	VADDPS        X1, X15, X15
	VMOVSHDUP     X15, X1
	VADDSS        X1, X15, X15
	VMOVSS        X15, ret+24(FP)
	VZEROUPPER
	RET

// func siluMulAVX512(out, gate, up *float32, n int)
// out = gate·up / (1 + e^-gate), e^-gate by EXP16 (0 where -gate < -87.34, +Inf past
// 88.7, so the product goes to gate·up or 0 as it should).
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-32
	MOVQ         out+0(FP), DI
	MOVQ         gate+8(FP), SI
	MOVQ         up+16(FP), DX
	MOVQ         n+24(FP), CX
	EXPCONSTS
	VPXORD       Z31, Z31, Z31
	MOVL         $0xffff, R8

siluloop:
	TESTQ     CX, CX
	JEQ       silidone
	MOVQ      CX, R9
	CMPQ      R9, $16
	JLE       silumask
	MOVQ      $16, R9

silumask:
	BZHIL     R9, R8, AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI), K1, Z6
	VMOVUPS.Z (DX), K1, Z7
	VSUBPS    Z6, Z31, Z1
	EXP16
	VADDPS    Z30, Z5, Z5
	VMULPS    Z7, Z6, Z8
	VDIVPS    Z5, Z8, Z8
	VMOVUPS   Z8, K1, (DI)
	ADDQ      $64, SI
	ADDQ      $64, DX
	ADDQ      $64, DI
	SUBQ      R9, CX
	JMP       siluloop

silidone:
	VZEROUPPER
	RET

// func maxAVX512(w *float32, n int) float32
// n >= 16: the first 16 elements seed both accumulators; the ragged end is covered by
// one (overlapping) load of the last 16.
TEXT ·maxAVX512(SB), NOSPLIT, $0-20
	MOVQ    w+0(FP), SI
	MOVQ    n+8(FP), CX
	VMOVUPS (SI), Z0
	VMOVAPS Z0, Z1
	LEAQ    -64(SI)(CX*4), DX // the last 16 elements
	ADDQ    $64, SI
	SUBQ    $16, CX

loop32:
	CMPQ    CX, $32
	JLT     loop16
	VMAXPS  (SI), Z0, Z0
	VMAXPS  64(SI), Z1, Z1
	ADDQ    $128, SI
	SUBQ    $32, CX
	JMP     loop32

loop16:
	CMPQ   CX, $16
	JLT    last
	VMAXPS (SI), Z0, Z0
	ADDQ   $64, SI
	SUBQ   $16, CX
	JMP    loop16

last:
	VMAXPS        (DX), Z1, Z1
	VMAXPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X1, X0, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X1, X0, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X1, X0, X0
	VMOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET
