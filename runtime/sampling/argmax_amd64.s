#include "textflag.h"

// func argmaxAVX512(x *float32, n int) int
// Pass 1: the maximum, NaN lanes ignored (VMAXPS returns its second source, the
// accumulator, when the loaded value is NaN). Pass 2: the first index holding it.
TEXT ·argmaxAVX512(SB), NOSPLIT, $0-24
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	MOVL         $0xff800000, AX // -Inf
	MOVL         AX, X0
	VBROADCASTSS X0, Z0
	VMOVAPS      Z0, Z1
	MOVQ         SI, DI
	MOVQ         CX, DX
	MOVL         $0xffff, R8

max32:
	CMPQ    DX, $32
	JLT     max16
	VMOVUPS (DI), Z2
	VMOVUPS 64(DI), Z3
	VMAXPS  Z0, Z2, Z0
	VMAXPS  Z1, Z3, Z1
	ADDQ    $128, DI
	SUBQ    $32, DX
	JMP     max32

max16:
	TESTQ     DX, DX
	JEQ       reduce
	CMPQ      DX, $16
	MOVQ      DX, R9
	JLT       maskit
	MOVQ      $16, R9

maskit:
	BZHIL     R9, R8, AX
	KMOVW     AX, K1
	VMOVUPS.Z (DI), K1, Z2
	VMOVAPS   Z0, Z4
	VMAXPS    Z0, Z2, K1, Z4 // masked-off lanes keep the accumulator
	VMOVAPS   Z4, Z0
	ADDQ      $64, DI
	SUBQ      R9, DX
	JMP       max16

reduce:
	VMAXPS        Z0, Z1, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS        Y0, Y1, Y0
	VEXTRACTF128  $1, Y0, X1
	VMAXPS        X0, X1, X0
	VMOVHLPS      X0, X0, X1
	VMAXPS        X0, X1, X0
	VMOVSHDUP     X0, X1
	VMAXSS        X0, X1, X0
	VMOVD         X0, AX
	CMPL          AX, $0xff800000
	JEQ           zero
	VBROADCASTSS  X0, Z0
	XORQ          BX, BX // index of the current chunk

find:
	MOVQ      CX, R9
	SUBQ      BX, R9
	CMPQ      R9, $16
	JLE       last
	VCMPPS    $0, (SI)(BX*4), Z0, K2
	KMOVW     K2, AX
	TESTL     AX, AX
	JNE       found
	ADDQ      $16, BX
	JMP       find

last:
	BZHIL     R9, R8, AX
	KMOVW     AX, K1
	VMOVUPS.Z (SI)(BX*4), K1, Z2
	VCMPPS    $0, Z2, Z0, K1, K2
	KMOVW     K2, AX
	TESTL     AX, AX
	JEQ       zero

found:
	TZCNTL AX, AX
	ADDQ   BX, AX
	MOVQ   AX, ret+16(FP)
	VZEROUPPER
	RET

zero:
	MOVQ $0, ret+16(FP)
	VZEROUPPER
	RET
