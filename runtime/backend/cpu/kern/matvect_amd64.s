#include "textflag.h"

// func matVecTAVX512(dst, x, wt *float32, m, in, ld int, accumulate bool)
// m, in > 0. Columns in blocks of 64 (four ZMM, unmasked), then 16 at a time (the last
// group masked). Even k accumulate into one set of registers, odd k into another; the
// two are added at the end (see matvect.go). A column group never runs with an
// all-zero mask: on AMD Zen 4 such masked loads and stores measured 10x slower than
// the arithmetic they skip.
TEXT ·matVecTAVX512(SB), NOSPLIT, $0-49
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ wt+16(FP), DX
	MOVQ m+24(FP), CX
	MOVQ in+32(FP), R8
	MOVQ ld+40(FP), R9
	SHLQ $2, R9           // row stride in bytes
	MOVB accumulate+48(FP), R10
	MOVQ R8, R11
	SHRQ $1, R11          // k pairs
	ANDQ $1, R8           // odd k left over

block64:
	CMPQ   CX, $64
	JLT    block16
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	MOVQ   DX, AX         // weight row pointer
	MOVQ   SI, BX         // activation pointer
	MOVQ   R11, R12
	TESTQ  R12, R12
	JEQ    odd64

pairs64:
	VBROADCASTSS (BX), Z8
	VBROADCASTSS 4(BX), Z9
	LEAQ         (AX)(R9*1), R13
	VFMADD231PS  (AX), Z8, Z0
	VFMADD231PS  64(AX), Z8, Z1
	VFMADD231PS  128(AX), Z8, Z2
	VFMADD231PS  192(AX), Z8, Z3
	VFMADD231PS  (R13), Z9, Z4
	VFMADD231PS  64(R13), Z9, Z5
	VFMADD231PS  128(R13), Z9, Z6
	VFMADD231PS  192(R13), Z9, Z7
	LEAQ         (R13)(R9*1), AX
	ADDQ         $8, BX
	DECQ         R12
	JNZ          pairs64

odd64:
	TESTQ        R8, R8
	JEQ          sum64
	VBROADCASTSS (BX), Z8
	VFMADD231PS  (AX), Z8, Z0
	VFMADD231PS  64(AX), Z8, Z1
	VFMADD231PS  128(AX), Z8, Z2
	VFMADD231PS  192(AX), Z8, Z3

sum64:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	TESTB  R10, R10
	JEQ    store64
	VADDPS (DI), Z0, Z0
	VADDPS 64(DI), Z1, Z1
	VADDPS 128(DI), Z2, Z2
	VADDPS 192(DI), Z3, Z3

store64:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    $64, CX
	JMP     block64

block16:
	TESTQ CX, CX
	JEQ   done
	MOVL  $0xffff, R14
	MOVQ  CX, R15
	CMPQ  R15, $16
	JLE   mask16
	MOVQ  $16, R15

mask16:
	BZHIL  R15, R14, R14
	KMOVW  R14, K1
	VPXORD Z0, Z0, Z0
	VPXORD Z4, Z4, Z4
	MOVQ   DX, AX
	MOVQ   SI, BX
	MOVQ   R11, R12
	TESTQ  R12, R12
	JEQ    odd16

pairs16:
	VBROADCASTSS (BX), Z8
	VBROADCASTSS 4(BX), Z9
	LEAQ         (AX)(R9*1), R13
	VMOVUPS.Z    (AX), K1, Z10
	VMOVUPS.Z    (R13), K1, Z11
	VFMADD231PS  Z10, Z8, Z0
	VFMADD231PS  Z11, Z9, Z4
	LEAQ         (R13)(R9*1), AX
	ADDQ         $8, BX
	DECQ         R12
	JNZ          pairs16

odd16:
	TESTQ        R8, R8
	JEQ          sum16
	VBROADCASTSS (BX), Z8
	VMOVUPS.Z    (AX), K1, Z10
	VFMADD231PS  Z10, Z8, Z0

sum16:
	VADDPS    Z4, Z0, Z0
	TESTB     R10, R10
	JEQ       store16
	VMOVUPS.Z (DI), K1, Z1
	VADDPS    Z1, Z0, Z0

store16:
	VMOVUPS Z0, K1, (DI)
	ADDQ    $64, DI
	ADDQ    $64, DX
	SUBQ    R15, CX
	JMP     block16

done:
	VZEROUPPER
	RET

