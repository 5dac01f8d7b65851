#include "textflag.h"

// 8-wide attention heads (see attn8.go for the numerics). AVX2 only: the AVX-512 level
// runs these too (a head is one YMM register).

// func scores8AVX2(dst, q, k *float32, n int, scale float32)
// n is a positive multiple of 8. Eight key rows per step: eight products, then a
// VHADDPS tree whose adds pair exactly as ((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7)).
TEXT ·scores8AVX2(SB), NOSPLIT, $0-36
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), AX
	MOVQ         k+16(FP), SI
	MOVQ         n+24(FP), CX
	VBROADCASTSS scale+32(FP), Y14
	VMOVUPS      (AX), Y15

loop:
	VMULPS     (SI), Y15, Y0
	VMULPS     32(SI), Y15, Y1
	VMULPS     64(SI), Y15, Y2
	VMULPS     96(SI), Y15, Y3
	VMULPS     128(SI), Y15, Y4
	VMULPS     160(SI), Y15, Y5
	VMULPS     192(SI), Y15, Y6
	VMULPS     224(SI), Y15, Y7
	// [p0(01) p0(23) p1(01) p1(23) | p0(45) p0(67) p1(45) p1(67)] and so on.
	VHADDPS    Y1, Y0, Y0
	VHADDPS    Y3, Y2, Y2
	VHADDPS    Y5, Y4, Y4
	VHADDPS    Y7, Y6, Y6
	// [p0(0..3) p1(0..3) p2(0..3) p3(0..3) | p0(4..7) p1(4..7) p2(4..7) p3(4..7)]
	VHADDPS    Y2, Y0, Y0
	VHADDPS    Y6, Y4, Y4
	VPERM2F128 $0x20, Y4, Y0, Y1
	VPERM2F128 $0x31, Y4, Y0, Y2
	VADDPS     Y2, Y1, Y1
	VMULPS     Y14, Y1, Y1
	VMOVUPS    Y1, (DI)
	ADDQ       $256, SI
	ADDQ       $32, DI
	SUBQ       $8, CX
	JGT        loop
	VZEROUPPER
	RET

// func weigh8AVX2(out, w, v *float32, n int)
// n > 0. Row j of v is accumulated with FMA into Y(j%4); then out += (Y0+Y1)+(Y2+Y3).
TEXT ·weigh8AVX2(SB), NOSPLIT, $0-32
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), AX
	MOVQ   v+16(FP), SI
	MOVQ   n+24(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ   CX, $4
	JLT    tail

loop:
	VBROADCASTSS (AX), Y4
	VBROADCASTSS 4(AX), Y5
	VBROADCASTSS 8(AX), Y6
	VBROADCASTSS 12(AX), Y7
	VFMADD231PS  (SI), Y4, Y0
	VFMADD231PS  32(SI), Y5, Y1
	VFMADD231PS  64(SI), Y6, Y2
	VFMADD231PS  96(SI), Y7, Y3
	ADDQ         $16, AX
	ADDQ         $128, SI
	SUBQ         $4, CX
	CMPQ         CX, $4
	JGE          loop

tail:
	TESTQ        CX, CX
	JEQ          sum
	VBROADCASTSS (AX), Y4
	VFMADD231PS  (SI), Y4, Y0
	CMPQ         CX, $1
	JEQ          sum
	VBROADCASTSS 4(AX), Y5
	VFMADD231PS  32(SI), Y5, Y1
	CMPQ         CX, $2
	JEQ          sum
	VBROADCASTSS 8(AX), Y6
	VFMADD231PS  64(SI), Y6, Y2

sum:
	VADDPS  Y1, Y0, Y0
	VADDPS  Y3, Y2, Y2
	VADDPS  Y2, Y0, Y0
	VADDPS  (DI), Y0, Y0
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET
