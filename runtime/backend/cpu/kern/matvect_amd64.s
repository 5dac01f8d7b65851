#include "textflag.h"

// MASKN sets k to the lanes of a 16-wide register r (0..3) of a block of rem columns:
// min(max(rem - 16r, 0), 16) lanes. Clobbers AX, BX; R14 holds 0xffff.
#define MASKN(off, k) \
	MOVQ  R15, AX;   \
	SUBQ  $off, AX;  \
	MOVQ  $0, BX;    \
	CMPQ  AX, $0;    \
	CMOVQLT BX, AX;  \
	MOVQ  $16, BX;   \
	CMPQ  AX, $16;   \
	CMOVQGT BX, AX;  \
	BZHIL AX, R14, AX; \
	KMOVW AX, k

// func matVecTAVX512(dst, x, wt *float32, m, in, ld int, accumulate bool)
// m, in > 0. Columns in blocks of up to 64 (four ZMM; the lanes past m masked off, and
// masked loads never fault). Even k accumulate into Z0..Z3, odd k into Z4..Z7; the two
// are added at the end (see matvect.go).
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
	MOVL $0xffff, R14

block:
	MOVQ   CX, R15
	CMPQ   R15, $64
	JLE    masks
	MOVQ   $64, R15

masks:
	MASKN(0, K1)
	MASKN(16, K2)
	MASKN(32, K3)
	MASKN(48, K4)
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
	JEQ    odd

pairs:
	VBROADCASTSS (BX), Z8
	VBROADCASTSS 4(BX), Z9
	LEAQ         (AX)(R9*1), R13
	VFMADD231PS  (AX), Z8, K1, Z0
	VFMADD231PS  64(AX), Z8, K2, Z1
	VFMADD231PS  128(AX), Z8, K3, Z2
	VFMADD231PS  192(AX), Z8, K4, Z3
	VFMADD231PS  (R13), Z9, K1, Z4
	VFMADD231PS  64(R13), Z9, K2, Z5
	VFMADD231PS  128(R13), Z9, K3, Z6
	VFMADD231PS  192(R13), Z9, K4, Z7
	LEAQ         (R13)(R9*1), AX
	ADDQ         $8, BX
	DECQ         R12
	JNZ          pairs

odd:
	TESTQ        R8, R8
	JEQ          sum
	VBROADCASTSS (BX), Z8
	VFMADD231PS  (AX), Z8, K1, Z0
	VFMADD231PS  64(AX), Z8, K2, Z1
	VFMADD231PS  128(AX), Z8, K3, Z2
	VFMADD231PS  192(AX), Z8, K4, Z3

sum:
	VADDPS Z4, Z0, Z0
	VADDPS Z5, Z1, Z1
	VADDPS Z6, Z2, Z2
	VADDPS Z7, Z3, Z3
	TESTB  R10, R10
	JEQ    store
	VADDPS (DI), Z0, K1, Z0
	VADDPS 64(DI), Z1, K2, Z1
	VADDPS 128(DI), Z2, K3, Z2
	VADDPS 192(DI), Z3, K4, Z3

store:
	VMOVUPS Z0, K1, (DI)
	VMOVUPS Z1, K2, 64(DI)
	VMOVUPS Z2, K3, 128(DI)
	VMOVUPS Z3, K4, 192(DI)
	ADDQ    $256, DI
	ADDQ    $256, DX
	SUBQ    R15, CX
	JGT     block
	VZEROUPPER
	RET