// func matVecT4AVX512(dst *float32, ldd int, x *float32, ldx, in int, wt *float32, ld, m int, accumulate bool)
// Four activation rows (x + t·ldx) against the same columns: blocks of 32 columns (two
// ZMM per row, an even-k and an odd-k set each: 16 accumulators), then 16 at a time
// with the last group masked, exactly as matVecTAVX512 sums each (row, column).
// Registers: Z0..Z15 accumulators (row t: Z(4t) Z(4t+1) even, Z(4t+2) Z(4t+3) odd),
// Z16..Z19 weights, Z20..Z27 activation broadcasts.
TEXT ·matVecT4AVX512(SB), NOSPLIT, $8-65
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R14
	SHLQ $2, R14                  // ldd in bytes
	MOVQ x+16(FP), SI
	MOVQ ldx+24(FP), R15
	SHLQ $2, R15                  // ldx in bytes
	MOVQ in+32(FP), R8
	MOVQ wt+40(FP), DX
	MOVQ ld+48(FP), R9
	SHLQ $2, R9                   // weight row stride in bytes
	MOVQ m+56(FP), CX
	MOVQ R8, R11
	SHRQ $1, R11                  // k pairs
	ANDQ $1, R8                   // odd k left over

b32:
	CMPQ   CX, $32
	JLT    b16
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
	MOVQ   DX, AX                 // weight row k
	MOVQ   SI, BX                 // activation k of row 0
	LEAQ   (SI)(R15*2), R10       // activation k of row 2
	MOVQ   R11, R12
	TESTQ  R12, R12
	JEQ    odd32

pairs32:
	LEAQ         (AX)(R9*1), R13
	VMOVUPS      (AX), Z16
	VMOVUPS      64(AX), Z17
	VMOVUPS      (R13), Z18
	VMOVUPS      64(R13), Z19
	VBROADCASTSS (BX), Z20
	VBROADCASTSS 4(BX), Z21
	VBROADCASTSS (BX)(R15*1), Z22
	VBROADCASTSS 4(BX)(R15*1), Z23
	VBROADCASTSS (R10), Z24
	VBROADCASTSS 4(R10), Z25
	VBROADCASTSS (R10)(R15*1), Z26
	VBROADCASTSS 4(R10)(R15*1), Z27
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z20, Z1
	VFMADD231PS  Z18, Z21, Z2
	VFMADD231PS  Z19, Z21, Z3
	VFMADD231PS  Z16, Z22, Z4
	VFMADD231PS  Z17, Z22, Z5
	VFMADD231PS  Z18, Z23, Z6
	VFMADD231PS  Z19, Z23, Z7
	VFMADD231PS  Z16, Z24, Z8
	VFMADD231PS  Z17, Z24, Z9
	VFMADD231PS  Z18, Z25, Z10
	VFMADD231PS  Z19, Z25, Z11
	VFMADD231PS  Z16, Z26, Z12
	VFMADD231PS  Z17, Z26, Z13
	VFMADD231PS  Z18, Z27, Z14
	VFMADD231PS  Z19, Z27, Z15
	LEAQ         (R13)(R9*1), AX
	ADDQ         $8, BX
	ADDQ         $8, R10
	DECQ         R12
	JNZ          pairs32

odd32:
	TESTQ        R8, R8
	JEQ          sum32
	VMOVUPS      (AX), Z16
	VMOVUPS      64(AX), Z17
	VBROADCASTSS (BX), Z20
	VBROADCASTSS (BX)(R15*1), Z22
	VBROADCASTSS (R10), Z24
	VBROADCASTSS (R10)(R15*1), Z26
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z17, Z20, Z1
	VFMADD231PS  Z16, Z22, Z4
	VFMADD231PS  Z17, Z22, Z5
	VFMADD231PS  Z16, Z24, Z8
	VFMADD231PS  Z17, Z24, Z9
	VFMADD231PS  Z16, Z26, Z12
	VFMADD231PS  Z17, Z26, Z13

sum32:
	VADDPS Z2, Z0, Z0
	VADDPS Z3, Z1, Z1
	VADDPS Z6, Z4, Z4
	VADDPS Z7, Z5, Z5
	VADDPS Z10, Z8, Z8
	VADDPS Z11, Z9, Z9
	VADDPS Z14, Z12, Z12
	VADDPS Z15, Z13, Z13
	LEAQ   (DI)(R14*2), R13       // row 2's outputs
	MOVB   accumulate+64(FP), AX
	TESTB  AL, AL
	JEQ    store32
	VADDPS (DI), Z0, Z0
	VADDPS 64(DI), Z1, Z1
	VADDPS (DI)(R14*1), Z4, Z4
	VADDPS 64(DI)(R14*1), Z5, Z5
	VADDPS (R13), Z8, Z8
	VADDPS 64(R13), Z9, Z9
	VADDPS (R13)(R14*1), Z12, Z12
	VADDPS 64(R13)(R14*1), Z13, Z13

