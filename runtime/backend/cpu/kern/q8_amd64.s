#include "textflag.h"

// Q8_0 x Q8_0 with AVX512-VNNI on 256-bit registers (one Q8_0 block per register); see
// q8.go for the numerics. VPDPBUSD multiplies unsigned by signed bytes, so the weight
// bytes are flipped to unsigned (w^0x80 = w+128) and the accumulator starts at
// -128·Σa per lane: I = Σ(w+128)·a − 128·Σa = Σ w·a, exactly.

// CORR computes the lanes' correction -128·Σa of the activation block in a into c,
// using z as scratch. Y31 holds 0x80 in every byte.
#define CORR(a, c, z) \
	VPXORD   c, c, c;   \
	VPDPBUSD a, Y31, c; \
	VPXORD   z, z, z;   \
	VPSUBD   c, z, c

// STEP adds one block product to acc: i = c + (w^0x80)·a; acc = fma(cvt(i), dw·da, acc).
// It overwrites dw with the product of the scales.
#define STEP(a, c, da, wu, dw, i, acc) \
	VMOVDQA32   c, i;      \
	VPDPBUSD    a, wu, i;  \
	VCVTDQ2PS   i, i;      \
	VMULPS      da, dw, dw; \
	VFMADD231PS dw, i, acc

// WEIGHT loads the block at p: wu = its bytes ^ 0x80, dw = its scale in all lanes.
#define WEIGHT(p, wu, dw, xdw) \
	VPXORD       2(p), Y31, wu; \
	VPBROADCASTW (p), xdw;      \
	VCVTPH2PS    xdw, dw

// REDUCE4 folds four 8-lane accumulators (registers below Y16: VHADDPS has no EVEX
// form) into the low lanes r0..r3 of x0 (the xmm of a0), each
// ((L0+L1)+(L2+L3)) + ((L4+L5)+(L6+L7)); clobbers all four and x1 (the xmm of a1).
#define REDUCE4(a0, a1, a2, a3, x0, x1) \
	VHADDPS      a1, a0, a1; \
	VHADDPS      a3, a2, a3; \
	VHADDPS      a3, a1, a0; \
	VEXTRACTF128 $1, a0, x1; \
	VADDPS       x1, x0, x0

// func q8Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, qa *int8, da *float32)
// The four rows are one contiguous stretch of the matrix, walked as four short streams
// (one row each: 2176 bytes at width 2048) that the hardware prefetcher cannot get
// ahead of; so each step prefetches the next row group's bytes, 136 a step, 2 KiB
// ahead of where its walk will start. Measured on the TinyLlama FFN shape streaming
// from memory: 9 GB/s per CPU-second without, 16-18 with. Prefetches never fault, so
// running past the matrix is harmless.
TEXT ·q8Rows4VNNI(SB), NOSPLIT, $0-48
	MOVQ         out+0(FP), AX
	MOVQ         w+8(FP), R8
	MOVQ         ldw+16(FP), DX
	MOVQ         nb+24(FP), CX
	MOVQ         qa+32(FP), SI
	MOVQ         da+40(FP), DI
	LEAQ         (R8)(DX*1), R9
	LEAQ         (R9)(DX*1), R10
	LEAQ         (R10)(DX*1), R11
	LEAQ         2048(R11)(DX*1), R12 // prefetch pointer: the next row group, 2 KiB on
	MOVL         $0x80808080, BX
	VPBROADCASTD BX, Y31
	VPXORD       Y0, Y0, Y0
	VPXORD       Y1, Y1, Y1
	VPXORD       Y2, Y2, Y2
	VPXORD       Y3, Y3, Y3

