#include "textflag.h"

// Block-quantized kernels (kq.go) at the AVX2 level: 256-bit registers, one 32-value
// group at a time (VPMADDUBSW: unsigned weight levels times signed activations into
// word pairs, VPMADDWD: times the group's scales into int32 lanes), the same integer
// lanes and float steps as every level. Y14 is the activation scale, Y15 0x0F in every
// byte; the activations are read from memory (L1).

DATA kqaIdxP<>+0(SB)/8, $0x0b0a090803020100
DATA kqaIdxP<>+8(SB)/8, $0x0b0a090807060504
GLOBL kqaIdxP<>(SB), RODATA|NOPTR, $16

DATA kqaIdxQ<>+0(SB)/8, $0x0302010080808080
DATA kqaIdxQ<>+8(SB)/8, $0x0706050480808080
GLOBL kqaIdxQ<>(SB), RODATA|NOPTR, $16

DATA kqaMaskA<>+0(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA kqaMaskA<>+8(SB)/8, $0x000000003f3f3f3f
GLOBL kqaMaskA<>(SB), RODATA|NOPTR, $16

DATA kqaMaskB<>+0(SB)/8, $0x0000000000000000
DATA kqaMaskB<>+8(SB)/8, $0x0f0f0f0f00000000
GLOBL kqaMaskB<>(SB), RODATA|NOPTR, $16

DATA kqaB0F<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqaB0F<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqaB0F<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqaB0F<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL kqaB0F<>(SB), RODATA|NOPTR, $32

DATA kqaB30<>+0(SB)/8, $0x3030303030303030
DATA kqaB30<>+8(SB)/8, $0x3030303030303030
DATA kqaB30<>+16(SB)/8, $0x3030303030303030
DATA kqaB30<>+24(SB)/8, $0x3030303030303030
GLOBL kqaB30<>(SB), RODATA|NOPTR, $32

DATA kqaB03<>+0(SB)/8, $0x0303030303030303
DATA kqaB03<>+8(SB)/8, $0x0303030303030303
DATA kqaB03<>+16(SB)/8, $0x0303030303030303
DATA kqaB03<>+24(SB)/8, $0x0303030303030303
GLOBL kqaB03<>(SB), RODATA|NOPTR, $32

DATA kqaB04<>+0(SB)/8, $0x0404040404040404
DATA kqaB04<>+8(SB)/8, $0x0404040404040404
DATA kqaB04<>+16(SB)/8, $0x0404040404040404
DATA kqaB04<>+24(SB)/8, $0x0404040404040404
GLOBL kqaB04<>(SB), RODATA|NOPTR, $32

DATA kqaB10<>+0(SB)/8, $0x1010101010101010
DATA kqaB10<>+8(SB)/8, $0x1010101010101010
DATA kqaB10<>+16(SB)/8, $0x1010101010101010
DATA kqaB10<>+24(SB)/8, $0x1010101010101010
GLOBL kqaB10<>(SB), RODATA|NOPTR, $32

DATA kqaB20<>+0(SB)/8, $0x2020202020202020
DATA kqaB20<>+8(SB)/8, $0x2020202020202020
DATA kqaB20<>+16(SB)/8, $0x2020202020202020
DATA kqaB20<>+24(SB)/8, $0x2020202020202020
GLOBL kqaB20<>(SB), RODATA|NOPTR, $32

DATA kqaOnes<>+0(SB)/8, $0x0001000100010001
DATA kqaOnes<>+8(SB)/8, $0x0001000100010001
DATA kqaOnes<>+16(SB)/8, $0x0001000100010001
DATA kqaOnes<>+24(SB)/8, $0x0001000100010001
GLOBL kqaOnes<>(SB), RODATA|NOPTR, $32

DATA kqaK4Sc<>+0(SB)/8, $0x8000800080008000
DATA kqaK4Sc<>+8(SB)/8, $0x8000800080008000
DATA kqaK4Sc<>+16(SB)/8, $0x8000800080008000
DATA kqaK4Sc<>+24(SB)/8, $0x8000800080008000
DATA kqaK4Sc<>+32(SB)/8, $0x8001800180018001
DATA kqaK4Sc<>+40(SB)/8, $0x8001800180018001
DATA kqaK4Sc<>+48(SB)/8, $0x8001800180018001
DATA kqaK4Sc<>+56(SB)/8, $0x8001800180018001
DATA kqaK4Sc<>+64(SB)/8, $0x8002800280028002
DATA kqaK4Sc<>+72(SB)/8, $0x8002800280028002
DATA kqaK4Sc<>+80(SB)/8, $0x8002800280028002
DATA kqaK4Sc<>+88(SB)/8, $0x8002800280028002
DATA kqaK4Sc<>+96(SB)/8, $0x8003800380038003
DATA kqaK4Sc<>+104(SB)/8, $0x8003800380038003
DATA kqaK4Sc<>+112(SB)/8, $0x8003800380038003
DATA kqaK4Sc<>+120(SB)/8, $0x8003800380038003
DATA kqaK4Sc<>+128(SB)/8, $0x8004800480048004
DATA kqaK4Sc<>+136(SB)/8, $0x8004800480048004
DATA kqaK4Sc<>+144(SB)/8, $0x8004800480048004
DATA kqaK4Sc<>+152(SB)/8, $0x8004800480048004
DATA kqaK4Sc<>+160(SB)/8, $0x8005800580058005
DATA kqaK4Sc<>+168(SB)/8, $0x8005800580058005
DATA kqaK4Sc<>+176(SB)/8, $0x8005800580058005
DATA kqaK4Sc<>+184(SB)/8, $0x8005800580058005
DATA kqaK4Sc<>+192(SB)/8, $0x8006800680068006
DATA kqaK4Sc<>+200(SB)/8, $0x8006800680068006
DATA kqaK4Sc<>+208(SB)/8, $0x8006800680068006
DATA kqaK4Sc<>+216(SB)/8, $0x8006800680068006
DATA kqaK4Sc<>+224(SB)/8, $0x8007800780078007
DATA kqaK4Sc<>+232(SB)/8, $0x8007800780078007
DATA kqaK4Sc<>+240(SB)/8, $0x8007800780078007
DATA kqaK4Sc<>+248(SB)/8, $0x8007800780078007
GLOBL kqaK4Sc<>(SB), RODATA|NOPTR, $256

DATA kqaK4Min<>+0(SB)/8, $0x8080800980808008
DATA kqaK4Min<>+8(SB)/8, $0x8080800b8080800a
DATA kqaK4Min<>+16(SB)/8, $0x8080800d8080800c
DATA kqaK4Min<>+24(SB)/8, $0x8080800f8080800e
GLOBL kqaK4Min<>(SB), RODATA|NOPTR, $32

DATA kqaS16<>+0(SB)/8, $0x0100010001000100
DATA kqaS16<>+8(SB)/8, $0x0100010001000100
DATA kqaS16<>+16(SB)/8, $0x0302030203020302
DATA kqaS16<>+24(SB)/8, $0x0302030203020302
DATA kqaS16<>+32(SB)/8, $0x0504050405040504
DATA kqaS16<>+40(SB)/8, $0x0504050405040504
DATA kqaS16<>+48(SB)/8, $0x0706070607060706
DATA kqaS16<>+56(SB)/8, $0x0706070607060706
DATA kqaS16<>+64(SB)/8, $0x0908090809080908
DATA kqaS16<>+72(SB)/8, $0x0908090809080908
DATA kqaS16<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kqaS16<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kqaS16<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kqaS16<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kqaS16<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kqaS16<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kqaS16<>+128(SB)/8, $0x0100010001000100
DATA kqaS16<>+136(SB)/8, $0x0100010001000100
DATA kqaS16<>+144(SB)/8, $0x0302030203020302
DATA kqaS16<>+152(SB)/8, $0x0302030203020302
DATA kqaS16<>+160(SB)/8, $0x0504050405040504
DATA kqaS16<>+168(SB)/8, $0x0504050405040504
DATA kqaS16<>+176(SB)/8, $0x0706070607060706
DATA kqaS16<>+184(SB)/8, $0x0706070607060706
DATA kqaS16<>+192(SB)/8, $0x0908090809080908
DATA kqaS16<>+200(SB)/8, $0x0908090809080908
DATA kqaS16<>+208(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kqaS16<>+216(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA kqaS16<>+224(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kqaS16<>+232(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA kqaS16<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA kqaS16<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL kqaS16<>(SB), RODATA|NOPTR, $256

DATA kqaQ3IdxP<>+0(SB)/8, $0x0908070605040302
DATA kqaQ3IdxP<>+8(SB)/8, $0x0908070605040302
GLOBL kqaQ3IdxP<>(SB), RODATA|NOPTR, $16

DATA kqaQ3IdxQ<>+0(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqaQ3IdxQ<>+8(SB)/8, $0x0d0c0b0a0d0c0b0a
GLOBL kqaQ3IdxQ<>(SB), RODATA|NOPTR, $16

DATA kqaQ3ShrL<>+0(SB)/8, $0x0000000000000000
DATA kqaQ3ShrL<>+8(SB)/8, $0x0000000400000004
GLOBL kqaQ3ShrL<>(SB), RODATA|NOPTR, $16

DATA kqaQ3HiL<>+0(SB)/8, $0x0000000200000004
DATA kqaQ3HiL<>+8(SB)/8, $0x0000002000000000
GLOBL kqaQ3HiL<>(SB), RODATA|NOPTR, $16

DATA kqaQ3HiR<>+0(SB)/8, $0x0000002000000020
DATA kqaQ3HiR<>+8(SB)/8, $0x0000000200000020
GLOBL kqaQ3HiR<>(SB), RODATA|NOPTR, $16

DATA kqaBitIdx<>+0(SB)/8, $0x0000000000000000
DATA kqaBitIdx<>+8(SB)/8, $0x0101010101010101
DATA kqaBitIdx<>+16(SB)/8, $0x0202020202020202
DATA kqaBitIdx<>+24(SB)/8, $0x0303030303030303
GLOBL kqaBitIdx<>(SB), RODATA|NOPTR, $32

DATA kqaBitMask<>+0(SB)/8, $0x8040201008040201
DATA kqaBitMask<>+8(SB)/8, $0x8040201008040201
DATA kqaBitMask<>+16(SB)/8, $0x8040201008040201
DATA kqaBitMask<>+24(SB)/8, $0x8040201008040201
GLOBL kqaBitMask<>(SB), RODATA|NOPTR, $32

// One row times one token per call, the row read from start to end (see the VNNI
// file); Y0 holds the row's lanes.
#define AROW1_PROLOGUE \
	MOVQ         w+8(FP), R8;        \
	MOVQ         nb+16(FP), CX;      \
	MOVQ         act+24(FP), SI;     \
	VPXOR        Y0, Y0, Y0;         \
	VMOVDQU      kqaB0F<>(SB), Y15

#define AROW1_EPILOGUE \
	MOVQ         out+0(FP), AX;   \
	VHADDPS      Y0, Y0, Y0;      \
	VHADDPS      Y0, Y0, Y0;      \
	VEXTRACTF128 $1, Y0, X1;      \
	VADDSS       X1, X0, X0;      \
	VMOVSS       X0, (AX);        \
	VZEROUPPER

// KGROUP adds one 32-value group (levels in w, activations at aoff(SI), scale words
// picked from src by the shuffle at soff) into Y6.
#define KGROUP(w, aoff, soff, src) \
	VPMADDUBSW aoff(SI), w, w;              \
	VPSHUFB    kqaS16<>+soff(SB), src, Y11;  \
	VPMADDWD   Y11, w, w;                   \
	VPADDD     w, Y6, Y6

// KDOT folds Y6 (int32 lanes) into L with d·d_a, d the fp16 at doff(p).
#define KDOT(p, doff, L) \
	VCVTDQ2PS    Y6, Y6;          \
	VPBROADCASTW doff(p), X10;    \
	VCVTPH2PS    X10, Y10;        \
	VMULPS       Y14, Y10, Y10;   \
	VFMADD231PS  Y10, Y6, L

// KDOTMIN folds Y6 with d·d_a and Y5 (the min lanes) with -dmin·d_a (d, dmin at doff(p)).
#define KDOTMIN(p, doff, L) \
	VCVTDQ2PS    Y6, Y6;          \
	VPBROADCASTD doff(p), X10;    \
	VCVTPH2PS    X10, Y10;        \
	VMULPS       Y14, Y10, Y10;   \
	VMOVSLDUP    Y10, Y11;        \
	VMOVSHDUP    Y10, Y10;        \
	VFMADD231PS  Y11, Y6, L;      \
	VCVTDQ2PS    Y5, Y5;          \
	VFNMADD231PS Y10, Y5, L

#define KLOOP(name, ROW, bytes) \
TEXT name(SB), NOSPLIT, $0-32;          \
	AROW1_PROLOGUE;                     \
kloop:                                  \
	VBROADCASTSS 256(SI), Y14;          \
	ROW(R8, Y0);                        \
	ADDQ         $bytes, R8;            \
	ADDQ         $320, SI;              \
	DECQ         CX;                    \
	JNZ          kloop;                 \
	AROW1_EPILOGUE;                     \
	RET

// ---- Q4_K / Q5_K: sub-block s of 32 at act offset 32·(0 2 1 3 4 6 5 7)[s]; Y4 holds
// the row's [sc0..sc7, m0..m7] in both 128-bit lanes.

#define Q4K_AROW_SCALES(p) \
	VMOVDQU     4(p), X4;                     \
	VPSHUFB     kqaIdxQ<>(SB), X4, X5;        \
	VPSHUFB     kqaIdxP<>(SB), X4, X4;        \
	VPSRLW      $4, X4, X6;                   \
	VPAND       kqaMaskB<>(SB), X6, X6;       \
	VPAND       kqaMaskA<>(SB), X4, X4;       \
	VPSRLW      $2, X5, X5;                   \
	VPAND       kqaB30<>(SB), X5, X5;         \
	VPOR        X5, X4, X4;                   \
	VPOR        X6, X4, X4;                   \
	VINSERTI128 $1, X4, Y4, Y4;               \
	VPSHUFB     kqaK4Min<>(SB), Y4, Y5;       \
	VPMADDWD    288(SI), Y5, Y5;              \
	VPXOR       Y6, Y6, Y6

// K4SUB adds sub-block s (levels in w) into Y6.
#define K4SUB(w, aoff, soff) \
	VPMADDUBSW aoff(SI), w, w;               \
	VPSHUFB    kqaK4Sc<>+soff(SB), Y4, Y11;   \
	VPMADDWD   Y11, w, w;                    \
	VPADDD     w, Y6, Y6

// K4PAIR: sub-blocks 2c and 2c+1 from the 32 bytes at qoff(p).
#define K4PAIR(p, qoff, aoff0, soff0, aoff1, soff1) \
	VMOVDQU qoff(p), Y7;        \
	VPSRLW  $4, Y7, Y8;         \
	VPAND   Y15, Y7, Y7;        \
	VPAND   Y15, Y8, Y8;        \
	K4SUB(Y7, aoff0, soff0);    \
	K4SUB(Y8, aoff1, soff1)

#define Q4K_AROW(p, L) \
	Q4K_AROW_SCALES(p);                   \
	K4PAIR(p, 16, 0, 0, 64, 32);          \
	K4PAIR(p, 48, 32, 64, 96, 96);        \
	K4PAIR(p, 80, 128, 128, 192, 160);    \
	K4PAIR(p, 112, 160, 192, 224, 224);   \
	KDOTMIN(p, 0, L)

// K5PAIR: as K4PAIR with the fifth bits of sub-blocks 2c, 2c+1 from Y9 (qh).
#define K5HI(w, SH, n) \
	SH      $n, Y9, Y10;        \
	VPAND   kqaB10<>(SB), Y10, Y10; \
	VPOR    Y10, w, w

#define K5PAIR(p, qoff, aoff0, soff0, aoff1, soff1, SH0, n0, SH1, n1) \
	VMOVDQU qoff(p), Y7;        \
	VPSRLW  $4, Y7, Y8;         \
	VPAND   Y15, Y7, Y7;        \
	VPAND   Y15, Y8, Y8;        \
	K5HI(Y7, SH0, n0);          \
	K5HI(Y8, SH1, n1);          \
	K4SUB(Y7, aoff0, soff0);    \
	K4SUB(Y8, aoff1, soff1)

#define Q5K_AROW(p, L) \
	Q4K_AROW_SCALES(p);                                               \
	VMOVDQU 16(p), Y9;                                                \
	K5PAIR(p, 48, 0, 0, 64, 32, VPSLLW, 4, VPSLLW, 3);                \
	K5PAIR(p, 80, 32, 64, 96, 96, VPSLLW, 2, VPSLLW, 1);              \
	K5PAIR(p, 112, 128, 128, 192, 160, VPSRLW, 0, VPSRLW, 1);         \
	K5PAIR(p, 144, 160, 192, 224, 224, VPSRLW, 2, VPSRLW, 3);         \
	KDOTMIN(p, 0, L)

// func q4kRow1AVX2(out *float32, w *byte, nb int, act *byte)
KLOOP(·q4kRow1AVX2, Q4K_AROW, 144)

// func q5kRow1AVX2(out *float32, w *byte, nb int, act *byte)
KLOOP(·q5kRow1AVX2, Q5K_AROW, 176)

// ---- Q6_K, Q3_K, Q2_K: sixteen scales as words in Y4; Y12 / Y13 hold scales 0..7 /
// 8..15 in both lanes for the group shuffles; Y5 the offset or min lanes.

#define S16_SPLIT \
	VPERMQ $0x44, Y4, Y12; \
	VPERMQ $0xEE, Y4, Y13; \
	VPXOR  Y6, Y6, Y6

// Q6HALF: half h (ql at ql0, ql0+32; qh at qh0), groups 4h..4h+3, scale source src.
#define Q6HALF(p, ql0, ql1, qh0, a0, a1, a2, a3, s0, s1, s2, s3, src) \
	VMOVDQU ql0(p), Y7;                  \
	VMOVDQU ql1(p), Y8;                  \
	VMOVDQU qh0(p), Y9;                  \
	VPAND   Y15, Y7, Y10;                \
	VPSLLW  $4, Y9, Y11;                 \
	VPAND   kqaB30<>(SB), Y11, Y11;      \
	VPOR    Y11, Y10, Y10;               \
	KGROUP(Y10, a0, s0, src);            \
	VPAND   Y15, Y8, Y10;                \
	VPSLLW  $2, Y9, Y11;                 \
	VPAND   kqaB30<>(SB), Y11, Y11;      \
	VPOR    Y11, Y10, Y10;               \
	KGROUP(Y10, a1, s1, src);            \
	VPSRLW  $4, Y7, Y10;                 \
	VPAND   Y15, Y10, Y10;               \
	VPAND   kqaB30<>(SB), Y9, Y11;       \
	VPOR    Y11, Y10, Y10;               \
	KGROUP(Y10, a2, s2, src);            \
	VPSRLW  $4, Y8, Y10;                 \
	VPAND   Y15, Y10, Y10;               \
	VPSRLW  $2, Y9, Y11;                 \
	VPAND   kqaB30<>(SB), Y11, Y11;      \
	VPOR    Y11, Y10, Y10;               \
	KGROUP(Y10, a3, s3, src)

#define Q6K_AROW(p, L) \
	VPMOVSXBW 192(p), Y4;                                                 \
	VPMADDWD  288(SI), Y4, Y5;                                            \
	VPSLLD    $5, Y5, Y5;                                                 \
	S16_SPLIT;                                                            \
	Q6HALF(p, 0, 32, 128, 0, 32, 64, 96, 0, 32, 64, 96, Y12);             \
	Q6HALF(p, 64, 96, 160, 128, 160, 192, 224, 128, 160, 192, 224, Y13);  \
	VPSUBD    Y5, Y6, Y6;                                                 \
	KDOT(p, 208, L)

// func q6kRow1AVX2(out *float32, w *byte, nb int, act *byte)
KLOOP(·q6kRow1AVX2, Q6K_AROW, 210)

// Q3GROUP: group j of a half (qs in Y8, hmask in Y9): low two bits (qs >> 2j) and the
// third from hmask shifted by HSH n to bit 2.
#define Q3GROUP(qsh, HSH, n, a, s, src) \
	VPSRLW  $qsh, Y8, Y10;               \
	VPAND   kqaB03<>(SB), Y10, Y10;      \
	HSH     $n, Y9, Y11;                 \
	VPAND   kqaB04<>(SB), Y11, Y11;      \
	VPOR    Y11, Y10, Y10;               \
	KGROUP(Y10, a, s, src)

#define Q3K_AROW(p, L) \
	VMOVDQU   94(p), X4;                          \
	VPSHUFB   kqaQ3IdxQ<>(SB), X4, X5;            \
	VPSHUFB   kqaQ3IdxP<>(SB), X4, X4;            \
	VPSRLVD   kqaQ3ShrL<>(SB), X4, X4;            \
	VPAND     kqaB0F<>(SB), X4, X4;               \
	VPSLLVD   kqaQ3HiL<>(SB), X5, X6;             \
	VPSRLVD   kqaQ3HiR<>(SB), X5, X5;             \
	VPOR      X6, X5, X5;                         \
	VPAND     kqaB30<>(SB), X5, X5;               \
	VPOR      X5, X4, X4;                         \
	VPSUBB    kqaB20<>(SB), X4, X4;               \
	VPMOVSXBW X4, Y4;                             \
	VPMADDWD  288(SI), Y4, Y5;                    \
	VPSLLD    $2, Y5, Y5;                         \
	S16_SPLIT;                                    \
	VMOVDQU   0(p), Y9;                           \
	VMOVDQU   32(p), Y8;                          \
	Q3GROUP(0, VPSLLW, 2, 0, 0, Y12);             \
	Q3GROUP(2, VPSLLW, 1, 32, 32, Y12);           \
	Q3GROUP(4, VPSRLW, 0, 64, 64, Y12);           \
	Q3GROUP(6, VPSRLW, 1, 96, 96, Y12);           \
	VMOVDQU   64(p), Y8;                          \
	Q3GROUP(0, VPSRLW, 2, 128, 128, Y13);         \
	Q3GROUP(2, VPSRLW, 3, 160, 160, Y13);         \
	Q3GROUP(4, VPSRLW, 4, 192, 192, Y13);         \
	Q3GROUP(6, VPSRLW, 5, 224, 224, Y13);         \
	VPSUBD    Y5, Y6, Y6;                         \
	KDOT(p, 108, L)

// func q3kRow1AVX2(out *float32, w *byte, nb int, act *byte)
KLOOP(·q3kRow1AVX2, Q3K_AROW, 110)

#define Q2GROUP(qsh, a, s, src) \
	VPSRLW  $qsh, Y8, Y10;               \
	VPAND   kqaB03<>(SB), Y10, Y10;      \
	KGROUP(Y10, a, s, src)

#define Q2K_AROW(p, L) \
	VMOVDQU   0(p), X4;                  \
	VPSRLW    $4, X4, X5;                \
	VPAND     kqaB0F<>(SB), X4, X4;      \
	VPAND     kqaB0F<>(SB), X5, X5;      \
	VPMOVZXBW X4, Y4;                    \
	VPMOVZXBW X5, Y5;                    \
	VPMADDWD  288(SI), Y5, Y5;           \
	S16_SPLIT;                           \
	VMOVDQU   16(p), Y8;                 \
	Q2GROUP(0, 0, 0, Y12);               \
	Q2GROUP(2, 32, 32, Y12);             \
	Q2GROUP(4, 64, 64, Y12);             \
	Q2GROUP(6, 96, 96, Y12);             \
	VMOVDQU   48(p), Y8;                 \
	Q2GROUP(0, 128, 128, Y13);           \
	Q2GROUP(2, 160, 160, Y13);           \
	Q2GROUP(4, 192, 192, Y13);           \
	Q2GROUP(6, 224, 224, Y13);           \
	KDOTMIN(p, 80, L)

// func q2kRow1AVX2(out *float32, w *byte, nb int, act *byte)
KLOOP(·q2kRow1AVX2, Q2K_AROW, 84)

// ---- Q4_0, Q4_1, Q5_0, Q5_1: one 32-value block per step; the record's quants at
// 0(SI), lane terms at 32(SI), scale in Y14.

#define QLA_NIB(qsoff, p) \
	VMOVDQU     qsoff(p), X7;         \
	VPSRLW      $4, X7, X8;           \
	VINSERTI128 $1, X8, Y7, Y7;       \
	VPAND       Y15, Y7, Y7

// QLA_FIFTH: byte i gets 0x10 where bit i of the u32 at qhoff(p) is set.
#define QLA_FIFTH(qhoff, p) \
	VPBROADCASTD qhoff(p), Y9;           \
	VPSHUFB      kqaBitIdx<>(SB), Y9, Y9; \
	VPAND        kqaBitMask<>(SB), Y9, Y9; \
	VPCMPEQB     kqaBitMask<>(SB), Y9, Y9; \
	VPAND        kqaB10<>(SB), Y9, Y9;    \
	VPOR         Y9, Y7, Y7

#define QLA_INT \
	VPMADDUBSW (SI), Y7, Y7;           \
	VPMADDWD   kqaOnes<>(SB), Y7, Y7

#define QLA_DOT(p, L) \
	VCVTDQ2PS    Y7, Y7;           \
	VPBROADCASTW (p), X10;         \
	VCVTPH2PS    X10, Y10;         \
	VMULPS       Y14, Y10, Y10;    \
	VFMADD231PS  Y10, Y7, L

#define QLA_DOTMIN(p, L) \
	VCVTDQ2PS    Y7, Y7;           \
	VPBROADCASTD (p), X10;         \
	VCVTPH2PS    X10, Y10;         \
	VMULPS       Y14, Y10, Y11;    \
	VMOVSLDUP    Y11, Y11;         \
	VMOVSHDUP    Y10, Y10;         \
	VFMADD231PS  Y11, Y7, L;       \
	VFMADD231PS  32(SI), Y10, L

#define Q40_AROW(p, L) \
	QLA_NIB(2, p);                 \
	QLA_INT;                       \
	VPADDD 32(SI), Y7, Y7;         \
	QLA_DOT(p, L)

#define Q50_AROW(p, L) \
	QLA_NIB(6, p);                 \
	QLA_FIFTH(2, p);               \
	QLA_INT;                       \
	VPADDD 32(SI), Y7, Y7;         \
	QLA_DOT(p, L)

#define Q41_AROW(p, L) \
	QLA_NIB(4, p);                 \
	QLA_INT;                       \
	QLA_DOTMIN(p, L)

#define Q51_AROW(p, L) \
	QLA_NIB(8, p);                 \
	QLA_FIFTH(4, p);               \
	QLA_INT;                       \
	QLA_DOTMIN(p, L)

#define QLLOOP(name, ROW, bytes) \
TEXT name(SB), NOSPLIT, $0-32;          \
	AROW1_PROLOGUE;                     \
qlloop:                                 \
	VBROADCASTSS 64(SI), Y14;           \
	ROW(R8, Y0);                        \
	ADDQ         $bytes, R8;            \
	ADDQ         $72, SI;               \
	DECQ         CX;                    \
	JNZ          qlloop;                \
	AROW1_EPILOGUE;                     \
	RET

// func q40Row1AVX2(out *float32, w *byte, nb int, act *byte)
QLLOOP(·q40Row1AVX2, Q40_AROW, 18)

// func q41Row1AVX2(out *float32, w *byte, nb int, act *byte)
QLLOOP(·q41Row1AVX2, Q41_AROW, 20)

// func q50Row1AVX2(out *float32, w *byte, nb int, act *byte)
QLLOOP(·q50Row1AVX2, Q50_AROW, 22)

// func q51Row1AVX2(out *float32, w *byte, nb int, act *byte)
QLLOOP(·q51Row1AVX2, Q51_AROW, 24)
