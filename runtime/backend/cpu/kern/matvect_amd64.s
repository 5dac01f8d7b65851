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