loop:
	PREFETCHT0   (R12)
	PREFETCHT0   64(R12)
	PREFETCHT0   128(R12)
	ADDQ         $136, R12
	VMOVDQU32    (SI), Y16
	CORR(Y16, Y17, Y18)
	VBROADCASTSS (DI), Y19
	WEIGHT(R8, Y20, Y21, X21)
	WEIGHT(R9, Y22, Y23, X23)
	WEIGHT(R10, Y24, Y25, X25)
	WEIGHT(R11, Y26, Y27, X27)
	STEP(Y16, Y17, Y19, Y20, Y21, Y28, Y0)
	STEP(Y16, Y17, Y19, Y22, Y23, Y29, Y1)
	STEP(Y16, Y17, Y19, Y24, Y25, Y30, Y2)
	STEP(Y16, Y17, Y19, Y26, Y27, Y28, Y3)
	ADDQ         $34, R8
	ADDQ         $34, R9
	ADDQ         $34, R10
	ADDQ         $34, R11
	ADDQ         $32, SI
	ADDQ         $4, DI
	DECQ         CX
	JNZ          loop

	REDUCE4(Y0, Y1, Y2, Y3, X0, X1)
	VMOVUPS X0, (AX)
	VZEROUPPER
	RET

// The tile: token t's accumulators are Y(4t)..Y(4t+3) (rows 0..3), its activation
// block Y(16+t), its corrections Y(20+t); row r's packed weights go through Y26 and each
// block product's integer lanes through Y27..Y30.
//
// What binds it: three of the four vector operations a block product took (VPDPBUSD,
// VMULPS for d_w·d_a, VFMADD231PS; VCVTDQ2PS runs on the adders and the register copy
// is renamed away) share the two pipes that multiply — measured on this Zen 4 class
// EPYC: each alone 2 a cycle, any two together still 2, VCVTDQ2PS alongside either 4.
// So the 16 products d_w·d_a of a block are computed by one 512-bit VMULPS, for up to
// 32 blocks ahead into a 2 KiB frame scratch (p[16b+4t+r] = pd[4b+r]·da4[4b+t], the
// same rounded float32 product), and the FMA takes its product from there as an
// embedded broadcast (a load, no pipe of its own): two multiplier operations per block
// product instead of three, 1.35x the tile's throughput. Computing the products just
// before their use (four at a time, into a 64-byte scratch) was a third slower: the
// broadcasts waited on store forwarding; a chunk ahead, the stores have long retired.
// (512-bit variants did not pay: Zen 4 runs them as two 256-bit halves on the same
// pipes, and a register holding two (row, token) pairs needs two different products,
// which costs a VMULPS or a permute per register — bench/NOTES.md.)

// QSTEP: i = c + (w^0x80)·a; acc = fma(cvt(i), p[off], acc).
#define QSTEP(a, c, off, i, acc) \
	VMOVDQA32        c, i;      \
	VPDPBUSD         a, Y26, i; \
	VCVTDQ2PS        i, i;      \
	VFMADD231PS.BCST off(R10), i, acc

// QROW: row r of the block against the four tokens.
#define QROW(r, a0, a1, a2, a3) \
	VMOVDQU32 (32*r)(R8), Y26;          \
	QSTEP(Y16, Y20, (4*r), Y27, a0);    \
	QSTEP(Y17, Y21, (16+4*r), Y28, a1); \
	QSTEP(Y18, Y22, (32+4*r), Y29, a2); \
	QSTEP(Y19, Y23, (48+4*r), Y30, a3)

// q8quad<> is the VPERMPS index putting da4[4b+t] in lanes 4t..4t+3.
DATA  q8quad<>+0(SB)/8, $0x0000000000000000
DATA  q8quad<>+8(SB)/8, $0x0000000000000000
DATA  q8quad<>+16(SB)/8, $0x0000000100000001
DATA  q8quad<>+24(SB)/8, $0x0000000100000001
DATA  q8quad<>+32(SB)/8, $0x0000000200000002
DATA  q8quad<>+40(SB)/8, $0x0000000200000002
DATA  q8quad<>+48(SB)/8, $0x0000000300000003
DATA  q8quad<>+56(SB)/8, $0x0000000300000003
GLOBL q8quad<>(SB), RODATA|NOPTR, $64

