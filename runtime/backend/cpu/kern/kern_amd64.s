#include "textflag.h"

// Accumulation structure (the batch-invariance contract): every kernel of one level
// sums a row exactly the same way, whether it computes one row or four.
//
// AVX-512: 4 accumulators A0..A3 of 16 lanes. Element i goes to accumulator
// (i/16)%4, lane i%16, summed with FMA in increasing i. A ragged end is processed in
// 16-element chunks with zero-masked loads (chunk j of the tail goes to A_j), which is
// the same as zero-padding the row to a multiple of 64. Reduction:
// ((A0+A1)+(A2+A3)), then halves 256, 128, 64, 32 bits folded in that order.
//
// AVX2: 3 accumulators A0..A2 of 8 lanes, 24 elements per step; up to two whole
// 8-element chunks of the tail go to A0 then A1; reduction (A0+A1)+A2 then halves
// 128, 64, 32; the last n%8 elements are then added one by one with scalar FMA.
//
// The main loops prefetch the weight stream 2 KiB ahead (into the next row when the
// caller walks a matrix): worth ~15-25% of single-core streaming bandwidth here.
// Prefetches never fault, so running past the end of w is harmless. The AVX-512 fp32
// kernels prefetch into L2 (T2): measured ~5-10% better than T0 there (the 4-row kernel
// most), while the int8 kernels stream better with T0.

// REDUCE16 folds za..zd into the low lane of xa; zb (yb, xb) is scratch.
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

// REDUCE8 folds ya..yc into the low lane of xa; yb (xb) is scratch.
#define REDUCE8(ya, yb, yc, xa, xb) \
	VADDPS       yb, ya, ya; \
	VADDPS       yc, ya, ya; \
	VEXTRACTF128 $1, ya, xb; \
	VADDPS       xb, xa, xa; \
	VMOVHLPS     xa, xa, xb; \
	VADDPS       xb, xa, xa; \
	VMOVSHDUP    xa, xb; \
	VADDSS       xb, xa, xa

// K1 = lanes min(CX,16) of 16 (R8 holds 0xffff).
#define MASK16 \
	BZHIL CX, R8, AX; \
	KMOVW AX, K1

// ---------------------------------------------------------------- AVX-512, fp32

// One tail chunk of the one-row fp32 kernel into acc.
#define TAIL1F(acc) \
	MASK16; \
	VMOVUPS.Z   (DI), K1, Z4; \
	VMOVUPS.Z   (SI), K1, Z5; \
	VFMADD231PS Z5, Z4, acc; \
	ADDQ        $64, SI; \
	ADDQ        $64, DI; \
	SUBQ        $16, CX

// func dotAVX512(x, w *float32, n int) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   w+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JLT    tail

loop:
	PREFETCHT2  2048(DI)
	PREFETCHT2  2112(DI)
	PREFETCHT2  2176(DI)
	PREFETCHT2  2240(DI)
	VMOVUPS     (DI), Z4
	VMOVUPS     64(DI), Z5
	VMOVUPS     128(DI), Z6
	VMOVUPS     192(DI), Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         loop

tail:
	TESTQ CX, CX
	JEQ   reduce
	MOVL  $0xffff, R8
	TAIL1F(Z0)
	JLE   reduce
	TAIL1F(Z1)
	JLE   reduce
	TAIL1F(Z2)
	JLE   reduce
	TAIL1F(Z3)

