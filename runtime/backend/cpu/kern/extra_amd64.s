#include "textflag.h"

// Axpy and the exact int8 dot. Numerics: Axpy uses one FMA per element; DotI8 is exact
// (int32, wrapping like Go's int32 arithmetic), so every order gives the same result.

// func axpyAVX512(dst *float32, a float32, x *float32, n int)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	VBROADCASTSS a+8(FP), Z31
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
	CMPQ         CX, $64
	JLT          tail

loop:
	VMOVUPS     (DI), Z0
	VMOVUPS     64(DI), Z1
	VMOVUPS     128(DI), Z2
	VMOVUPS     192(DI), Z3
	VFMADD231PS (SI), Z31, Z0
	VFMADD231PS 64(SI), Z31, Z1
	VFMADD231PS 128(SI), Z31, Z2
	VFMADD231PS 192(SI), Z31, Z3
	VMOVUPS     Z0, (DI)
	VMOVUPS     Z1, 64(DI)
	VMOVUPS     Z2, 128(DI)
	VMOVUPS     Z3, 192(DI)
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         loop

tail:
	TESTQ CX, CX
	JEQ   done
	MOVL  $0xffff, R8

tailloop:
	BZHIL       CX, R8, AX
	KMOVW       AX, K1
	VMOVUPS.Z   (DI), K1, Z0
	VMOVUPS.Z   (SI), K1, Z1
	VFMADD231PS Z1, Z31, Z0
	VMOVUPS     Z0, K1, (DI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JGT         tailloop

done:
	VZEROUPPER
	RET

// func axpyAVX2(dst *float32, a float32, x *float32, n int)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	VBROADCASTSS a+8(FP), Y15
	MOVQ         x+16(FP), SI
	MOVQ         n+24(FP), CX
	CMPQ         CX, $32
	JLT          tail8

loop:
	VMOVUPS     (DI), Y0
	VMOVUPS     32(DI), Y1
	VMOVUPS     64(DI), Y2
	VMOVUPS     96(DI), Y3
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VFMADD231PS 64(SI), Y15, Y2
	VFMADD231PS 96(SI), Y15, Y3
	VMOVUPS     Y0, (DI)
	VMOVUPS     Y1, 32(DI)
	VMOVUPS     Y2, 64(DI)
	VMOVUPS     Y3, 96(DI)
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	CMPQ        CX, $32
	JGE         loop

tail8:
	CMPQ        CX, $8
	JLT         tail1
	VMOVUPS     (DI), Y0
	VFMADD231PS (SI), Y15, Y0
	VMOVUPS     Y0, (DI)
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         tail8

tail1:
	TESTQ CX, CX
	JEQ   done

scalar:
	VMOVSS      (DI), X0
	VFMADD231SS (SI), X15, X0
	VMOVSS      X0, (DI)
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         scalar

done:
	VZEROUPPER
	RET

// DotI8 with AVX512-VNNI: sum(x*w) = sum((x^0x80)*w) - 128*sum(w), x^0x80 = x+128
// read as unsigned; VPDPBUSD sums u8*s8 products in groups of 4 into int32 lanes.

// func dotI8VNNI(x, w *int8, n int) int32
TEXT ·dotI8VNNI(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         w+8(FP), DI
	MOVQ         n+16(FP), CX
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z31
	MOVL         $0x01010101, AX
	VPBROADCASTD AX, Z30
	VPXORD       Z0, Z0, Z0
	VPXORD       Z1, Z1, Z1
	VPXORD       Z2, Z2, Z2
	VPXORD       Z3, Z3, Z3
	CMPQ         CX, $128
	JLT          tail

loop:
	PREFETCHT0 2048(DI)
	PREFETCHT0 2112(DI)
	VPXORD     (SI), Z31, Z4
	VPXORD     64(SI), Z31, Z5
	VMOVDQU8   (DI), Z6
	VMOVDQU8   64(DI), Z7
	VPDPBUSD   Z6, Z4, Z0
	VPDPBUSD   Z7, Z5, Z1
	VPDPBUSD   Z6, Z30, Z2
	VPDPBUSD   Z7, Z30, Z3
	ADDQ       $128, SI
	ADDQ       $128, DI
	SUBQ       $128, CX
	CMPQ       CX, $128
	JGE        loop

tail:
	TESTQ CX, CX
	JEQ   reduce
	MOVQ  $-1, R8

tailloop:
	BZHIQ      CX, R8, AX
	KMOVQ      AX, K1
	VMOVDQU8.Z (SI), K1, Z4
	VMOVDQU8.Z (DI), K1, Z6
	VPXORD     Z31, Z4, Z4
	VPDPBUSD   Z6, Z4, Z0
	VPDPBUSD   Z6, Z30, Z2
	ADDQ       $64, SI
	ADDQ       $64, DI
	SUBQ       $64, CX
	JGT        tailloop

reduce:
	VPADDD        Z1, Z0, Z0
	VPADDD        Z3, Z2, Z2
	VPSLLD        $7, Z2, Z2
	VPSUBD        Z2, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPADDD        X1, X0, X0
	VMOVD         X0, AX
	MOVL          AX, ret+24(FP)
	VZEROUPPER
	RET

// DotI8 with AVX2: sign-extend to int16, VPMADDWD pairs into int32 lanes.

// func dotI8AVX2(x, w *int8, n int) int32
TEXT ·dotI8AVX2(SB), NOSPLIT, $0-28
	MOVQ  x+0(FP), SI
	MOVQ  w+8(FP), DI
	MOVQ  n+16(FP), CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	CMPQ  CX, $32
	JLT   tail16

loop:
	PREFETCHT0 2048(DI)
	VPMOVSXBW  (SI), Y2
	VPMOVSXBW  16(SI), Y3
	VPMOVSXBW  (DI), Y4
	VPMOVSXBW  16(DI), Y5
	VPMADDWD   Y4, Y2, Y2
	VPMADDWD   Y5, Y3, Y3
	VPADDD     Y2, Y0, Y0
	VPADDD     Y3, Y1, Y1
	ADDQ       $32, SI
	ADDQ       $32, DI
	SUBQ       $32, CX
	CMPQ       CX, $32
	JGE        loop

tail16:
	CMPQ      CX, $16
	JLT       reduce
	VPMOVSXBW (SI), Y2
	VPMOVSXBW (DI), Y4
	VPMADDWD  Y4, Y2, Y2
	VPADDD    Y2, Y0, Y0
	ADDQ      $16, SI
	ADDQ      $16, DI
	SUBQ      $16, CX

reduce:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, DX
	TESTQ        CX, CX
	JEQ          done

scalar:
	MOVBLSX (SI), AX
	MOVBLSX (DI), BX
	IMULL   BX, AX
	ADDL    AX, DX
	INCQ    SI
	INCQ    DI
	DECQ    CX
	JNZ     scalar

done:
	MOVL DX, ret+24(FP)
	VZEROUPPER
	RET

// func weighRowsAVX512(out, w, v *float32, n, hd int)
// out[:hd] += Σ_j w[j]·v[j·hd:(j+1)·hd] for j = 0..n-1 in order (n > 0, hd > 0), one
// FMA per element per row as axpyAVX512: out is walked in chunks of 64 values (four
// registers, then masked chunks of 16), each chunk held in registers while every row
// is folded into it.
TEXT ·weighRowsAVX512(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ w+8(FP), BX
	MOVQ v+16(FP), SI
	MOVQ n+24(FP), R9
	MOVQ hd+32(FP), CX
	MOVQ CX, R10
	SHLQ $2, R10 // a row of v in bytes

wchunk:
	CMPQ    CX, $64
	JLT     wtail
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS 128(DI), Z2
	VMOVUPS 192(DI), Z3
	MOVQ    BX, R11
	MOVQ    SI, R12
	MOVQ    R9, R13

wrows:
	VBROADCASTSS (R11), Z31
	VFMADD231PS  (R12), Z31, Z0
	VFMADD231PS  64(R12), Z31, Z1
	VFMADD231PS  128(R12), Z31, Z2
	VFMADD231PS  192(R12), Z31, Z3
	ADDQ         $4, R11
	ADDQ         R10, R12
	DECQ         R13
	JNZ          wrows
	VMOVUPS      Z0, (DI)
	VMOVUPS      Z1, 64(DI)
	VMOVUPS      Z2, 128(DI)
	VMOVUPS      Z3, 192(DI)
	ADDQ         $256, DI
	ADDQ         $256, SI
	SUBQ         $64, CX
	JMP          wchunk

wtail:
	TESTQ CX, CX
	JLE   wdone
	MOVL  $0xffff, R8

wtailchunk:
	BZHIL     CX, R8, AX
	KMOVW     AX, K1
	VMOVUPS.Z (DI), K1, Z0
	MOVQ      BX, R11
	MOVQ      SI, R12
	MOVQ      R9, R13

wtailrows:
	VBROADCASTSS (R11), Z31
	VMOVUPS.Z    (R12), K1, Z1
	VFMADD231PS  Z1, Z31, Z0
	ADDQ         $4, R11
	ADDQ         R10, R12
	DECQ         R13
	JNZ          wtailrows
	VMOVUPS      Z0, K1, (DI)
	ADDQ         $64, DI
	ADDQ         $64, SI
	SUBQ         $16, CX
	JGT          wtailchunk

wdone:
	VZEROUPPER
	RET