// func q8Tile4x4VNNI(out *[16]float32, pw *byte, pd *float32, nb int, qa *int8, lda int, da4 *float32, ca *int32, ldc int)
// The frame holds the products' scratch (2 KiB, aligned to 64 bytes inside it).
TEXT ·q8Tile4x4VNNI(SB), $2112-72
	MOVQ      pw+8(FP), R8
	MOVQ      pd+16(FP), BX
	MOVQ      nb+24(FP), CX
	MOVQ      qa+32(FP), SI
	MOVQ      lda+40(FP), DX
	MOVQ      da4+48(FP), DI
	MOVQ      ca+56(FP), R13
	MOVQ      ldc+64(FP), R15
	SHLQ      $2, R15             // ldc in bytes
	LEAQ      (DX)(DX*2), R14     // 3·lda
	LEAQ      (R15)(R15*2), AX    // 3·ldc
	LEAQ      63(SP), R12
	ANDQ      $-64, R12           // the products' scratch
	VMOVDQU32 q8quad<>(SB), Z31
	VPXORD    Y0, Y0, Y0
	VPXORD    Y1, Y1, Y1
	VPXORD    Y2, Y2, Y2
	VPXORD    Y3, Y3, Y3
	VPXORD    Y4, Y4, Y4
	VPXORD    Y5, Y5, Y5
	VPXORD    Y6, Y6, Y6
	VPXORD    Y7, Y7, Y7
	VPXORD    Y8, Y8, Y8
	VPXORD    Y9, Y9, Y9
	VPXORD    Y10, Y10, Y10
	VPXORD    Y11, Y11, Y11
	VPXORD    Y12, Y12, Y12
	VPXORD    Y13, Y13, Y13
	VPXORD    Y14, Y14, Y14
	VPXORD    Y15, Y15, Y15

tchunk:
	MOVQ    $32, R9
	CMPQ    CX, R9
	CMOVQLT CX, R9                // R9 = blocks in this chunk: min(left, 32)
	SUBQ    R9, CX
	MOVQ    R12, R10
	MOVQ    R9, R11

tprod:
	VBROADCASTF32X4 (BX), Z24     // pd[4b+r] in lane 4t+r
	VMOVUPS         (DI), X25
	VPERMPS         Z25, Z31, Z25 // da4[4b+t] in lane 4t+r
	VMULPS          Z25, Z24, Z24
	VMOVUPS         Z24, (R10)
	ADDQ            $16, BX
	ADDQ            $16, DI
	ADDQ            $64, R10
	DECQ            R11
	JNZ             tprod

	MOVQ R12, R10

tloop:
	VMOVDQU32 (SI), Y16
	VMOVDQU32 (SI)(DX*1), Y17
	VMOVDQU32 (SI)(DX*2), Y18
	VMOVDQU32 (SI)(R14*1), Y19
	VMOVDQU32 (R13), Y20
	VMOVDQU32 (R13)(R15*1), Y21
	VMOVDQU32 (R13)(R15*2), Y22
	VMOVDQU32 (R13)(AX*1), Y23
	QROW(0, Y0, Y4, Y8, Y12)
	QROW(1, Y1, Y5, Y9, Y13)
	QROW(2, Y2, Y6, Y10, Y14)
	QROW(3, Y3, Y7, Y11, Y15)
	ADDQ      $128, R8
	ADDQ      $32, SI
	ADDQ      $32, R13
	ADDQ      $64, R10
	DECQ      R9
	JNZ       tloop
	TESTQ     CX, CX
	JNZ       tchunk

	MOVQ    out+0(FP), AX
	REDUCE4(Y0, Y1, Y2, Y3, X0, X1)
	VMOVUPS X0, (AX)
	REDUCE4(Y4, Y5, Y6, Y7, X4, X5)
	VMOVUPS X4, 16(AX)
	REDUCE4(Y8, Y9, Y10, Y11, X8, X9)
	VMOVUPS X8, 32(AX)
	REDUCE4(Y12, Y13, Y14, Y15, X12, X13)
	VMOVUPS X12, 48(AX)
	VZEROUPPER
	RET

