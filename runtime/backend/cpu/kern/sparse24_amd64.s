#include "textflag.h"

// 2:4 sparse dot products (see sparse24.go for the numerics). One step is 32 inputs:
// 8 groups, 16 kept values, one 32-bit metadata word m broadcast to every lane. Lane l
// gathers x[4(l/2) + ((m >> 2l) & 3)] from the step's two 16-float halves of x with
// VPERMT2PS (index bit 4 picks the half); the index is ((m >> SHIFT) & 3) | BASE with
// SHIFT = 2l and BASE = 4(l/2) (one VPSRLVD and one VPTERNLOGD). Step s goes into
// accumulator s%4; the caller adds the tail (fewer than 8 groups).
//
// Registers: Z28 SHIFT, Z29 BASE, Z30 the constant 3.

DATA sp24shift<>+0(SB)/4, $0
DATA sp24shift<>+4(SB)/4, $2
DATA sp24shift<>+8(SB)/4, $4
DATA sp24shift<>+12(SB)/4, $6
DATA sp24shift<>+16(SB)/4, $8
DATA sp24shift<>+20(SB)/4, $10
DATA sp24shift<>+24(SB)/4, $12
DATA sp24shift<>+28(SB)/4, $14
DATA sp24shift<>+32(SB)/4, $16
DATA sp24shift<>+36(SB)/4, $18
DATA sp24shift<>+40(SB)/4, $20
DATA sp24shift<>+44(SB)/4, $22
DATA sp24shift<>+48(SB)/4, $24
DATA sp24shift<>+52(SB)/4, $26
DATA sp24shift<>+56(SB)/4, $28
DATA sp24shift<>+60(SB)/4, $30
GLOBL sp24shift<>(SB), RODATA|NOPTR, $64

DATA sp24base<>+0(SB)/4, $0
DATA sp24base<>+4(SB)/4, $0
DATA sp24base<>+8(SB)/4, $4
DATA sp24base<>+12(SB)/4, $4
DATA sp24base<>+16(SB)/4, $8
DATA sp24base<>+20(SB)/4, $8
DATA sp24base<>+24(SB)/4, $12
DATA sp24base<>+28(SB)/4, $12
DATA sp24base<>+32(SB)/4, $16
DATA sp24base<>+36(SB)/4, $16
DATA sp24base<>+40(SB)/4, $20
DATA sp24base<>+44(SB)/4, $20
DATA sp24base<>+48(SB)/4, $24
DATA sp24base<>+52(SB)/4, $24
DATA sp24base<>+56(SB)/4, $28
DATA sp24base<>+60(SB)/4, $28
GLOBL sp24base<>(SB), RODATA|NOPTR, $64

// REDUCE16 folds za..zd into the low lane of xa; zb (yb, xb) is scratch (as kern_amd64.s).
#define REDUCE16(za, zb, zc, zd, ya, yb, xa, xb) \
	VADDPS        zb, za, za; \
	VADDPS        zd, zc, zc; \
	VADDPS        zc, za, za; \
	VEXTRACTF64X4 $1, za, yb; \
	VADDPS        yb, ya, ya; \
	VEXTRACTF128  $1, ya, xb; \
	VADDPS        xb, xa, xa; \
	VMOVHLPS      xa, xa, xb; \
	VADDPS        xb, xa, xa; \
	VMOVSHDUP     xa, xb; \
	VADDSS        xb, xa, xa

#define CONSTS \
	VMOVDQU32    sp24shift<>(SB), Z28; \
	VMOVDQU32    sp24base<>(SB), Z29; \
	MOVL         $3, AX; \
	VPBROADCASTD AX, Z30

// IDX sets idx to the gather indices of the step whose metadata word is at mo(BX).
#define IDX(mo, idx) \
	VPBROADCASTD mo(BX), idx; \
	VPSRLVD      Z28, idx, idx; \
	VPTERNLOGD   $0xEA, Z29, Z30, idx

// GATHER sets t to the activations of row p (step at x offset xo, second half xo2).
#define GATHER(p, xo, xo2, idx, t) \
	VMOVUPS   xo(p), t; \
	VPERMT2PS xo2(p), idx, t

// One step of the one-row fp32 kernel into acc.
#define STEP1F(mo, xo, xo2, vo, idx, t, acc) \
	IDX(mo, idx); \
	GATHER(SI, xo, xo2, idx, t); \
	VFMADD231PS vo(DI), t, acc

// One step of the one-row int8 kernel into acc; vz is scratch.
#define STEP1Q(mo, xo, xo2, vo, idx, t, vz, acc) \
	IDX(mo, idx); \
	GATHER(SI, xo, xo2, idx, t); \
	VPMOVSXBD   vo(DI), vz; \
	VCVTDQ2PS   vz, vz; \
	VFMADD231PS vz, t, acc

// func dot24AVX512(x *float32, v *float32, meta *byte, steps int) float32
TEXT ·dot24AVX512(SB), NOSPLIT, $0-36
	MOVQ   x+0(FP), SI
	MOVQ   v+8(FP), DI
	MOVQ   meta+16(FP), BX
	MOVQ   steps+24(FP), CX
	CONSTS
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $4
	JLT    rest

loop:
	PREFETCHT0 1024(DI)
	PREFETCHT0 1088(DI)
	PREFETCHT0 1152(DI)
	PREFETCHT0 1216(DI)
	STEP1F(0, 0, 64, 0, Z4, Z8, Z0)
	STEP1F(4, 128, 192, 64, Z5, Z9, Z1)
	STEP1F(8, 256, 320, 128, Z6, Z10, Z2)
	STEP1F(12, 384, 448, 192, Z7, Z11, Z3)
	ADDQ $512, SI
	ADDQ $256, DI
	ADDQ $16, BX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop

rest:
	TESTQ CX, CX
	JEQ   reduce
	STEP1F(0, 0, 64, 0, Z4, Z8, Z0)
	ADDQ  $128, SI
	ADDQ  $64, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	STEP1F(0, 0, 64, 0, Z4, Z8, Z1)
	ADDQ  $128, SI
	ADDQ  $64, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	STEP1F(0, 0, 64, 0, Z4, Z8, Z2)
	ADDQ  $128, SI
	ADDQ  $64, DI
	ADDQ  $4, BX
	DECQ  CX