reduce:
	REDUCE16(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// One tail chunk of the four-row fp32 kernel into accumulator j of each row.
#define TAIL4F(a0, a1, a2, a3) \
	MASK16; \
	VMOVUPS.Z   (DI), K1, Z16; \
	VMOVUPS.Z   (SI), K1, Z20; \
	VMOVUPS.Z   (R9), K1, Z21; \
	VMOVUPS.Z   (R10), K1, Z22; \
	VMOVUPS.Z   (R11), K1, Z23; \
	VFMADD231PS Z20, Z16, a0; \
	VFMADD231PS Z21, Z16, a1; \
	VFMADD231PS Z22, Z16, a2; \
	VFMADD231PS Z23, Z16, a3; \
	ADDQ        $64, SI; \
	ADDQ        $64, R9; \
	ADDQ        $64, R10; \
	ADDQ        $64, R11; \
	ADDQ        $64, DI; \
	SUBQ        $16, CX

// Row r uses accumulators Z(4r)..Z(4r+3); weights in Z16..Z19.
// func dot4AVX512(out *[4]float32, x *float32, ldx int, w *float32, n int)
TEXT ·dot4AVX512(SB), NOSPLIT, $0-40
	MOVQ   x+8(FP), SI
	MOVQ   ldx+16(FP), DX
	MOVQ   w+24(FP), DI
	MOVQ   n+32(FP), CX
	SHLQ   $2, DX
	LEAQ   (SI)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
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
	CMPQ   CX, $64
	JLT    tail

loop:
	PREFETCHT2  2048(DI)
	PREFETCHT2  2112(DI)
	PREFETCHT2  2176(DI)
	PREFETCHT2  2240(DI)
	VMOVUPS     (DI), Z16
	VMOVUPS     64(DI), Z17
	VMOVUPS     128(DI), Z18
	VMOVUPS     192(DI), Z19
	VFMADD231PS (SI), Z16, Z0
	VFMADD231PS 64(SI), Z17, Z1
	VFMADD231PS 128(SI), Z18, Z2
	VFMADD231PS 192(SI), Z19, Z3
	VFMADD231PS (R9), Z16, Z4
	VFMADD231PS 64(R9), Z17, Z5
	VFMADD231PS 128(R9), Z18, Z6
	VFMADD231PS 192(R9), Z19, Z7
	VFMADD231PS (R10), Z16, Z8
	VFMADD231PS 64(R10), Z17, Z9
	VFMADD231PS 128(R10), Z18, Z10
	VFMADD231PS 192(R10), Z19, Z11
	VFMADD231PS (R11), Z16, Z12
	VFMADD231PS 64(R11), Z17, Z13
	VFMADD231PS 128(R11), Z18, Z14
	VFMADD231PS 192(R11), Z19, Z15
	ADDQ        $256, SI
	ADDQ        $256, R9
	ADDQ        $256, R10
	ADDQ        $256, R11
	ADDQ        $256, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         loop

tail:
	TESTQ CX, CX
	JEQ   reduce
	MOVL  $0xffff, R8
	TAIL4F(Z0, Z4, Z8, Z12)
	JLE   reduce
	TAIL4F(Z1, Z5, Z9, Z13)
	JLE   reduce
	TAIL4F(Z2, Z6, Z10, Z14)
	JLE   reduce
	TAIL4F(Z3, Z7, Z11, Z15)

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

// ---------------------------------------------------------------- AVX-512, int8

#define TAIL1Q(acc) \
	MASK16; \
	VMOVDQU8.Z  (DI), K1, X4; \
	VPMOVSXBD   X4, Z4; \
	VCVTDQ2PS   Z4, Z4; \
	VMOVUPS.Z   (SI), K1, Z5; \
	VFMADD231PS Z5, Z4, acc; \
	ADDQ        $64, SI; \
	ADDQ        $16, DI; \
	SUBQ        $16, CX

// func dotQ8AVX512(x *float32, w *int8, n int) float32
TEXT ·dotQ8AVX512(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   w+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	CMPQ   CX, $64
	JLT    tail

loop:
	PREFETCHT0  2048(DI)
	VPMOVSXBD   (DI), Z4
	VPMOVSXBD   16(DI), Z5
	VPMOVSXBD   32(DI), Z6
	VPMOVSXBD   48(DI), Z7
	VCVTDQ2PS   Z4, Z4
	VCVTDQ2PS   Z5, Z5
	VCVTDQ2PS   Z6, Z6
	VCVTDQ2PS   Z7, Z7
	VFMADD231PS (SI), Z4, Z0
	VFMADD231PS 64(SI), Z5, Z1
	VFMADD231PS 128(SI), Z6, Z2
	VFMADD231PS 192(SI), Z7, Z3
	ADDQ        $256, SI
	ADDQ        $64, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         loop

tail:
	TESTQ CX, CX
	JEQ   reduce
	MOVL  $0xffff, R8
	TAIL1Q(Z0)
	JLE   reduce
	TAIL1Q(Z1)
	JLE   reduce
	TAIL1Q(Z2)
	JLE   reduce
	TAIL1Q(Z3)

reduce:
	REDUCE16(Z0, Z1, Z2, Z3, Y0, Y1, X0, X1)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

#define TAIL4Q(a0, a1, a2, a3) \
	MASK16; \
	VMOVDQU8.Z  (DI), K1, X16; \
	VPMOVSXBD   X16, Z16; \
	VCVTDQ2PS   Z16, Z16; \
	VMOVUPS.Z   (SI), K1, Z20; \
	VMOVUPS.Z   (R9), K1, Z21; \
	VMOVUPS.Z   (R10), K1, Z22; \
	VMOVUPS.Z   (R11), K1, Z23; \
	VFMADD231PS Z20, Z16, a0; \
	VFMADD231PS Z21, Z16, a1; \
	VFMADD231PS Z22, Z16, a2; \
	VFMADD231PS Z23, Z16, a3; \
	ADDQ        $64, SI; \
	ADDQ        $64, R9; \
	ADDQ        $64, R10; \
	ADDQ        $64, R11; \
	ADDQ        $16, DI; \
	SUBQ        $16, CX

// func dot4Q8AVX512(out *[4]float32, x *float32, ldx int, w *int8, n int)
TEXT ·dot4Q8AVX512(SB), NOSPLIT, $0-40
	MOVQ   x+8(FP), SI
	MOVQ   ldx+16(FP), DX
	MOVQ   w+24(FP), DI
	MOVQ   n+32(FP), CX
	SHLQ   $2, DX
	LEAQ   (SI)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
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
	CMPQ   CX, $64
	JLT    tail

loop:
	PREFETCHT0  2048(DI)
	VPMOVSXBD   (DI), Z16
	VPMOVSXBD   16(DI), Z17
	VPMOVSXBD   32(DI), Z18
	VPMOVSXBD   48(DI), Z19
	VCVTDQ2PS   Z16, Z16
	VCVTDQ2PS   Z17, Z17
	VCVTDQ2PS   Z18, Z18
	VCVTDQ2PS   Z19, Z19
	VFMADD231PS (SI), Z16, Z0
	VFMADD231PS 64(SI), Z17, Z1
	VFMADD231PS 128(SI), Z18, Z2
	VFMADD231PS 192(SI), Z19, Z3
	VFMADD231PS (R9), Z16, Z4
	VFMADD231PS 64(R9), Z17, Z5
	VFMADD231PS 128(R9), Z18, Z6
	VFMADD231PS 192(R9), Z19, Z7
	VFMADD231PS (R10), Z16, Z8
	VFMADD231PS 64(R10), Z17, Z9
	VFMADD231PS 128(R10), Z18, Z10
	VFMADD231PS 192(R10), Z19, Z11
	VFMADD231PS (R11), Z16, Z12
	VFMADD231PS 64(R11), Z17, Z13
	VFMADD231PS 128(R11), Z18, Z14
	VFMADD231PS 192(R11), Z19, Z15
	ADDQ        $256, SI
	ADDQ        $256, R9
	ADDQ        $256, R10
	ADDQ        $256, R11
	ADDQ        $64, DI
	SUBQ        $64, CX
	CMPQ        CX, $64
	JGE         loop

tail:
	TESTQ CX, CX
	JEQ   reduce
	MOVL  $0xffff, R8
	TAIL4Q(Z0, Z4, Z8, Z12)
	JLE   reduce
	TAIL4Q(Z1, Z5, Z9, Z13)
	JLE   reduce
	TAIL4Q(Z2, Z6, Z10, Z14)
	JLE   reduce
	TAIL4Q(Z3, Z7, Z11, Z15)

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

// ---------------------------------------------------------------- AVX2, fp32

// func dotAVX2(x, w *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ  x+0(FP), SI
	MOVQ  w+8(FP), DI
	MOVQ  n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	CMPQ  CX, $24
	JLT   tail

loop:
	PREFETCHT0  2048(DI)
	PREFETCHT0  2112(DI)
	VMOVUPS     (DI), Y4
	VMOVUPS     32(DI), Y5
	VMOVUPS     64(DI), Y6
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	ADDQ        $96, SI
	ADDQ        $96, DI
	SUBQ        $24, CX
	CMPQ        CX, $24
	JGE         loop

tail:
	CMPQ        CX, $8
	JLT         reduce
	VMOVUPS     (DI), Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JLT         reduce
	VMOVUPS     (DI), Y4
	VFMADD231PS (SI), Y4, Y1
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX

reduce:
	REDUCE8(Y0, Y1, Y2, X0, X1)
	TESTQ CX, CX
	JEQ   done

scalar:
	VMOVSS      (DI), X1
	VFMADD231SS (SI), X1, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JNZ         scalar

done:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// Row r uses accumulators Y(3r)..Y(3r+2); weights in Y12..Y14.
// func dot4AVX2(out *[4]float32, x *float32, ldx int, w *float32, n int)
TEXT ·dot4AVX2(SB), NOSPLIT, $0-40
	MOVQ   x+8(FP), SI
	MOVQ   ldx+16(FP), DX
	MOVQ   w+24(FP), DI
	MOVQ   n+32(FP), CX
	SHLQ   $2, DX
	LEAQ   (SI)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	CMPQ   CX, $24
	JLT    tail

loop:
	PREFETCHT0  2048(DI)
	PREFETCHT0  2112(DI)
	VMOVUPS     (DI), Y12
	VMOVUPS     32(DI), Y13
	VMOVUPS     64(DI), Y14
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS 32(SI), Y13, Y1
	VFMADD231PS 64(SI), Y14, Y2
	VFMADD231PS (R9), Y12, Y3
	VFMADD231PS 32(R9), Y13, Y4
	VFMADD231PS 64(R9), Y14, Y5
	VFMADD231PS (R10), Y12, Y6
	VFMADD231PS 32(R10), Y13, Y7
	VFMADD231PS 64(R10), Y14, Y8
	VFMADD231PS (R11), Y12, Y9
	VFMADD231PS 32(R11), Y13, Y10
	VFMADD231PS 64(R11), Y14, Y11
	ADDQ        $96, SI
	ADDQ        $96, R9
	ADDQ        $96, R10
	ADDQ        $96, R11
	ADDQ        $96, DI
	SUBQ        $24, CX
	CMPQ        CX, $24
	JGE         loop

tail:
	CMPQ        CX, $8
	JLT         reduce
	VMOVUPS     (DI), Y12
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS (R9), Y12, Y3
	VFMADD231PS (R10), Y12, Y6
	VFMADD231PS (R11), Y12, Y9
	ADDQ        $32, SI
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	ADDQ        $32, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JLT         reduce
	VMOVUPS     (DI), Y12
	VFMADD231PS (SI), Y12, Y1
	VFMADD231PS (R9), Y12, Y4
	VFMADD231PS (R10), Y12, Y7
	VFMADD231PS (R11), Y12, Y10
	ADDQ        $32, SI
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	ADDQ        $32, DI
	SUBQ        $8, CX

reduce:
	REDUCE8(Y0, Y1, Y2, X0, X1)
	REDUCE8(Y3, Y4, Y5, X3, X4)
	REDUCE8(Y6, Y7, Y8, X6, X7)
	REDUCE8(Y9, Y10, Y11, X9, X10)
	TESTQ CX, CX
	JEQ   done

scalar:
	VMOVSS      (DI), X12
	VFMADD231SS (SI), X12, X0
	VFMADD231SS (R9), X12, X3
	VFMADD231SS (R10), X12, X6
	VFMADD231SS (R11), X12, X9
	ADDQ        $4, SI
	ADDQ        $4, R9
	ADDQ        $4, R10
	ADDQ        $4, R11
	ADDQ        $4, DI
	DECQ        CX
	JNZ         scalar

done:
	MOVQ   out+0(FP), AX
	VMOVSS X0, (AX)
	VMOVSS X3, 4(AX)
	VMOVSS X6, 8(AX)
	VMOVSS X9, 12(AX)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- AVX2, int8

// func dotQ8AVX2(x *float32, w *int8, n int) float32
TEXT ·dotQ8AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   w+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	CMPQ   CX, $24
	JLT    tail

loop:
	PREFETCHT0  2048(DI)
	VPMOVSXBD   (DI), Y4
	VPMOVSXBD   8(DI), Y5
	VPMOVSXBD   16(DI), Y6
	VCVTDQ2PS   Y4, Y4
	VCVTDQ2PS   Y5, Y5
	VCVTDQ2PS   Y6, Y6
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	ADDQ        $96, SI
	ADDQ        $24, DI
	SUBQ        $24, CX
	CMPQ        CX, $24
	JGE         loop

tail:
	CMPQ        CX, $8
	JLT         reduce
	VPMOVSXBD   (DI), Y4
	VCVTDQ2PS   Y4, Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $8, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JLT         reduce
	VPMOVSXBD   (DI), Y4
	VCVTDQ2PS   Y4, Y4
	VFMADD231PS (SI), Y4, Y1
	ADDQ        $32, SI
	ADDQ        $8, DI
	SUBQ        $8, CX

reduce:
	REDUCE8(Y0, Y1, Y2, X0, X1)
	TESTQ CX, CX
	JEQ   done

scalar:
	MOVBLSX     (DI), AX
	VCVTSI2SSL  AX, X1, X1
	VFMADD231SS (SI), X1, X0
	ADDQ        $4, SI
	INCQ        DI
	DECQ        CX
	JNZ         scalar

done:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dot4Q8AVX2(out *[4]float32, x *float32, ldx int, w *int8, n int)
TEXT ·dot4Q8AVX2(SB), NOSPLIT, $0-40
	MOVQ   x+8(FP), SI
	MOVQ   ldx+16(FP), DX
	MOVQ   w+24(FP), DI
	MOVQ   n+32(FP), CX
	SHLQ   $2, DX
	LEAQ   (SI)(DX*1), R9
	LEAQ   (R9)(DX*1), R10
	LEAQ   (R10)(DX*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	CMPQ   CX, $24
	JLT    tail

loop:
	PREFETCHT0  2048(DI)
	VPMOVSXBD   (DI), Y12
	VPMOVSXBD   8(DI), Y13
	VPMOVSXBD   16(DI), Y14
	VCVTDQ2PS   Y12, Y12
	VCVTDQ2PS   Y13, Y13
	VCVTDQ2PS   Y14, Y14
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS 32(SI), Y13, Y1
	VFMADD231PS 64(SI), Y14, Y2
	VFMADD231PS (R9), Y12, Y3
	VFMADD231PS 32(R9), Y13, Y4
	VFMADD231PS 64(R9), Y14, Y5
	VFMADD231PS (R10), Y12, Y6
	VFMADD231PS 32(R10), Y13, Y7
	VFMADD231PS 64(R10), Y14, Y8
	VFMADD231PS (R11), Y12, Y9
	VFMADD231PS 32(R11), Y13, Y10
	VFMADD231PS 64(R11), Y14, Y11
	ADDQ        $96, SI
	ADDQ        $96, R9
	ADDQ        $96, R10
	ADDQ        $96, R11
	ADDQ        $24, DI
	SUBQ        $24, CX
	CMPQ        CX, $24
	JGE         loop

tail:
	CMPQ        CX, $8
	JLT         reduce
	VPMOVSXBD   (DI), Y12
	VCVTDQ2PS   Y12, Y12
	VFMADD231PS (SI), Y12, Y0
	VFMADD231PS (R9), Y12, Y3
	VFMADD231PS (R10), Y12, Y6
	VFMADD231PS (R11), Y12, Y9
	ADDQ        $32, SI
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	ADDQ        $8, DI
	SUBQ        $8, CX
	CMPQ        CX, $8
	JLT         reduce
	VPMOVSXBD   (DI), Y12
	VCVTDQ2PS   Y12, Y12
	VFMADD231PS (SI), Y12, Y1
	VFMADD231PS (R9), Y12, Y4
	VFMADD231PS (R10), Y12, Y7
	VFMADD231PS (R11), Y12, Y10
	ADDQ        $32, SI
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	ADDQ        $8, DI
	SUBQ        $8, CX

reduce:
	REDUCE8(Y0, Y1, Y2, X0, X1)
	REDUCE8(Y3, Y4, Y5, X3, X4)
	REDUCE8(Y6, Y7, Y8, X6, X7)
	REDUCE8(Y9, Y10, Y11, X9, X10)
	TESTQ CX, CX
	JEQ   done

scalar:
	MOVBLSX     (DI), AX
	VCVTSI2SSL  AX, X12, X12
	VFMADD231SS (SI), X12, X0
	VFMADD231SS (R9), X12, X3
	VFMADD231SS (R10), X12, X6
	VFMADD231SS (R11), X12, X9
	ADDQ        $4, SI
	ADDQ        $4, R9
	ADDQ        $4, R10
	ADDQ        $4, R11
	INCQ        DI
	DECQ        CX
	JNZ         scalar

done:
	MOVQ   out+0(FP), AX
	VMOVSS X0, (AX)
	VMOVSS X3, 4(AX)
	VMOVSS X6, 8(AX)
	VMOVSS X9, 12(AX)
	VZEROUPPER
	RET