// func quantizeQ8AVX512(qa *int8, da *float32, x *float32, nb int)
// Per block of 32: d = fp16(max|x|/127) (VCVTPS2PH rounds to nearest even) as float32;
// q = nearest-even(x·(127/max|x|)) (clamped to ±127, which it never exceeds), all zero
// when max|x| = 0: llama.cpp's x86 quantize_row_q8_0.
TEXT ·quantizeQ8AVX512(SB), NOSPLIT, $0-32
	MOVQ         qa+0(FP), DI
	MOVQ         da+8(FP), BX
	MOVQ         x+16(FP), SI
	MOVQ         nb+24(FP), CX
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z31           // abs mask
	MOVL         $0x42fe0000, AX   // 127.0
	VMOVD        AX, X30
	MOVL         $0x42fe0000, AX
	VPBROADCASTD AX, Z28           // 127.0 in every lane
	MOVL         $0xc2fe0000, AX
	VPBROADCASTD AX, Z27           // -127.0

qloop:
	VMOVUPS       (SI), Z0
	VMOVUPS       64(SI), Z1
	VPANDD        Z31, Z0, Z2
	VPANDD        Z31, Z1, Z3
	VMAXPS        Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VMAXPS        Y3, Y2, Y2
	VEXTRACTF128  $1, Y2, X3
	VMAXPS        X3, X2, X2
	VMOVHLPS      X2, X2, X3
	VMAXPS        X3, X2, X2
	VMOVSHDUP     X2, X3
	VMAXSS        X3, X2, X2       // amax
	VDIVSS        X30, X2, X4      // d = amax / 127
	VCVTPS2PH     $0, X4, X6       // to fp16, nearest even
	VCVTPH2PS     X6, X4
	VMOVSS        X4, (BX)
	VXORPS        X5, X5, X5
	VUCOMISS      X5, X2
	JEQ           zero
	VDIVSS        X2, X30, X5      // id = 127 / amax
	VBROADCASTSS  X5, Z5
	VMULPS        Z5, Z0, Z0
	VMULPS        Z5, Z1, Z1
	VMINPS        Z28, Z0, Z0
	VMINPS        Z28, Z1, Z1
	VMAXPS        Z27, Z0, Z0
	VMAXPS        Z27, Z1, Z1
	VCVTPS2DQ     Z0, Z0
	VCVTPS2DQ     Z1, Z1
	VPMOVSDB      Z0, (DI)
	VPMOVSDB      Z1, 16(DI)
	JMP           next

zero:
	VPXORD  X6, X6, X6
	VMOVDQU X6, (DI)
	VMOVDQU X6, 16(DI)

next:
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, BX
	DECQ CX
	JNZ  qloop
	VZEROUPPER
	RET

// func q8Pack4AVX512(pw *byte, pd *float32, w *byte, ldw, nb int)
// Q8Pack4: per block, for each of the four rows, the quants ^ 0x80 to pw (32 bytes)
// and the fp16 scale as float32 to pd (VCVTPH2PS converts exactly).
TEXT ·q8Pack4AVX512(SB), NOSPLIT, $0-40
	MOVQ         pw+0(FP), DI
	MOVQ         pd+8(FP), BX
	MOVQ         w+16(FP), R8
	MOVQ         ldw+24(FP), DX
	MOVQ         nb+32(FP), CX
	LEAQ         (R8)(DX*1), R9
	LEAQ         (R9)(DX*1), R10
	LEAQ         (R10)(DX*1), R11
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Y31

ploop:
	VPXORD    2(R8), Y31, Y0
	VPXORD    2(R9), Y31, Y1
	VPXORD    2(R10), Y31, Y2
	VPXORD    2(R11), Y31, Y3
	VMOVDQU32 Y0, (DI)
	VMOVDQU32 Y1, 32(DI)
	VMOVDQU32 Y2, 64(DI)
	VMOVDQU32 Y3, 96(DI)
	MOVWLZX   (R8), AX
	VMOVD     AX, X4
	VPINSRW   $1, (R9), X4, X4
	VPINSRW   $2, (R10), X4, X4
	VPINSRW   $3, (R11), X4, X4
	VCVTPH2PS X4, X4
	VMOVUPS   X4, (BX)
	ADDQ      $34, R8
	ADDQ      $34, R9
	ADDQ      $34, R10
	ADDQ      $34, R11
	ADDQ      $128, DI
	ADDQ      $16, BX
	DECQ      CX
	JNZ       ploop
	VZEROUPPER
	RET