store32:
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z4, (DI)(R14*1)
	VMOVUPS Z5, 64(DI)(R14*1)
	VMOVUPS Z8, (R13)
	VMOVUPS Z9, 64(R13)
	VMOVUPS Z12, (R13)(R14*1)
	VMOVUPS Z13, 64(R13)(R14*1)
	ADDQ    $128, DI
	ADDQ    $128, DX
	SUBQ    $32, CX
	JMP     b32

b16:
	TESTQ CX, CX
	JEQ   done4
	MOVL  $0xffff, AX
	MOVQ  CX, R12
	CMPQ  R12, $16
	JLE   m16
	MOVQ  $16, R12

m16:
	BZHIL  R12, AX, AX
	KMOVW  AX, K1
	MOVQ   R12, cols-8(SP)        // columns in this group (spilled: every register is in use)
	VPXORD Z0, Z0, Z0
	VPXORD Z2, Z2, Z2
	VPXORD Z4, Z4, Z4
	VPXORD Z6, Z6, Z6
	VPXORD Z8, Z8, Z8
	VPXORD Z10, Z10, Z10
	VPXORD Z12, Z12, Z12
	VPXORD Z14, Z14, Z14
	MOVQ   DX, AX
	MOVQ   SI, BX
	LEAQ   (SI)(R15*2), R10
	MOVQ   R11, R12
	TESTQ  R12, R12
	JEQ    odd16x

pairs16x:
	LEAQ         (AX)(R9*1), R13
	VMOVUPS.Z    (AX), K1, Z16
	VMOVUPS.Z    (R13), K1, Z18
	VBROADCASTSS (BX), Z20
	VBROADCASTSS 4(BX), Z21
	VBROADCASTSS (BX)(R15*1), Z22
	VBROADCASTSS 4(BX)(R15*1), Z23
	VBROADCASTSS (R10), Z24
	VBROADCASTSS 4(R10), Z25
	VBROADCASTSS (R10)(R15*1), Z26
	VBROADCASTSS 4(R10)(R15*1), Z27
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z18, Z21, Z2
	VFMADD231PS  Z16, Z22, Z4
	VFMADD231PS  Z18, Z23, Z6
	VFMADD231PS  Z16, Z24, Z8
	VFMADD231PS  Z18, Z25, Z10
	VFMADD231PS  Z16, Z26, Z12
	VFMADD231PS  Z18, Z27, Z14
	LEAQ         (R13)(R9*1), AX
	ADDQ         $8, BX
	ADDQ         $8, R10
	DECQ         R12
	JNZ          pairs16x

odd16x:
	TESTQ        R8, R8
	JEQ          sum16x
	VMOVUPS.Z    (AX), K1, Z16
	VBROADCASTSS (BX), Z20
	VBROADCASTSS (BX)(R15*1), Z22
	VBROADCASTSS (R10), Z24
	VBROADCASTSS (R10)(R15*1), Z26
	VFMADD231PS  Z16, Z20, Z0
	VFMADD231PS  Z16, Z22, Z4
	VFMADD231PS  Z16, Z24, Z8
	VFMADD231PS  Z16, Z26, Z12

sum16x:
	VADDPS Z2, Z0, Z0
	VADDPS Z6, Z4, Z4
	VADDPS Z10, Z8, Z8
	VADDPS Z14, Z12, Z12
	LEAQ   (DI)(R14*2), R13
	MOVB   accumulate+64(FP), AX
	TESTB  AL, AL
	JEQ    store16x
	VMOVUPS.Z (DI), K1, Z1
	VADDPS    Z1, Z0, Z0
	VMOVUPS.Z (DI)(R14*1), K1, Z1
	VADDPS    Z1, Z4, Z4
	VMOVUPS.Z (R13), K1, Z1
	VADDPS    Z1, Z8, Z8
	VMOVUPS.Z (R13)(R14*1), K1, Z1
	VADDPS    Z1, Z12, Z12

store16x:
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z4, K1, (DI)(R14*1)
	VMOVUPS Z8, K1, (R13)
	VMOVUPS Z12, K1, (R13)(R14*1)
	MOVQ    cols-8(SP), R12
	LEAQ    (DI)(R12*4), DI
	LEAQ    (DX)(R12*4), DX
	SUBQ    R12, CX
	JMP     b16

done4:
	VZEROUPPER
	RET