reduce:
	REDUCE16(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func dot24Q8AVX512(x *float32, v *int8, meta *byte, steps int) float32
TEXT ·dot24Q8AVX512(SB), NOSPLIT, $0-36
	MOVQ   x+0(FP), SI
	MOVQ   v+8(FP), DI
	MOVQ   meta+16(FP), BX
	MOVQ   steps+24(FP), CX
	CONSTS
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $4
	JLT    rest

loop:
	PREFETCHT0 1024(DI)
	STEP1Q(0, 0, 64, 0, Z4, Z8, Z12, Z0)
	STEP1Q(4, 128, 192, 16, Z5, Z9, Z13, Z1)
	STEP1Q(8, 256, 320, 32, Z6, Z10, Z14, Z2)
	STEP1Q(12, 384, 448, 48, Z7, Z11, Z15, Z3)
	ADDQ $512, SI
	ADDQ $64, DI
	ADDQ $16, BX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop

rest:
	TESTQ CX, CX
	JEQ   reduce
	STEP1Q(0, 0, 64, 0, Z4, Z8, Z12, Z0)
	ADDQ  $128, SI
	ADDQ  $16, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	STEP1Q(0, 0, 64, 0, Z4, Z8, Z12, Z1)
	ADDQ  $128, SI
	ADDQ  $16, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	STEP1Q(0, 0, 64, 0, Z4, Z8, Z12, Z2)
	ADDQ  $128, SI
	ADDQ  $16, DI
	ADDQ  $4, BX
	DECQ  CX

reduce:
	REDUCE16(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// One step of the four-row kernels: values in Z17 (loaded by the caller's macro),
// accumulators a0..a3 of rows SI, R9, R10, R11.
#define STEP4(mo, xo, xo2, a0, a1, a2, a3) \
	IDX(mo, Z16); \
	GATHER(SI, xo, xo2, Z16, Z20); \
	GATHER(R9, xo, xo2, Z16, Z21); \
	GATHER(R10, xo, xo2, Z16, Z22); \
	GATHER(R11, xo, xo2, Z16, Z23); \
	VFMADD231PS Z17, Z20, a0; \
	VFMADD231PS Z17, Z21, a1; \
	VFMADD231PS Z17, Z22, a2; \
	VFMADD231PS Z17, Z23, a3

#define VALSF(vo) VMOVUPS vo(DI), Z17

#define VALSQ(vo) \
	VPMOVSXBD vo(DI), Z17; \
	VCVTDQ2PS Z17, Z17

// Row r uses accumulators Z(4r)..Z(4r+3).
// func dot24x4AVX512(out *[4]float32, x *float32, ldx int, v *float32, meta *byte, steps int)
TEXT ·dot24x4AVX512(SB), NOSPLIT, $0-48
	MOVQ x+8(FP), SI
	MOVQ ldx+16(FP), DX
	MOVQ v+24(FP), DI
	MOVQ meta+32(FP), BX
	MOVQ steps+40(FP), CX
	SHLQ $2, DX
	LEAQ (SI)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	CONSTS
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	CMPQ CX, $4
	JLT  rest

loop:
	PREFETCHT0 1024(DI)
	VALSF(0)
	STEP4(0, 0, 64, Z0, Z4, Z8, Z12)
	VALSF(64)
	STEP4(4, 128, 192, Z1, Z5, Z9, Z13)
	VALSF(128)
	STEP4(8, 256, 320, Z2, Z6, Z10, Z14)
	VALSF(192)
	STEP4(12, 384, 448, Z3, Z7, Z11, Z15)
	ADDQ $512, SI
	ADDQ $512, R9
	ADDQ $512, R10
	ADDQ $512, R11
	ADDQ $256, DI
	ADDQ $16, BX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop

rest:
	TESTQ CX, CX
	JEQ   reduce
	VALSF(0)
	STEP4(0, 0, 64, Z0, Z4, Z8, Z12)
	ADDQ  $128, SI
	ADDQ  $128, R9
	ADDQ  $128, R10
	ADDQ  $128, R11
	ADDQ  $64, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	VALSF(0)
	STEP4(0, 0, 64, Z1, Z5, Z9, Z13)
	ADDQ  $128, SI
	ADDQ  $128, R9
	ADDQ  $128, R10
	ADDQ  $128, R11
	ADDQ  $64, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	VALSF(0)
	STEP4(0, 0, 64, Z2, Z6, Z10, Z14)
	ADDQ  $128, SI
	ADDQ  $128, R9
	ADDQ  $128, R10
	ADDQ  $128, R11
	ADDQ  $64, DI
	ADDQ  $4, BX
	DECQ  CX

reduce:
	REDUCE16(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	REDUCE16(Z4, Z5, Z6, Z7, Y4, Y5, X4, X5)
	REDUCE16(Z8, Z9, Z10, Z11, Y8, Y9, X8, X9)
	REDUCE16(Z12, Z13, Z14, Z15, Y12, Y13, X12, X13)
	MOVQ   out+0(FP), AX
	VMOVSS X0, (AX)
	VMOVSS X4, 4(AX)
	VMOVSS X8, 8(AX)
	VMOVSS X12, 12(AX)
	VZEROUPPER
	RET

// Row r uses accumulators Z(4r)..Z(4r+3).
// func dot24x4Q8AVX512(out *[4]float32, x *float32, ldx int, v *int8, meta *byte, steps int)
TEXT ·dot24x4Q8AVX512(SB), NOSPLIT, $0-48
	MOVQ x+8(FP), SI
	MOVQ ldx+16(FP), DX
	MOVQ v+24(FP), DI
	MOVQ meta+32(FP), BX
	MOVQ steps+40(FP), CX
	SHLQ $2, DX
	LEAQ (SI)(DX*1), R9
	LEAQ (R9)(DX*1), R10
	LEAQ (R10)(DX*1), R11
	CONSTS
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	CMPQ CX, $4
	JLT  rest

loop:
	PREFETCHT0 1024(DI)
	VALSQ(0)
	STEP4(0, 0, 64, Z0, Z4, Z8, Z12)
	VALSQ(16)
	STEP4(4, 128, 192, Z1, Z5, Z9, Z13)
	VALSQ(32)
	STEP4(8, 256, 320, Z2, Z6, Z10, Z14)
	VALSQ(48)
	STEP4(12, 384, 448, Z3, Z7, Z11, Z15)
	ADDQ $512, SI
	ADDQ $512, R9
	ADDQ $512, R10
	ADDQ $512, R11
	ADDQ $64, DI
	ADDQ $16, BX
	SUBQ $4, CX
	CMPQ CX, $4
	JGE  loop

rest:
	TESTQ CX, CX
	JEQ   reduce
	VALSQ(0)
	STEP4(0, 0, 64, Z0, Z4, Z8, Z12)
	ADDQ  $128, SI
	ADDQ  $128, R9
	ADDQ  $128, R10
	ADDQ  $128, R11
	ADDQ  $16, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	VALSQ(0)
	STEP4(0, 0, 64, Z1, Z5, Z9, Z13)
	ADDQ  $128, SI
	ADDQ  $128, R9
	ADDQ  $128, R10
	ADDQ  $128, R11
	ADDQ  $16, DI
	ADDQ  $4, BX
	DECQ  CX
	TESTQ CX, CX
	JEQ   reduce
	VALSQ(0)
	STEP4(0, 0, 64, Z2, Z6, Z10, Z14)
	ADDQ  $128, SI
	ADDQ  $128, R9
	ADDQ  $128, R10
	ADDQ  $128, R11
	ADDQ  $16, DI
	ADDQ  $4, BX
	DECQ  CX

reduce:
	REDUCE16(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	REDUCE16(Z4, Z5, Z6, Z7, Y4, Y5, X4, X5)
	REDUCE16(Z8, Z9, Z10, Z11, Y8, Y9, X8, X9)
	REDUCE16(Z12, Z13, Z14, Z15, Y12, Y13, X12, X13)
	MOVQ   out+0(FP), AX
	VMOVSS X0, (AX)
	VMOVSS X4, 4(AX)
	VMOVSS X8, 8(AX)
	VMOVSS X12, 12(AX)
	VZEROUPPER
	RET
