#include "textflag.h"

// Block-quantized kernels (kq.go) at the AVX-512 VNNI level. Constants first.

DATA kqQ4KIdxP<>+0(SB)/8, $0x0b0a090803020100
DATA kqQ4KIdxP<>+8(SB)/8, $0x0b0a090807060504
DATA kqQ4KIdxP<>+16(SB)/8, $0x0b0a090803020100
DATA kqQ4KIdxP<>+24(SB)/8, $0x0b0a090807060504
DATA kqQ4KIdxP<>+32(SB)/8, $0x0b0a090803020100
DATA kqQ4KIdxP<>+40(SB)/8, $0x0b0a090807060504
DATA kqQ4KIdxP<>+48(SB)/8, $0x0b0a090803020100
DATA kqQ4KIdxP<>+56(SB)/8, $0x0b0a090807060504
GLOBL kqQ4KIdxP<>(SB), RODATA|NOPTR, $64

DATA kqQ4KIdxQ<>+0(SB)/8, $0x0302010080808080
DATA kqQ4KIdxQ<>+8(SB)/8, $0x0706050480808080
DATA kqQ4KIdxQ<>+16(SB)/8, $0x0302010080808080
DATA kqQ4KIdxQ<>+24(SB)/8, $0x0706050480808080
DATA kqQ4KIdxQ<>+32(SB)/8, $0x0302010080808080
DATA kqQ4KIdxQ<>+40(SB)/8, $0x0706050480808080
DATA kqQ4KIdxQ<>+48(SB)/8, $0x0302010080808080
DATA kqQ4KIdxQ<>+56(SB)/8, $0x0706050480808080
GLOBL kqQ4KIdxQ<>(SB), RODATA|NOPTR, $64

DATA kqQ4KMaskA<>+0(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA kqQ4KMaskA<>+8(SB)/8, $0x000000003f3f3f3f
DATA kqQ4KMaskA<>+16(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA kqQ4KMaskA<>+24(SB)/8, $0x000000003f3f3f3f
DATA kqQ4KMaskA<>+32(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA kqQ4KMaskA<>+40(SB)/8, $0x000000003f3f3f3f
DATA kqQ4KMaskA<>+48(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA kqQ4KMaskA<>+56(SB)/8, $0x000000003f3f3f3f
GLOBL kqQ4KMaskA<>(SB), RODATA|NOPTR, $64

DATA kqQ4KMaskB<>+0(SB)/8, $0x0000000000000000
DATA kqQ4KMaskB<>+8(SB)/8, $0x0f0f0f0f00000000
DATA kqQ4KMaskB<>+16(SB)/8, $0x0000000000000000
DATA kqQ4KMaskB<>+24(SB)/8, $0x0f0f0f0f00000000
DATA kqQ4KMaskB<>+32(SB)/8, $0x0000000000000000
DATA kqQ4KMaskB<>+40(SB)/8, $0x0f0f0f0f00000000
DATA kqQ4KMaskB<>+48(SB)/8, $0x0000000000000000
DATA kqQ4KMaskB<>+56(SB)/8, $0x0f0f0f0f00000000
GLOBL kqQ4KMaskB<>(SB), RODATA|NOPTR, $64

DATA kqBytes30<>+0(SB)/8, $0x3030303030303030
DATA kqBytes30<>+8(SB)/8, $0x3030303030303030
DATA kqBytes30<>+16(SB)/8, $0x3030303030303030
DATA kqBytes30<>+24(SB)/8, $0x3030303030303030
DATA kqBytes30<>+32(SB)/8, $0x3030303030303030
DATA kqBytes30<>+40(SB)/8, $0x3030303030303030
DATA kqBytes30<>+48(SB)/8, $0x3030303030303030
DATA kqBytes30<>+56(SB)/8, $0x3030303030303030
GLOBL kqBytes30<>(SB), RODATA|NOPTR, $64

DATA kqQ4KSc0<>+0(SB)/8, $0x8000800080008000
DATA kqQ4KSc0<>+8(SB)/8, $0x8000800080008000
DATA kqQ4KSc0<>+16(SB)/8, $0x8000800080008000
DATA kqQ4KSc0<>+24(SB)/8, $0x8000800080008000
DATA kqQ4KSc0<>+32(SB)/8, $0x8002800280028002
DATA kqQ4KSc0<>+40(SB)/8, $0x8002800280028002
DATA kqQ4KSc0<>+48(SB)/8, $0x8002800280028002
DATA kqQ4KSc0<>+56(SB)/8, $0x8002800280028002
GLOBL kqQ4KSc0<>(SB), RODATA|NOPTR, $64

DATA kqQ4KSc1<>+0(SB)/8, $0x8001800180018001
DATA kqQ4KSc1<>+8(SB)/8, $0x8001800180018001
DATA kqQ4KSc1<>+16(SB)/8, $0x8001800180018001
DATA kqQ4KSc1<>+24(SB)/8, $0x8001800180018001
DATA kqQ4KSc1<>+32(SB)/8, $0x8003800380038003
DATA kqQ4KSc1<>+40(SB)/8, $0x8003800380038003
DATA kqQ4KSc1<>+48(SB)/8, $0x8003800380038003
DATA kqQ4KSc1<>+56(SB)/8, $0x8003800380038003
GLOBL kqQ4KSc1<>(SB), RODATA|NOPTR, $64

DATA kqQ4KSc2<>+0(SB)/8, $0x8004800480048004
DATA kqQ4KSc2<>+8(SB)/8, $0x8004800480048004
DATA kqQ4KSc2<>+16(SB)/8, $0x8004800480048004
DATA kqQ4KSc2<>+24(SB)/8, $0x8004800480048004
DATA kqQ4KSc2<>+32(SB)/8, $0x8006800680068006
DATA kqQ4KSc2<>+40(SB)/8, $0x8006800680068006
DATA kqQ4KSc2<>+48(SB)/8, $0x8006800680068006
DATA kqQ4KSc2<>+56(SB)/8, $0x8006800680068006
GLOBL kqQ4KSc2<>(SB), RODATA|NOPTR, $64

DATA kqQ4KSc3<>+0(SB)/8, $0x8005800580058005
DATA kqQ4KSc3<>+8(SB)/8, $0x8005800580058005
DATA kqQ4KSc3<>+16(SB)/8, $0x8005800580058005
DATA kqQ4KSc3<>+24(SB)/8, $0x8005800580058005
DATA kqQ4KSc3<>+32(SB)/8, $0x8007800780078007
DATA kqQ4KSc3<>+40(SB)/8, $0x8007800780078007
DATA kqQ4KSc3<>+48(SB)/8, $0x8007800780078007
DATA kqQ4KSc3<>+56(SB)/8, $0x8007800780078007
GLOBL kqQ4KSc3<>(SB), RODATA|NOPTR, $64

DATA kqQ4KMin<>+0(SB)/8, $0x8080800980808008
DATA kqQ4KMin<>+8(SB)/8, $0x8080800b8080800a
DATA kqQ4KMin<>+16(SB)/8, $0x8080800d8080800c
DATA kqQ4KMin<>+24(SB)/8, $0x8080800f8080800e
GLOBL kqQ4KMin<>(SB), RODATA|NOPTR, $32

DATA kqQ6KSc0<>+0(SB)/8, $0x0000000000000000
DATA kqQ6KSc0<>+8(SB)/8, $0x0000000000000000
DATA kqQ6KSc0<>+16(SB)/8, $0x0001000100010001
DATA kqQ6KSc0<>+24(SB)/8, $0x0001000100010001
DATA kqQ6KSc0<>+32(SB)/8, $0x0002000200020002
DATA kqQ6KSc0<>+40(SB)/8, $0x0002000200020002
DATA kqQ6KSc0<>+48(SB)/8, $0x0003000300030003
DATA kqQ6KSc0<>+56(SB)/8, $0x0003000300030003
GLOBL kqQ6KSc0<>(SB), RODATA|NOPTR, $64

DATA kqQ6KSc1<>+0(SB)/8, $0x0004000400040004
DATA kqQ6KSc1<>+8(SB)/8, $0x0004000400040004
DATA kqQ6KSc1<>+16(SB)/8, $0x0005000500050005
DATA kqQ6KSc1<>+24(SB)/8, $0x0005000500050005
DATA kqQ6KSc1<>+32(SB)/8, $0x0006000600060006
DATA kqQ6KSc1<>+40(SB)/8, $0x0006000600060006
DATA kqQ6KSc1<>+48(SB)/8, $0x0007000700070007
DATA kqQ6KSc1<>+56(SB)/8, $0x0007000700070007
GLOBL kqQ6KSc1<>(SB), RODATA|NOPTR, $64

DATA kqQ6KSc2<>+0(SB)/8, $0x0008000800080008
DATA kqQ6KSc2<>+8(SB)/8, $0x0008000800080008
DATA kqQ6KSc2<>+16(SB)/8, $0x0009000900090009
DATA kqQ6KSc2<>+24(SB)/8, $0x0009000900090009
DATA kqQ6KSc2<>+32(SB)/8, $0x000a000a000a000a
DATA kqQ6KSc2<>+40(SB)/8, $0x000a000a000a000a
DATA kqQ6KSc2<>+48(SB)/8, $0x000b000b000b000b
DATA kqQ6KSc2<>+56(SB)/8, $0x000b000b000b000b
GLOBL kqQ6KSc2<>(SB), RODATA|NOPTR, $64

DATA kqQ6KSc3<>+0(SB)/8, $0x000c000c000c000c
DATA kqQ6KSc3<>+8(SB)/8, $0x000c000c000c000c
DATA kqQ6KSc3<>+16(SB)/8, $0x000d000d000d000d
DATA kqQ6KSc3<>+24(SB)/8, $0x000d000d000d000d
DATA kqQ6KSc3<>+32(SB)/8, $0x000e000e000e000e
DATA kqQ6KSc3<>+40(SB)/8, $0x000e000e000e000e
DATA kqQ6KSc3<>+48(SB)/8, $0x000f000f000f000f
DATA kqQ6KSc3<>+56(SB)/8, $0x000f000f000f000f
GLOBL kqQ6KSc3<>(SB), RODATA|NOPTR, $64

DATA kqShl42<>+0(SB)/8, $0x0004000400040004
DATA kqShl42<>+8(SB)/8, $0x0004000400040004
DATA kqShl42<>+16(SB)/8, $0x0004000400040004
DATA kqShl42<>+24(SB)/8, $0x0004000400040004
DATA kqShl42<>+32(SB)/8, $0x0002000200020002
DATA kqShl42<>+40(SB)/8, $0x0002000200020002
DATA kqShl42<>+48(SB)/8, $0x0002000200020002
DATA kqShl42<>+56(SB)/8, $0x0002000200020002
GLOBL kqShl42<>(SB), RODATA|NOPTR, $64

DATA kqShr02<>+0(SB)/8, $0x0000000000000000
DATA kqShr02<>+8(SB)/8, $0x0000000000000000
DATA kqShr02<>+16(SB)/8, $0x0000000000000000
DATA kqShr02<>+24(SB)/8, $0x0000000000000000
DATA kqShr02<>+32(SB)/8, $0x0002000200020002
DATA kqShr02<>+40(SB)/8, $0x0002000200020002
DATA kqShr02<>+48(SB)/8, $0x0002000200020002
DATA kqShr02<>+56(SB)/8, $0x0002000200020002
GLOBL kqShr02<>(SB), RODATA|NOPTR, $64
DATA kqShl31<>+0(SB)/8, $0x0003000300030003
DATA kqShl31<>+8(SB)/8, $0x0003000300030003
DATA kqShl31<>+16(SB)/8, $0x0003000300030003
DATA kqShl31<>+24(SB)/8, $0x0003000300030003
DATA kqShl31<>+32(SB)/8, $0x0001000100010001
DATA kqShl31<>+40(SB)/8, $0x0001000100010001
DATA kqShl31<>+48(SB)/8, $0x0001000100010001
DATA kqShl31<>+56(SB)/8, $0x0001000100010001
GLOBL kqShl31<>(SB), RODATA|NOPTR, $64

DATA kqShr13<>+0(SB)/8, $0x0001000100010001
DATA kqShr13<>+8(SB)/8, $0x0001000100010001
DATA kqShr13<>+16(SB)/8, $0x0001000100010001
DATA kqShr13<>+24(SB)/8, $0x0001000100010001
DATA kqShr13<>+32(SB)/8, $0x0003000300030003
DATA kqShr13<>+40(SB)/8, $0x0003000300030003
DATA kqShr13<>+48(SB)/8, $0x0003000300030003
DATA kqShr13<>+56(SB)/8, $0x0003000300030003
GLOBL kqShr13<>(SB), RODATA|NOPTR, $64

DATA kqShl21<>+0(SB)/8, $0x0002000200020002
DATA kqShl21<>+8(SB)/8, $0x0002000200020002
DATA kqShl21<>+16(SB)/8, $0x0002000200020002
DATA kqShl21<>+24(SB)/8, $0x0002000200020002
DATA kqShl21<>+32(SB)/8, $0x0001000100010001
DATA kqShl21<>+40(SB)/8, $0x0001000100010001
DATA kqShl21<>+48(SB)/8, $0x0001000100010001
DATA kqShl21<>+56(SB)/8, $0x0001000100010001
GLOBL kqShl21<>(SB), RODATA|NOPTR, $64

DATA kqShr01<>+0(SB)/8, $0x0000000000000000
DATA kqShr01<>+8(SB)/8, $0x0000000000000000
DATA kqShr01<>+16(SB)/8, $0x0000000000000000
DATA kqShr01<>+24(SB)/8, $0x0000000000000000
DATA kqShr01<>+32(SB)/8, $0x0001000100010001
DATA kqShr01<>+40(SB)/8, $0x0001000100010001
DATA kqShr01<>+48(SB)/8, $0x0001000100010001
DATA kqShr01<>+56(SB)/8, $0x0001000100010001
GLOBL kqShr01<>(SB), RODATA|NOPTR, $64

DATA kqShr23<>+0(SB)/8, $0x0002000200020002
DATA kqShr23<>+8(SB)/8, $0x0002000200020002
DATA kqShr23<>+16(SB)/8, $0x0002000200020002
DATA kqShr23<>+24(SB)/8, $0x0002000200020002
DATA kqShr23<>+32(SB)/8, $0x0003000300030003
DATA kqShr23<>+40(SB)/8, $0x0003000300030003
DATA kqShr23<>+48(SB)/8, $0x0003000300030003
DATA kqShr23<>+56(SB)/8, $0x0003000300030003
GLOBL kqShr23<>(SB), RODATA|NOPTR, $64

DATA kqShr45<>+0(SB)/8, $0x0004000400040004
DATA kqShr45<>+8(SB)/8, $0x0004000400040004
DATA kqShr45<>+16(SB)/8, $0x0004000400040004
DATA kqShr45<>+24(SB)/8, $0x0004000400040004
DATA kqShr45<>+32(SB)/8, $0x0005000500050005
DATA kqShr45<>+40(SB)/8, $0x0005000500050005
DATA kqShr45<>+48(SB)/8, $0x0005000500050005
DATA kqShr45<>+56(SB)/8, $0x0005000500050005
GLOBL kqShr45<>(SB), RODATA|NOPTR, $64

DATA kqShr46<>+0(SB)/8, $0x0004000400040004
DATA kqShr46<>+8(SB)/8, $0x0004000400040004
DATA kqShr46<>+16(SB)/8, $0x0004000400040004
DATA kqShr46<>+24(SB)/8, $0x0004000400040004
DATA kqShr46<>+32(SB)/8, $0x0006000600060006
DATA kqShr46<>+40(SB)/8, $0x0006000600060006
DATA kqShr46<>+48(SB)/8, $0x0006000600060006
DATA kqShr46<>+56(SB)/8, $0x0006000600060006
GLOBL kqShr46<>(SB), RODATA|NOPTR, $64

DATA kqQ3KIdxP<>+0(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+8(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+16(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+24(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+32(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+40(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+48(SB)/8, $0x0908070605040302
DATA kqQ3KIdxP<>+56(SB)/8, $0x0908070605040302
GLOBL kqQ3KIdxP<>(SB), RODATA|NOPTR, $64

DATA kqQ3KIdxQ<>+0(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+8(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+16(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+24(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+32(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+40(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+48(SB)/8, $0x0d0c0b0a0d0c0b0a
DATA kqQ3KIdxQ<>+56(SB)/8, $0x0d0c0b0a0d0c0b0a
GLOBL kqQ3KIdxQ<>(SB), RODATA|NOPTR, $64

DATA kqQ3KShrL<>+0(SB)/8, $0x0000000000000000
DATA kqQ3KShrL<>+8(SB)/8, $0x0000000400000004
DATA kqQ3KShrL<>+16(SB)/8, $0x0000000000000000
DATA kqQ3KShrL<>+24(SB)/8, $0x0000000400000004
DATA kqQ3KShrL<>+32(SB)/8, $0x0000000000000000
DATA kqQ3KShrL<>+40(SB)/8, $0x0000000400000004
DATA kqQ3KShrL<>+48(SB)/8, $0x0000000000000000
DATA kqQ3KShrL<>+56(SB)/8, $0x0000000400000004
GLOBL kqQ3KShrL<>(SB), RODATA|NOPTR, $64

DATA kqQ3KRolQ<>+0(SB)/8, $0x0000000200000004
DATA kqQ3KRolQ<>+8(SB)/8, $0x0000001e00000000
DATA kqQ3KRolQ<>+16(SB)/8, $0x0000000200000004
DATA kqQ3KRolQ<>+24(SB)/8, $0x0000001e00000000
DATA kqQ3KRolQ<>+32(SB)/8, $0x0000000200000004
DATA kqQ3KRolQ<>+40(SB)/8, $0x0000001e00000000
DATA kqQ3KRolQ<>+48(SB)/8, $0x0000000200000004
DATA kqQ3KRolQ<>+56(SB)/8, $0x0000001e00000000
GLOBL kqQ3KRolQ<>(SB), RODATA|NOPTR, $64

// KREDUCE4 folds four 8-lane accumulators (registers below Y16: VHADDPS has no EVEX
// form) into the low lanes r0..r3 of x0 (the xmm of a0), each
// ((L0+L1)+(L2+L3)) + ((L4+L5)+(L6+L7)); clobbers all four and x1.
#define KREDUCE4(a0, a1, a2, a3, x0, x1) \
	VHADDPS      a1, a0, a1; \
	VHADDPS      a3, a2, a3; \
	VHADDPS      a3, a1, a0; \
	VEXTRACTF128 $1, a0, x1; \
	VADDPS       x1, x0, x0

// ---------------------------------------------------------------------------------
// Q4_K x Q8_K, AVX-512 VNNI. Per super-block the token's activations sit in Z0..Z3 (the
// groups in the order 0 2 1 3 4 6 5 7, so 64 bytes of weight nibbles meet 64 bytes of
// activations), Y4 their sums of 32 (int32), Y5 their scale. Y6..Y9 are the rows'
// lanes (Y6 alone in the one-row kernel). Z10 holds a row's unpacked scales and mins in
// its low 128 bits as Q4K_SCALESG lays them out ([sc0..3, m0..3, sc4..7, m4..7]);
// Z24..Z27 (kqQ4KGSc0..3) pick a group's scale as words for the two groups of one
// 64-byte vector; Y28 (kqQ4KGMin) the mins as int32; Z29 is 0x0F in every byte.

// Q4K_ROW adds one row's super-block at p (scales in lane imm of Z10) to L.
#define Q4K_ROW(p, imm, L) \
	VSHUFI64X2    $imm, Z10, Z10, Z17; \
	VMOVDQU64     16(p), Z11;          \
	VMOVDQU64     80(p), Z12;          \
	VPSRLW        $4, Z11, Z14;        \
	VPSRLW        $4, Z12, Z16;        \
	VPANDD        Z29, Z11, Z13;       \
	VPANDD        Z29, Z14, Z14;       \
	VPANDD        Z29, Z12, Z15;       \
	VPANDD        Z29, Z16, Z16;       \
	VPSHUFB       Z24, Z17, Z18;       \
	VPMADDUBSW    Z0, Z13, Z19;        \
	VPMADDWD      Z18, Z19, Z20;       \
	VPSHUFB       Z25, Z17, Z18;       \
	VPMADDUBSW    Z1, Z14, Z19;        \
	VPDPWSSD      Z18, Z19, Z20;       \
	VPSHUFB       Z26, Z17, Z18;       \
	VPMADDUBSW    Z2, Z15, Z19;        \
	VPDPWSSD      Z18, Z19, Z20;       \
	VPSHUFB       Z27, Z17, Z18;       \
	VPMADDUBSW    Z3, Z16, Z19;        \
	VPDPWSSD      Z18, Z19, Z20;       \
	VEXTRACTI64X4 $1, Z20, Y21;        \
	VPADDD        Y21, Y20, Y20;       \
	VCVTDQ2PS     Y20, Y20;            \
	VPBROADCASTD  (p), X22;            \
	VCVTPH2PS     X22, Y22;            \
	VMULPS        Y5, Y22, Y22;        \
	VMOVSLDUP     Y22, Y23;            \
	VMOVSHDUP     Y22, Y22;            \
	VFMADD231PS   Y23, Y20, L;         \
	VPSHUFB       Y28, Y17, Y21;       \
	VPMADDWD      Y4, Y21, Y21;        \
	VCVTDQ2PS     Y21, Y21;            \
	VFNMADD231PS  Y22, Y21, L


// The Q4_K decode kernel's scale pickers for its scale layout [sc0..3, m0..3, sc4..7,
// m4..7] (Q4K_SCALESG): as kqQ4KSc0..3 and kqQ4KMin.
DATA kqQ4KGSc0<>+0(SB)/8, $0x8000800080008000
DATA kqQ4KGSc0<>+8(SB)/8, $0x8000800080008000
DATA kqQ4KGSc0<>+16(SB)/8, $0x8000800080008000
DATA kqQ4KGSc0<>+24(SB)/8, $0x8000800080008000
DATA kqQ4KGSc0<>+32(SB)/8, $0x8002800280028002
DATA kqQ4KGSc0<>+40(SB)/8, $0x8002800280028002
DATA kqQ4KGSc0<>+48(SB)/8, $0x8002800280028002
DATA kqQ4KGSc0<>+56(SB)/8, $0x8002800280028002
GLOBL kqQ4KGSc0<>(SB), RODATA|NOPTR, $64

DATA kqQ4KGSc1<>+0(SB)/8, $0x8001800180018001
DATA kqQ4KGSc1<>+8(SB)/8, $0x8001800180018001
DATA kqQ4KGSc1<>+16(SB)/8, $0x8001800180018001
DATA kqQ4KGSc1<>+24(SB)/8, $0x8001800180018001
DATA kqQ4KGSc1<>+32(SB)/8, $0x8003800380038003
DATA kqQ4KGSc1<>+40(SB)/8, $0x8003800380038003
DATA kqQ4KGSc1<>+48(SB)/8, $0x8003800380038003
DATA kqQ4KGSc1<>+56(SB)/8, $0x8003800380038003
GLOBL kqQ4KGSc1<>(SB), RODATA|NOPTR, $64

DATA kqQ4KGSc2<>+0(SB)/8, $0x8008800880088008
DATA kqQ4KGSc2<>+8(SB)/8, $0x8008800880088008
DATA kqQ4KGSc2<>+16(SB)/8, $0x8008800880088008
DATA kqQ4KGSc2<>+24(SB)/8, $0x8008800880088008
DATA kqQ4KGSc2<>+32(SB)/8, $0x800a800a800a800a
DATA kqQ4KGSc2<>+40(SB)/8, $0x800a800a800a800a
DATA kqQ4KGSc2<>+48(SB)/8, $0x800a800a800a800a
DATA kqQ4KGSc2<>+56(SB)/8, $0x800a800a800a800a
GLOBL kqQ4KGSc2<>(SB), RODATA|NOPTR, $64

DATA kqQ4KGSc3<>+0(SB)/8, $0x8009800980098009
DATA kqQ4KGSc3<>+8(SB)/8, $0x8009800980098009
DATA kqQ4KGSc3<>+16(SB)/8, $0x8009800980098009
DATA kqQ4KGSc3<>+24(SB)/8, $0x8009800980098009
DATA kqQ4KGSc3<>+32(SB)/8, $0x800b800b800b800b
DATA kqQ4KGSc3<>+40(SB)/8, $0x800b800b800b800b
DATA kqQ4KGSc3<>+48(SB)/8, $0x800b800b800b800b
DATA kqQ4KGSc3<>+56(SB)/8, $0x800b800b800b800b
GLOBL kqQ4KGSc3<>(SB), RODATA|NOPTR, $64

DATA kqQ4KGMin<>+0(SB)/8, $0x8080800580808004
DATA kqQ4KGMin<>+8(SB)/8, $0x8080800780808006
DATA kqQ4KGMin<>+16(SB)/8, $0x8080800d8080800c
DATA kqQ4KGMin<>+24(SB)/8, $0x8080800f8080800e
GLOBL kqQ4KGMin<>(SB), RODATA|NOPTR, $32

DATA kqQ4KM30<>+0(SB)/8, $0x3030303030303030
GLOBL kqQ4KM30<>(SB), RODATA|NOPTR, $8
DATA kqQ4KM3F<>+0(SB)/8, $0x3f3f3f3f3f3f3f3f
GLOBL kqQ4KM3F<>(SB), RODATA|NOPTR, $8
DATA kqQ4KM0F<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL kqQ4KM0F<>(SB), RODATA|NOPTR, $8

// ---------------------------------------------------------------------------------
// Q6_K x Q8_K, AVX-512 VNNI. Z0..Z3 the token's 256 quants (natural order), Y4 its
// sixteen int16 sums of 16, Y5 its scale; Y6..Y9 the rows' lanes. Per half of 128
// values, ql (64 bytes) gives the low nibbles of values 0..63 and the high nibbles of
// 64..127; qh (32 bytes, loaded into both halves of a register) the two high bits,
// shifted into place by word shifts of 4|2 (left) and 0|2 (right). Z24..Z27 spread
// four of the sixteen scales (words) over the four 128-bit lanes; Z28/Z31 the shift
// counts; Z29 0x0F and Z30 0x30 in every byte.

// Q6K_HALF computes half h's two 64-value vectors at p into Z13 (values 0..63) and Z15.
#define Q6K_HALF(p, qloff, qhoff) \
	VMOVDQU64       qloff(p), Z11;      \
	VBROADCASTI64X4 qhoff(p), Z12;      \
	VPSLLVW         Z28, Z12, Z13;      \
	VPANDD          Z30, Z13, Z13;      \
	VPTERNLOGD      $0xF8, Z29, Z11, Z13; \
	VPSRLW          $4, Z11, Z14;       \
	VPSRLVW         Z31, Z12, Z15;      \
	VPANDD          Z30, Z15, Z15;      \
	VPTERNLOGD      $0xF8, Z29, Z14, Z15

// Q6K_HALFG is Q6K_HALF with GFNI: one affine transform per vector moves qh's two bits
// into place (bits 4,5, the rest zero), a third moves ql's high nibbles down; Z28, Z31
// and Z30 hold the matrices (kqQ6KGfLo, kqQ6KGfHi, ql's nibble swap).
#define Q6K_HALFG(p, qloff, qhoff) \
	VMOVDQU64       qloff(p), Z11;        \
	VBROADCASTI64X4 qhoff(p), Z12;        \
	VGF2P8AFFINEQB  $0, Z28, Z12, Z13;    \
	VPTERNLOGD      $0xF8, Z29, Z11, Z13; \
	VGF2P8AFFINEQB  $0, Z31, Z12, Z15;    \
	VGF2P8AFFINEQB  $0, Z30, Z11, Z14;    \
	VPORD           Z14, Z15, Z15

// GF(2^8) affine matrices (VGF2P8AFFINEQB: result bit i = parity(matrix byte 7-i AND
// x)) for the Q6_K decode kernel: kqQ6KGfLo moves qh bits 0,1 (lower 256 bits) or 2,3
// (upper) to bits 4,5, kqQ6KGfHi bits 4,5 or 6,7; every other result bit is zero.
DATA kqQ6KGfLo<>+0(SB)/8, $0x0000000001020000
DATA kqQ6KGfLo<>+8(SB)/8, $0x0000000001020000
DATA kqQ6KGfLo<>+16(SB)/8, $0x0000000001020000
DATA kqQ6KGfLo<>+24(SB)/8, $0x0000000001020000
DATA kqQ6KGfLo<>+32(SB)/8, $0x0000000004080000
DATA kqQ6KGfLo<>+40(SB)/8, $0x0000000004080000
DATA kqQ6KGfLo<>+48(SB)/8, $0x0000000004080000
DATA kqQ6KGfLo<>+56(SB)/8, $0x0000000004080000
GLOBL kqQ6KGfLo<>(SB), RODATA|NOPTR, $64

DATA kqQ6KGfHi<>+0(SB)/8, $0x0000000010200000
DATA kqQ6KGfHi<>+8(SB)/8, $0x0000000010200000
DATA kqQ6KGfHi<>+16(SB)/8, $0x0000000010200000
DATA kqQ6KGfHi<>+24(SB)/8, $0x0000000010200000
DATA kqQ6KGfHi<>+32(SB)/8, $0x0000000040800000
DATA kqQ6KGfHi<>+40(SB)/8, $0x0000000040800000
DATA kqQ6KGfHi<>+48(SB)/8, $0x0000000040800000
DATA kqQ6KGfHi<>+56(SB)/8, $0x0000000040800000
GLOBL kqQ6KGfHi<>(SB), RODATA|NOPTR, $64

#define Q6K_ROW(p, L, HALF) \
	VPMOVSXBW    192(p), Y17;         \
	VPMADDWD     Y4, Y17, Y21;        \
	VPSLLD       $5, Y21, Y21;        \
	HALF(p, 0, 128);                  \
	VPERMW       Z17, Z24, Z18;       \
	VPMADDUBSW   Z0, Z13, Z19;        \
	VPMADDWD     Z18, Z19, Z20;       \
	VPERMW       Z17, Z25, Z18;       \
	VPMADDUBSW   Z1, Z15, Z19;        \
	VPDPWSSD     Z18, Z19, Z20;       \
	HALF(p, 64, 160);                 \
	VPERMW       Z17, Z26, Z18;       \
	VPMADDUBSW   Z2, Z13, Z19;        \
	VPDPWSSD     Z18, Z19, Z20;       \
	VPERMW       Z17, Z27, Z18;       \
	VPMADDUBSW   Z3, Z15, Z19;        \
	VPDPWSSD     Z18, Z19, Z20;       \
	VEXTRACTI64X4 $1, Z20, Y22;       \
	VPADDD       Y22, Y20, Y20;       \
	VPSUBD       Y21, Y20, Y20;       \
	VCVTDQ2PS    Y20, Y20;            \
	VPBROADCASTW 208(p), X22;         \
	VCVTPH2PS    X22, Y22;            \
	VMULPS       Y5, Y22, Y22;        \
	VFMADD231PS  Y22, Y20, L


// ---------------------------------------------------------------------------------
// Q5_K x Q8_K, AVX-512 VNNI: Q4_K's registers and order, plus the fifth bits: qh (32
// bytes, in both halves of Z31) shifted so that group s's bit lands on bit 4, masked
// with Z30 (0x10) and or-ed into the nibbles.

#define Q5K_ROW(p, imm, L) \
	VSHUFI64X2      $imm, Z10, Z10, Z17;        \
	VBROADCASTI64X4 16(p), Z31;                 \
	VMOVDQU64       48(p), Z11;                 \
	VMOVDQU64       112(p), Z12;                \
	VPSRLW          $4, Z11, Z14;               \
	VPSRLW          $4, Z12, Z16;               \
	VPANDD          Z29, Z11, Z13;              \
	VPANDD          Z29, Z14, Z14;              \
	VPANDD          Z29, Z12, Z15;              \
	VPANDD          Z29, Z16, Z16;              \
	VPSLLVW         kqShl42<>(SB), Z31, Z18;    \
	VPTERNLOGD      $0xF8, Z30, Z18, Z13;       \
	VPSLLVW         kqShl31<>(SB), Z31, Z19;    \
	VPTERNLOGD      $0xF8, Z30, Z19, Z14;       \
	VPSRLVW         kqShr02<>(SB), Z31, Z18;    \
	VPTERNLOGD      $0xF8, Z30, Z18, Z15;       \
	VPSRLVW         kqShr13<>(SB), Z31, Z19;    \
	VPTERNLOGD      $0xF8, Z30, Z19, Z16;       \
	VPSHUFB         Z24, Z17, Z18;              \
	VPMADDUBSW      Z0, Z13, Z19;               \
	VPMADDWD        Z18, Z19, Z20;              \
	VPSHUFB         Z25, Z17, Z18;              \
	VPMADDUBSW      Z1, Z14, Z19;               \
	VPDPWSSD        Z18, Z19, Z20;              \
	VPSHUFB         Z26, Z17, Z18;              \
	VPMADDUBSW      Z2, Z15, Z19;               \
	VPDPWSSD        Z18, Z19, Z20;              \
	VPSHUFB         Z27, Z17, Z18;              \
	VPMADDUBSW      Z3, Z16, Z19;               \
	VPDPWSSD        Z18, Z19, Z20;              \
	VEXTRACTI64X4   $1, Z20, Y21;               \
	VPADDD          Y21, Y20, Y20;              \
	VCVTDQ2PS       Y20, Y20;                   \
	VPBROADCASTD    (p), X22;                   \
	VCVTPH2PS       X22, Y22;                   \
	VMULPS          Y5, Y22, Y22;               \
	VMOVSLDUP       Y22, Y23;                   \
	VMOVSHDUP       Y22, Y22;                   \
	VFMADD231PS     Y23, Y20, L;                \
	VPSHUFB         Y28, Y17, Y21;              \
	VPMADDWD        Y4, Y21, Y21;               \
	VCVTDQ2PS       Y21, Y21;                   \
	VFNMADD231PS    Y22, Y21, L


// ---------------------------------------------------------------------------------
// Q3_K x Q8_K, AVX-512 VNNI. Activations as for Q6_K (Z0..Z3, Y4 sums of 16, Y5 scale).
// Z10: the four rows' sixteen scales as signed bytes (sc-32), one row per 128-bit lane.
// Per half of 128 values, qs (32 bytes, both register halves) gives the two low bits
// of each value and hmask (Z31, loaded once per row) the third; the level u = low2 +
// 4·h (0..7) meets the activations, and 4·Σ sc·B is subtracted per lane.

// Q3K_SCALES unpacks the four rows' 12-byte scale fields into Z10 (16-byte loads from
// byte 94, so that they end with the block).
#define Q3K_SCALES \
	VMOVDQU      94(R8), X10;                  \
	VINSERTI32X4 $1, 94(R9), Z10, Z10;         \
	VINSERTI32X4 $2, 94(R10), Z10, Z10;        \
	VINSERTI32X4 $3, 94(R11), Z10, Z10;        \
	VPSHUFB      kqQ3KIdxQ<>(SB), Z10, Z11;    \
	VPSHUFB      kqQ3KIdxP<>(SB), Z10, Z10;    \
	VPSRLVD      kqQ3KShrL<>(SB), Z10, Z10;    \
	VPROLVD      kqQ3KRolQ<>(SB), Z11, Z11;    \
	VPANDD       kqBytes30<>(SB), Z11, Z11;    \
	VPTERNLOGD   $0xF8, Z29, Z10, Z11;         \
	VPSUBB       Z30, Z11, Z10

// Q3K_VEC makes one 64-value vector v from q (qs, both halves) and Z31 (hmask).
#define Q3K_VEC(qsh, hsh, hop, v, t) \
	VPSRLVW    qsh, Z12, v;           \
	hop        hsh, Z31, t;           \
	VPANDD     Z28, t, t;             \
	VPTERNLOGD $0xF8, Z27, v, t;      \
	VMOVDQA64  t, v

#define Q3K_ROW(p, lane, L) \
	VEXTRACTI32X4   $lane, Z10, X17;                                \
	VPMOVSXBW       X17, Y17;                                       \
	VPMADDWD        Y4, Y17, Y21;                                   \
	VPSLLD          $2, Y21, Y21;                                   \
	VBROADCASTI64X4 0(p), Z31;                                      \
	VBROADCASTI64X4 32(p), Z12;                                     \
	Q3K_VEC(kqShr02<>(SB), kqShl21<>(SB), VPSLLVW, Z13, Z18);       \
	Q3K_VEC(kqShr46<>(SB), kqShr01<>(SB), VPSRLVW, Z14, Z18);       \
	VBROADCASTI64X4 64(p), Z12;                                     \
	Q3K_VEC(kqShr02<>(SB), kqShr23<>(SB), VPSRLVW, Z15, Z18);       \
	Q3K_VEC(kqShr46<>(SB), kqShr45<>(SB), VPSRLVW, Z16, Z18);       \
	VPERMW          Z17, Z24, Z18;                                  \
	VPMADDUBSW      Z0, Z13, Z19;                                   \
	VPMADDWD        Z18, Z19, Z20;                                  \
	VPERMW          Z17, Z25, Z18;                                  \
	VPMADDUBSW      Z1, Z14, Z19;                                   \
	VPDPWSSD        Z18, Z19, Z20;                                  \
	VPERMW          Z17, Z26, Z18;                                  \
	VPMADDUBSW      Z2, Z15, Z19;                                   \
	VPDPWSSD        Z18, Z19, Z20;                                  \
	VPERMW          Z17, Z11, Z18;                                  \
	VPMADDUBSW      Z3, Z16, Z19;                                   \
	VPDPWSSD        Z18, Z19, Z20;                                  \
	VEXTRACTI64X4   $1, Z20, Y22;                                   \
	VPADDD          Y22, Y20, Y20;                                  \
	VPSUBD          Y21, Y20, Y20;                                  \
	VCVTDQ2PS       Y20, Y20;                                       \
	VPBROADCASTW    108(p), X22;                                    \
	VCVTPH2PS       X22, Y22;                                       \
	VMULPS          Y5, Y22, Y22;                                   \
	VFMADD231PS     Y22, Y20, L


// ---------------------------------------------------------------------------------
// Q2_K x Q8_K, AVX-512 VNNI. Activations as for Q6_K. Per half of 128 values, qs (32
// bytes, both register halves) shifted by 0|2 and 4|6 gives the levels; the sixteen
// scale bytes give the scales (low nibbles) and mins (high nibbles) as words.

#define Q2K_ROW(p, L) \
	VMOVDQU32       (p), X17;                 \
	VPSRLW          $4, X17, X21;             \
	VPANDD          X29, X17, X17;            \
	VPANDD          X29, X21, X21;            \
	VPMOVZXBW       X17, Y17;                 \
	VPMOVZXBW       X21, Y21;                 \
	VPMADDWD        Y4, Y21, Y21;             \
	VBROADCASTI64X4 16(p), Z12;               \
	VPSRLVW         Z30, Z12, Z13;            \
	VPANDD          Z28, Z13, Z13;            \
	VPSRLVW         Z31, Z12, Z14;            \
	VPANDD          Z28, Z14, Z14;            \
	VBROADCASTI64X4 48(p), Z12;               \
	VPSRLVW         Z30, Z12, Z15;            \
	VPANDD          Z28, Z15, Z15;            \
	VPSRLVW         Z31, Z12, Z16;            \
	VPANDD          Z28, Z16, Z16;            \
	VPERMW          Z17, Z24, Z18;            \
	VPMADDUBSW      Z0, Z13, Z19;             \
	VPMADDWD        Z18, Z19, Z20;            \
	VPERMW          Z17, Z25, Z18;            \
	VPMADDUBSW      Z1, Z14, Z19;             \
	VPDPWSSD        Z18, Z19, Z20;            \
	VPERMW          Z17, Z26, Z18;            \
	VPMADDUBSW      Z2, Z15, Z19;             \
	VPDPWSSD        Z18, Z19, Z20;            \
	VPERMW          Z17, Z27, Z18;            \
	VPMADDUBSW      Z3, Z16, Z19;             \
	VPDPWSSD        Z18, Z19, Z20;            \
	VEXTRACTI64X4   $1, Z20, Y23;             \
	VPADDD          Y23, Y20, Y20;            \
	VCVTDQ2PS       Y20, Y20;                 \
	VPBROADCASTD    80(p), X22;               \
	VCVTPH2PS       X22, Y22;                 \
	VMULPS          Y5, Y22, Y22;             \
	VMOVSLDUP       Y22, Y23;                 \
	VMOVSHDUP       Y22, Y22;                 \
	VFMADD231PS     Y23, Y20, L;              \
	VCVTDQ2PS       Y21, Y21;                 \
	VFNMADD231PS    Y22, Y21, L


// ---------------------------------------------------------------------------------
// Q4_0, Q4_1, Q5_0, Q5_1 x 8-bit activations, AVX-512 VNNI on 256-bit registers (one
// 32-value block per register). Per block the token's record gives Y0 (quants), Y1
// (lane terms: the offset correction as int32, or Q8_1's sum in lane 0), Y2 (its scale).
// The 16 nibble bytes become [low nibbles | high nibbles] = values 0..31; the fifth
// bits of Q5 come from a mask register (bit p -> 0x10 in byte p). Y29 0x0F, Y30 0x10.

#define QL_NIBBLES(qsoff, p, v) \
	VMOVDQU      qsoff(p), X11;        \
	VPSRLW       $4, X11, X12;         \
	VINSERTI32X4 $1, X12, Y11, Y11;    \
	VPANDD       Y29, Y11, v

#define QL_FIFTH(qhoff, p, v) \
	MOVL         qhoff(p), AX;         \
	KMOVD        AX, K1;               \
	VMOVDQU8.Z   Y30, K1, Y12;         \
	VPORD        Y12, v, v

// QL_SCALED: i (int32 lanes) into L with the weight scale at p.
#define QL_DOT(i, p, L) \
	VCVTDQ2PS    i, i;                 \
	VPBROADCASTW (p), X14;             \
	VCVTPH2PS    X14, Y14;             \
	VMULPS       Y2, Y14, Y14;         \
	VFMADD231PS  Y14, i, L

// QL_DOTMIN: the same, then the min term m·s (scale pair d|m at p; Y1 = [s, 0 ...]).
#define QL_DOTMIN(i, p, L) \
	VCVTDQ2PS    i, i;                 \
	VPBROADCASTD (p), X14;             \
	VCVTPH2PS    X14, Y14;             \
	VMULPS       Y2, Y14, Y15;         \
	VMOVSLDUP    Y15, Y15;             \
	VMOVSHDUP    Y14, Y14;             \
	VFMADD231PS  Y15, i, L;            \
	VFMADD231PS  Y14, Y1, L

#define Q40_ROW(p, L) \
	QL_NIBBLES(2, p, Y13);            \
	VMOVDQA32    Y1, Y16;             \
	VPDPBUSD     Y0, Y13, Y16;        \
	QL_DOT(Y16, p, L)

#define Q50_ROW(p, L) \
	QL_NIBBLES(6, p, Y13);            \
	QL_FIFTH(2, p, Y13);              \
	VMOVDQA32    Y1, Y16;             \
	VPDPBUSD     Y0, Y13, Y16;        \
	QL_DOT(Y16, p, L)

#define Q41_ROW(p, L) \
	QL_NIBBLES(4, p, Y13);            \
	VPXORD       Y16, Y16, Y16;       \
	VPDPBUSD     Y0, Y13, Y16;        \
	QL_DOTMIN(Y16, p, L)

#define Q51_ROW(p, L) \
	QL_NIBBLES(8, p, Y13);            \
	QL_FIFTH(4, p, Y13);              \
	VPXORD       Y16, Y16, Y16;       \
	VPDPBUSD     Y0, Y13, Y16;        \
	QL_DOTMIN(Y16, p, L)






// ---------------------------------------------------------------------------------
// The decode kernels: one weight row times one token, the row read from start to end
// (rows one after another stream sequentially, which the hardware prefetchers follow
// far better than several interleaved rows: measured 1.6-3x the bandwidth of a 4-row
// interleave on this machine). The token's activations are reloaded per super-block
// from L1. Y6 holds the row's lanes. Each super-block's step first prefetches the
// cache lines 4 KiB ahead of it (KPF3, KPF4: every line of the stream, from the next rows
// once past the row's end); one core then streamed Q4_K rows from DRAM 1.25x as fast and
// Q6_K rows 1.05x (distances of 0.5-8 KiB measured, 4 KiB best; bench/NOTES.md).

#define ROW1_PROLOGUE \
	MOVQ   w+8(FP), R8;       \
	MOVQ   nb+16(FP), CX;     \
	MOVQ   act+24(FP), SI;    \
	VPXORD Y6, Y6, Y6

// ROW1_EPILOGUE: ((L0+L1)+(L2+L3)) + ((L4+L5)+(L6+L7)) to *out.
#define ROW1_EPILOGUE \
	MOVQ         out+0(FP), AX;   \
	VHADDPS      Y6, Y6, Y6;      \
	VHADDPS      Y6, Y6, Y6;      \
	VEXTRACTF128 $1, Y6, X7;      \
	VADDSS       X7, X6, X6;      \
	VMOVSS       X6, (AX);        \
	VZEROUPPER

#define KACT \
	VMOVDQU64    (SI), Z0;        \
	VMOVDQU64    64(SI), Z1;      \
	VMOVDQU64    128(SI), Z2;     \
	VMOVDQU64    192(SI), Z3;     \
	VMOVDQU      288(SI), Y4;     \
	VBROADCASTSS 256(SI), Y5

// KPF3 and KPF4 prefetch the 3 (Q4_K, Q5_K: 144- and 176-byte super-blocks) or 4 (Q6_K:
// 210) cache lines 4 KiB past R8, addresses at most 64 bytes apart (the last one and the
// next step's first included) so every line of the stream is touched.
#define KPF3 \
	PREFETCHT0 4096(R8); \
	PREFETCHT0 4160(R8); \
	PREFETCHT0 4224(R8)

#define KPF4 \
	PREFETCHT0 4096(R8); \
	PREFETCHT0 4160(R8); \
	PREFETCHT0 4224(R8); \
	PREFETCHT0 4288(R8)

// Q4K_SCALESG unpacks the row's scale/min field in general-purpose registers, which the
// vector code leaves idle, into X10 as [sc0..3, m0..3, sc4..7, m4..7] (Q4_K and Q5_K;
// replacing the vector unpack, 9 instructions with 5 memory constants, took a sixth
// off their decode kernels' time with the weights in cache). With u0, u1, u2 the field's three 32-bit words: sc0..3 = u0 &
// 0x3f.., m0..3 = u1 & 0x3f.., sc4..7 = (u2 & 0x0f..) | ((u0 >> 2) & 0x30..), m4..7 =
// ((u2 >> 4) & 0x0f..) | ((u1 >> 2) & 0x30..), computed as 64-bit pairs (u0|u1<<32 and
// u2|u2<<28), for the super-block at p. m30, m3f, m0f are 0x30.., 0x3f.., 0x0f.. (R11,
// R12, R13 after Q4K_SETUPG, or memory); clobbers AX, BX, DX, DI.
#define Q4K_SCALESG(p, m30, m3f, m0f) \
	MOVQ    4(p), AX;        \
	MOVL    12(p), BX;       \
	MOVQ    AX, DX;          \
	SHRQ    $2, DX;          \
	ANDQ    m30, DX;         \
	ANDQ    m3f, AX;         \
	MOVQ    BX, DI;          \
	SHLQ    $28, DI;         \
	ORQ     BX, DI;          \
	ANDQ    m0f, DI;         \
	ORQ     DI, DX;          \
	VMOVQ   AX, X10;         \
	VPINSRQ $1, DX, X10, X10

// Q3K_SCALES1 unpacks the row's sixteen scales (sc-32, bytes) into X10.
#define Q3K_SCALES1 \
	VMOVDQU      94(R8), X10;                  \
	VPSHUFB      kqQ3KIdxQ<>(SB), X10, X11;    \
	VPSHUFB      kqQ3KIdxP<>(SB), X10, X10;    \
	VPSRLVD      kqQ3KShrL<>(SB), X10, X10;    \
	VPROLVD      kqQ3KRolQ<>(SB), X11, X11;    \
	VPANDD       kqBytes30<>(SB), X11, X11;    \
	VPTERNLOGD   $0xF8, X29, X10, X11;         \
	VPSUBB       X30, X11, X10

#define KROW1(name, label, SETUP, BODY, bytes) \
TEXT name(SB), NOSPLIT, $0-32;    \
	ROW1_PROLOGUE;                \
	SETUP;                        \
label:                            \
	KACT;                         \
	BODY;                         \
	ADDQ         $bytes, R8;      \
	ADDQ         $320, SI;        \
	DECQ         CX;              \
	JNZ          label;           \
	ROW1_EPILOGUE;                \
	RET

// Q4K_SETUPG: 0x0F in Z29, the scale pickers for Q4K_SCALESG's layout in Z24..Z28, its
// masks in R11..R13.
#define Q4K_SETUPG \
	MOVL         $0x0f0f0f0f, AX;          \
	VPBROADCASTD AX, Z29;                  \
	VMOVDQU64    kqQ4KGSc0<>(SB), Z24;     \
	VMOVDQU64    kqQ4KGSc1<>(SB), Z25;     \
	VMOVDQU64    kqQ4KGSc2<>(SB), Z26;     \
	VMOVDQU64    kqQ4KGSc3<>(SB), Z27;     \
	VMOVDQU32    kqQ4KGMin<>(SB), Y28;     \
	MOVQ         $0x3030303030303030, R11; \
	MOVQ         $0x3f3f3f3f3f3f3f3f, R12; \
	MOVQ         $0x0f0f0f0f0f0f0f0f, R13
#define Q4K_BODY KPF3; Q4K_SCALESG(R8, R11, R12, R13); Q4K_ROW(R8, 0x00, Y6)

#define Q5K_SETUP \
	Q4K_SETUPG;                            \
	MOVL         $0x10101010, AX;          \
	VPBROADCASTD AX, Z30
#define Q5K_BODY KPF3; Q4K_SCALESG(R8, R11, R12, R13); Q5K_ROW(R8, 0x00, Y6)

#define Q6K_SETUP \
	MOVL         $0x0f0f0f0f, AX;          \
	VPBROADCASTD AX, Z29;                  \
	MOVL         $0x30303030, AX;          \
	VPBROADCASTD AX, Z30;                  \
	VMOVDQU64    kqQ6KSc0<>(SB), Z24;      \
	VMOVDQU64    kqQ6KSc1<>(SB), Z25;      \
	VMOVDQU64    kqQ6KSc2<>(SB), Z26;      \
	VMOVDQU64    kqQ6KSc3<>(SB), Z27;      \
	VMOVDQU64    kqShl42<>(SB), Z28;       \
	VMOVDQU64    kqShr02<>(SB), Z31
#define Q6K_BODY KPF4; Q6K_ROW(R8, Y6, Q6K_HALF)

// Q6K_SETUPG: Q6K_SETUP for Q6K_HALFG (0x0F in Z29, the affine matrices in Z28, Z31 and
// Z30: ql's high nibble to bits 0..3).
#define Q6K_SETUPG \
	MOVL         $0x0f0f0f0f, AX;          \
	VPBROADCASTD AX, Z29;                  \
	MOVQ         $0x1020408000000000, AX;  \
	VPBROADCASTQ AX, Z30;                  \
	VMOVDQU64    kqQ6KSc0<>(SB), Z24;      \
	VMOVDQU64    kqQ6KSc1<>(SB), Z25;      \
	VMOVDQU64    kqQ6KSc2<>(SB), Z26;      \
	VMOVDQU64    kqQ6KSc3<>(SB), Z27;      \
	VMOVDQU64    kqQ6KGfLo<>(SB), Z28;     \
	VMOVDQU64    kqQ6KGfHi<>(SB), Z31
#define Q6K_BODYG KPF4; Q6K_ROW(R8, Y6, Q6K_HALFG)

#define Q3K_SETUP \
	MOVL         $0x0f0f0f0f, AX;          \
	VPBROADCASTD AX, Z29;                  \
	MOVL         $0x20202020, AX;          \
	VPBROADCASTD AX, Z30;                  \
	MOVL         $0x03030303, AX;          \
	VPBROADCASTD AX, Z27;                  \
	MOVL         $0x04040404, AX;          \
	VPBROADCASTD AX, Z28;                  \
	VMOVDQU64    kqQ6KSc0<>(SB), Z24;      \
	VMOVDQU64    kqQ6KSc1<>(SB), Z25;      \
	VMOVDQU64    kqQ6KSc2<>(SB), Z26;      \
	VMOVDQU64    kqQ6KSc3<>(SB), Z11
#define Q3K_BODY Q3K_SCALES1; VMOVDQU64 kqQ6KSc3<>(SB), Z11; Q3K_ROW(R8, 0, Y6)

#define Q2K_SETUP \
	MOVL         $0x0f0f0f0f, AX;          \
	VPBROADCASTD AX, Z29;                  \
	MOVL         $0x03030303, AX;          \
	VPBROADCASTD AX, Z28;                  \
	VMOVDQU64    kqQ6KSc0<>(SB), Z24;      \
	VMOVDQU64    kqQ6KSc1<>(SB), Z25;      \
	VMOVDQU64    kqQ6KSc2<>(SB), Z26;      \
	VMOVDQU64    kqQ6KSc3<>(SB), Z27;      \
	VMOVDQU64    kqShr02<>(SB), Z30;       \
	VMOVDQU64    kqShr46<>(SB), Z31
#define Q2K_BODY Q2K_ROW(R8, Y6)

// func q4kRow1VNNI(out *float32, w *byte, nb int, act *byte)
KROW1(·q4kRow1VNNI, q4kloop, Q4K_SETUPG, Q4K_BODY, 144)

// func q5kRow1VNNI(out *float32, w *byte, nb int, act *byte)
KROW1(·q5kRow1VNNI, q5kloop, Q5K_SETUP, Q5K_BODY, 176)

// func q6kRow1VNNI(out *float32, w *byte, nb int, act *byte)
KROW1(·q6kRow1VNNI, q6kloop, Q6K_SETUP, Q6K_BODY, 210)

// func q6kRow1GFNI(out *float32, w *byte, nb int, act *byte)
KROW1(·q6kRow1GFNI, q6kgloop, Q6K_SETUPG, Q6K_BODYG, 210)

// Q4_K over four rows at once (Rows4), the decode kernel's steps per row: the four
// rows' super-blocks interleaved meet the token's activations loaded once, and R12
// walks the next four rows (from row 4) sequentially, four super-blocks' bytes per
// step, prefetching every line, so the memory is still read ahead in order (as the
// legacy types' four-row kernels do). Y6..Y9 are the rows' lanes. 1.05-1.16x the
// one-row kernel (BenchmarkQDecode; bench/NOTES.md). The same for Q6_K was 1.07x from
// L2 but 0.87-0.93x from DRAM, so Q6_K keeps one row per call.

#define KR4_PROLOGUE \
	MOVQ   w+8(FP), R8;         \
	MOVQ   ldw+16(FP), DX;      \
	MOVQ   nb+24(FP), CX;       \
	MOVQ   act+32(FP), SI;      \
	LEAQ   (R8)(DX*1), R9;      \
	LEAQ   (R9)(DX*1), R10;     \
	LEAQ   (R10)(DX*1), R11;    \
	LEAQ   (R11)(DX*1), R12;    \
	VPXORD Y6, Y6, Y6;          \
	VPXORD Y7, Y7, Y7;          \
	VPXORD Y8, Y8, Y8;          \
	VPXORD Y9, Y9, Y9

// KR4_EPILOGUE: each row's ((L0+L1)+(L2+L3)) + ((L4+L5)+(L6+L7)) to out[r].
#define KR4_EPILOGUE \
	MOVQ    out+0(FP), AX;                \
	KREDUCE4(Y6, Y7, Y8, Y9, X6, X10);    \
	VMOVUPS X6, (AX);                     \
	VZEROUPPER

#define KR4_NEXT(bytes) \
	ADDQ $bytes, R8;  \
	ADDQ $bytes, R9;  \
	ADDQ $bytes, R10; \
	ADDQ $bytes, R11; \
	ADDQ $320, SI;    \
	DECQ CX

// func q4kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)
TEXT ·q4kRows4VNNI(SB), NOSPLIT, $0-40
	KR4_PROLOGUE
	MOVL         $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z29
	VMOVDQU64    kqQ4KGSc0<>(SB), Z24
	VMOVDQU64    kqQ4KGSc1<>(SB), Z25
	VMOVDQU64    kqQ4KGSc2<>(SB), Z26
	VMOVDQU64    kqQ4KGSc3<>(SB), Z27
	VMOVDQU32    kqQ4KGMin<>(SB), Y28

q4kr4loop:
	PREFETCHT0 (R12)
	PREFETCHT0 64(R12)
	PREFETCHT0 128(R12)
	PREFETCHT0 192(R12)
	PREFETCHT0 256(R12)
	PREFETCHT0 320(R12)
	PREFETCHT0 384(R12)
	PREFETCHT0 448(R12)
	PREFETCHT0 512(R12)
	KACT
	Q4K_SCALESG(R8, kqQ4KM30<>(SB), kqQ4KM3F<>(SB), kqQ4KM0F<>(SB))
	Q4K_ROW(R8, 0x00, Y6)
	Q4K_SCALESG(R9, kqQ4KM30<>(SB), kqQ4KM3F<>(SB), kqQ4KM0F<>(SB))
	Q4K_ROW(R9, 0x00, Y7)
	Q4K_SCALESG(R10, kqQ4KM30<>(SB), kqQ4KM3F<>(SB), kqQ4KM0F<>(SB))
	Q4K_ROW(R10, 0x00, Y8)
	Q4K_SCALESG(R11, kqQ4KM30<>(SB), kqQ4KM3F<>(SB), kqQ4KM0F<>(SB))
	Q4K_ROW(R11, 0x00, Y9)
	ADDQ $576, R12
	KR4_NEXT(144)
	JNZ  q4kr4loop
	KR4_EPILOGUE
	RET

// func q3kRow1VNNI(out *float32, w *byte, nb int, act *byte)
KROW1(·q3kRow1VNNI, q3kloop, Q3K_SETUP, Q3K_BODY, 110)

// func q2kRow1VNNI(out *float32, w *byte, nb int, act *byte)
KROW1(·q2kRow1VNNI, q2kloop, Q2K_SETUP, Q2K_BODY, 84)

#define QLROW1(name, label, ROW, bytes) \
TEXT name(SB), NOSPLIT, $0-32;             \
	ROW1_PROLOGUE;                         \
	MOVL         $0x0f0f0f0f, AX;          \
	VPBROADCASTD AX, Y29;                  \
	MOVL         $0x10101010, AX;          \
	VPBROADCASTD AX, Y30;                  \
label:                                     \
	VMOVDQU      (SI), Y0;                 \
	VMOVDQU      32(SI), Y1;               \
	VBROADCASTSS 64(SI), Y2;               \
	ROW(R8, Y6);                           \
	ADDQ         $bytes, R8;               \
	ADDQ         $72, SI;                  \
	DECQ         CX;                       \
	JNZ          label;                    \
	ROW1_EPILOGUE;                         \
	RET

// func q40Row1VNNI(out *float32, w *byte, nb int, act *byte)
QLROW1(·q40Row1VNNI, q40loop, Q40_ROW, 18)

// func q41Row1VNNI(out *float32, w *byte, nb int, act *byte)
QLROW1(·q41Row1VNNI, q41loop, Q41_ROW, 20)

// func q50Row1VNNI(out *float32, w *byte, nb int, act *byte)
QLROW1(·q50Row1VNNI, q50loop, Q50_ROW, 22)

// func q51Row1VNNI(out *float32, w *byte, nb int, act *byte)
QLROW1(·q51Row1VNNI, q51loop, Q51_ROW, 24)

// ---------------------------------------------------------------------------------
// 4x4 tiles (4 weight rows x 4 tokens) for the prefill: each weight super-block is
// unpacked once per row and meets four tokens, whose activations are read from memory
// (R12 = lda, R13 = 3·lda). Y0..Y15 are the lanes of (token t, row r) at 4t+r, so the
// reductions leave out[4t+r]. The per-(row, token) steps are the decode kernels', so
// the results are bit-identical.

#define TILE_PROLOGUE \
	MOVQ   w+8(FP), R8;       \
	MOVQ   ldw+16(FP), DX;    \
	MOVQ   nb+24(FP), CX;     \
	MOVQ   act+32(FP), SI;    \
	MOVQ   lda+40(FP), R12;   \
	LEAQ   (R12)(R12*2), R13; \
	LEAQ   (R8)(DX*1), R9;    \
	LEAQ   (R9)(DX*1), R10;   \
	LEAQ   (R10)(DX*1), R11;  \
	VPXORD Y0, Y0, Y0;        \
	VPXORD Y1, Y1, Y1;        \
	VPXORD Y2, Y2, Y2;        \
	VPXORD Y3, Y3, Y3;        \
	VPXORD Y4, Y4, Y4;        \
	VPXORD Y5, Y5, Y5;        \
	VPXORD Y6, Y6, Y6;        \
	VPXORD Y7, Y7, Y7;        \
	VPXORD Y8, Y8, Y8;        \
	VPXORD Y9, Y9, Y9;        \
	VPXORD Y10, Y10, Y10;     \
	VPXORD Y11, Y11, Y11;     \
	VPXORD Y12, Y12, Y12;     \
	VPXORD Y13, Y13, Y13;     \
	VPXORD Y14, Y14, Y14;     \
	VPXORD Y15, Y15, Y15

#define TILE_EPILOGUE \
	MOVQ    out+0(FP), AX;                     \
	KREDUCE4(Y0, Y1, Y2, Y3, X0, X1);          \
	VMOVUPS X0, (AX);                          \
	KREDUCE4(Y4, Y5, Y6, Y7, X4, X5);          \
	VMOVUPS X4, 16(AX);                        \
	KREDUCE4(Y8, Y9, Y10, Y11, X8, X9);        \
	VMOVUPS X8, 32(AX);                        \
	KREDUCE4(Y12, Y13, Y14, Y15, X12, X13);    \
	VMOVUPS X12, 48(AX);                       \
	VZEROUPPER

// Q4_K tile. Per row: W0..W3 in Z16..Z19, scale words S0..S3 in Z20..Z23, mins (int32)
// in Y24, [d, dmin] in Y28; Z30 the four rows' scales, Z31 0x0F.

#define Q4KT_SCALES \
	VMOVDQU32    4(R8), X30;                    \
	VINSERTI32X4 $1, 4(R9), Z30, Z30;           \
	VINSERTI32X4 $2, 4(R10), Z30, Z30;          \
	VINSERTI32X4 $3, 4(R11), Z30, Z30;          \
	VPSHUFB      kqQ4KIdxQ<>(SB), Z30, Z26;     \
	VPSHUFB      kqQ4KIdxP<>(SB), Z30, Z30;     \
	VPSRLW       $4, Z30, Z27;                  \
	VPANDD       kqQ4KMaskB<>(SB), Z27, Z27;    \
	VPANDD       kqQ4KMaskA<>(SB), Z30, Z30;    \
	VPSRLW       $2, Z26, Z26;                  \
	VPANDD       kqBytes30<>(SB), Z26, Z26;     \
	VPTERNLOGD   $0xFE, Z26, Z27, Z30

#define Q4KT_ROW(p, imm) \
	VSHUFI64X2    $imm, Z30, Z30, Z25;          \
	VMOVDQU64     16(p), Z26;                   \
	VMOVDQU64     80(p), Z27;                   \
	VPSRLW        $4, Z26, Z17;                 \
	VPSRLW        $4, Z27, Z19;                 \
	VPANDD        Z31, Z26, Z16;                \
	VPANDD        Z31, Z17, Z17;                \
	VPANDD        Z31, Z27, Z18;                \
	VPANDD        Z31, Z19, Z19;                \
	VPSHUFB       kqQ4KSc0<>(SB), Z25, Z20;     \
	VPSHUFB       kqQ4KSc1<>(SB), Z25, Z21;     \
	VPSHUFB       kqQ4KSc2<>(SB), Z25, Z22;     \
	VPSHUFB       kqQ4KSc3<>(SB), Z25, Z23;     \
	VPSHUFB       kqQ4KMin<>(SB), Y25, Y24;     \
	VPBROADCASTD  (p), X28;                     \
	VCVTPH2PS     X28, Y28

// Q4KT_TOK: (row, token) at activation address a (a base expression) into L.
#define Q4KT_TOK(a0, a1, a2, a3, ad, am, L) \
	VPMADDUBSW    a0, Z16, Z26;                 \
	VPMADDWD      Z20, Z26, Z27;                \
	VPMADDUBSW    a1, Z17, Z26;                 \
	VPDPWSSD      Z21, Z26, Z27;                \
	VPMADDUBSW    a2, Z18, Z26;                 \
	VPDPWSSD      Z22, Z26, Z27;                \
	VPMADDUBSW    a3, Z19, Z26;                 \
	VPDPWSSD      Z23, Z26, Z27;                \
	VEXTRACTI64X4 $1, Z27, Y26;                 \
	VPADDD        Y26, Y27, Y27;                \
	VCVTDQ2PS     Y27, Y27;                     \
	VMULPS.BCST   ad, Y28, Y29;                 \
	VMOVSHDUP     Y29, Y25;                     \
	VMOVSLDUP     Y29, Y29;                     \
	VFMADD231PS   Y29, Y27, L;                  \
	VPMADDWD      am, Y24, Y26;                 \
	VCVTDQ2PS     Y26, Y26;                     \
	VFNMADD231PS  Y25, Y26, L

#define Q4KT_TOKENS(L0, L1, L2, L3) \
	Q4KT_TOK((SI), 64(SI), 128(SI), 192(SI), 256(SI), 288(SI), L0);                                     \
	Q4KT_TOK((SI)(R12*1), 64(SI)(R12*1), 128(SI)(R12*1), 192(SI)(R12*1), 256(SI)(R12*1), 288(SI)(R12*1), L1); \
	Q4KT_TOK((SI)(R12*2), 64(SI)(R12*2), 128(SI)(R12*2), 192(SI)(R12*2), 256(SI)(R12*2), 288(SI)(R12*2), L2); \
	Q4KT_TOK((SI)(R13*1), 64(SI)(R13*1), 128(SI)(R13*1), 192(SI)(R13*1), 256(SI)(R13*1), 288(SI)(R13*1), L3)

// KTILE is a K-quant 4x4 tile: SETUP once, then per super-block PRE (the four rows'
// scales, where a type unpacks them together) and STEP(p, r, L0, L1, L2, L3) for row r
// (weights at p, its four tokens' lanes L0..L3); bytes is the type's block size.
#define KTILE(name, label, SETUP, PRE, STEP, bytes) \
TEXT name(SB), NOSPLIT, $0-48;       \
	TILE_PROLOGUE;                   \
	SETUP;                           \
label:                               \
	PRE;                             \
	STEP(R8, 0, Y0, Y4, Y8, Y12);    \
	STEP(R9, 1, Y1, Y5, Y9, Y13);    \
	STEP(R10, 2, Y2, Y6, Y10, Y14);  \
	STEP(R11, 3, Y3, Y7, Y11, Y15);  \
	ADDQ         $bytes, R8;         \
	ADDQ         $bytes, R9;         \
	ADDQ         $bytes, R10;        \
	ADDQ         $bytes, R11;        \
	ADDQ         $320, SI;           \
	DECQ         CX;                 \
	JNZ          label;              \
	TILE_EPILOGUE;                   \
	RET

#define KT_MASK0F MOVL $0x0f0f0f0f, AX; VPBROADCASTD AX, Z31
#define KT_MASK03 MOVL $0x03030303, AX; VPBROADCASTD AX, Z31
#define KT_NONE

#define Q4KT_STEP(p, r, L0, L1, L2, L3) Q4KT_ROW(p, (r*0x55)); Q4KT_TOKENS(L0, L1, L2, L3)

// func q4kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
KTILE(·q4kTileVNNI, q4ktloop, KT_MASK0F, Q4KT_SCALES, Q4KT_STEP, 144)

// Q6_K tile. Per row: W0..W3 in Z16..Z19 (values 0..63, 64..127, 128..191, 192..255),
// scale words in Z20..Z23, the sixteen scales as words in Y24, d in Y28; Z30 0x30,
// Z31 0x0F.

// KT16_SCALES spreads the sixteen scale words in Y24 (Z24 as the table) over Z20..Z23.
#define KT16_SCALES \
	VMOVDQU64       kqQ6KSc0<>(SB), Z26;      \
	VPERMW          Z24, Z26, Z20;            \
	VMOVDQU64       kqQ6KSc1<>(SB), Z26;      \
	VPERMW          Z24, Z26, Z21;            \
	VMOVDQU64       kqQ6KSc2<>(SB), Z26;      \
	VPERMW          Z24, Z26, Z22;            \
	VMOVDQU64       kqQ6KSc3<>(SB), Z26;      \
	VPERMW          Z24, Z26, Z23

#define Q6KT_HALF(p, qloff, qhoff, Wa, Wb) \
	VMOVDQU64       qloff(p), Z25;                \
	VBROADCASTI64X4 qhoff(p), Z26;                \
	VPSLLVW         kqShl42<>(SB), Z26, Wa;       \
	VPANDD          Z30, Wa, Wa;                  \
	VPTERNLOGD      $0xF8, Z31, Z25, Wa;          \
	VPSRLW          $4, Z25, Z25;                 \
	VPSRLVW         kqShr02<>(SB), Z26, Wb;       \
	VPANDD          Z30, Wb, Wb;                  \
	VPTERNLOGD      $0xF8, Z31, Z25, Wb

#define Q6KT_ROW(p) \
	Q6KT_HALF(p, 0, 128, Z16, Z17);               \
	Q6KT_HALF(p, 64, 160, Z18, Z19);              \
	VPMOVSXBW       192(p), Y24;                  \
	KT16_SCALES;                                  \
	VPBROADCASTW    208(p), X28;                  \
	VCVTPH2PS       X28, Y28

#define Q6KT_TOK(sh, a0, a1, a2, a3, ad, ab, L) \
	VPMADDUBSW    a0, Z16, Z26;                 \
	VPMADDWD      Z20, Z26, Z27;                \
	VPMADDUBSW    a1, Z17, Z26;                 \
	VPDPWSSD      Z21, Z26, Z27;                \
	VPMADDUBSW    a2, Z18, Z26;                 \
	VPDPWSSD      Z22, Z26, Z27;                \
	VPMADDUBSW    a3, Z19, Z26;                 \
	VPDPWSSD      Z23, Z26, Z27;                \
	VEXTRACTI64X4 $1, Z27, Y26;                 \
	VPADDD        Y26, Y27, Y27;                \
	VPMADDWD      ab, Y24, Y26;                 \
	VPSLLD        $sh, Y26, Y26;                \
	VPSUBD        Y26, Y27, Y27;                \
	VCVTDQ2PS     Y27, Y27;                     \
	VMULPS.BCST   ad, Y28, Y29;                 \
	VFMADD231PS   Y29, Y27, L

#define Q6KT_TOKENS(sh, L0, L1, L2, L3) \
	Q6KT_TOK(sh, (SI), 64(SI), 128(SI), 192(SI), 256(SI), 288(SI), L0);                                     \
	Q6KT_TOK(sh, (SI)(R12*1), 64(SI)(R12*1), 128(SI)(R12*1), 192(SI)(R12*1), 256(SI)(R12*1), 288(SI)(R12*1), L1); \
	Q6KT_TOK(sh, (SI)(R12*2), 64(SI)(R12*2), 128(SI)(R12*2), 192(SI)(R12*2), 256(SI)(R12*2), 288(SI)(R12*2), L2); \
	Q6KT_TOK(sh, (SI)(R13*1), 64(SI)(R13*1), 128(SI)(R13*1), 192(SI)(R13*1), 256(SI)(R13*1), 288(SI)(R13*1), L3)

#define Q6KT_SETUP KT_MASK0F; MOVL $0x30303030, AX; VPBROADCASTD AX, Z30
#define Q6KT_STEP(p, r, L0, L1, L2, L3) Q6KT_ROW(p); Q6KT_TOKENS(5, L0, L1, L2, L3)

// func q6kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
KTILE(·q6kTileVNNI, q6ktloop, Q6KT_SETUP, KT_NONE, Q6KT_STEP, 210)

// Byte constants of the Q5_K, Q3_K and Q2_K tiles (memory operands: the tiles have no
// register to spare for them).
DATA kqKT10<>+0(SB)/8, $0x1010101010101010
DATA kqKT10<>+8(SB)/8, $0x1010101010101010
DATA kqKT10<>+16(SB)/8, $0x1010101010101010
DATA kqKT10<>+24(SB)/8, $0x1010101010101010
DATA kqKT10<>+32(SB)/8, $0x1010101010101010
DATA kqKT10<>+40(SB)/8, $0x1010101010101010
DATA kqKT10<>+48(SB)/8, $0x1010101010101010
DATA kqKT10<>+56(SB)/8, $0x1010101010101010
GLOBL kqKT10<>(SB), RODATA|NOPTR, $64

DATA kqKT0F<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+32(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+40(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+48(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA kqKT0F<>+56(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL kqKT0F<>(SB), RODATA|NOPTR, $64

DATA kqKT20<>+0(SB)/8, $0x2020202020202020
DATA kqKT20<>+8(SB)/8, $0x2020202020202020
DATA kqKT20<>+16(SB)/8, $0x2020202020202020
DATA kqKT20<>+24(SB)/8, $0x2020202020202020
DATA kqKT20<>+32(SB)/8, $0x2020202020202020
DATA kqKT20<>+40(SB)/8, $0x2020202020202020
DATA kqKT20<>+48(SB)/8, $0x2020202020202020
DATA kqKT20<>+56(SB)/8, $0x2020202020202020
GLOBL kqKT20<>(SB), RODATA|NOPTR, $64

DATA kqKT04<>+0(SB)/8, $0x0404040404040404
DATA kqKT04<>+8(SB)/8, $0x0404040404040404
DATA kqKT04<>+16(SB)/8, $0x0404040404040404
DATA kqKT04<>+24(SB)/8, $0x0404040404040404
DATA kqKT04<>+32(SB)/8, $0x0404040404040404
DATA kqKT04<>+40(SB)/8, $0x0404040404040404
DATA kqKT04<>+48(SB)/8, $0x0404040404040404
DATA kqKT04<>+56(SB)/8, $0x0404040404040404
GLOBL kqKT04<>(SB), RODATA|NOPTR, $64

// Q5_K tile: Q4_K's registers, Q4KT_SCALES and Q4KT_TOKENS; Q5KT_ROW adds the fifth
// bits (qh, both halves of Z29) as the decode kernel's Q5K_ROW does, bit s of group s
// shifted onto bit 4 and or-ed into the nibbles under the 0x10 mask.

#define Q5KT_ROW(p, imm) \
	VSHUFI64X2      $imm, Z30, Z30, Z25;              \
	VPSHUFB         kqQ4KSc0<>(SB), Z25, Z20;         \
	VPSHUFB         kqQ4KSc1<>(SB), Z25, Z21;         \
	VPSHUFB         kqQ4KSc2<>(SB), Z25, Z22;         \
	VPSHUFB         kqQ4KSc3<>(SB), Z25, Z23;         \
	VPSHUFB         kqQ4KMin<>(SB), Y25, Y24;         \
	VMOVDQU64       48(p), Z26;                       \
	VMOVDQU64       112(p), Z27;                      \
	VPSRLW          $4, Z26, Z17;                     \
	VPSRLW          $4, Z27, Z19;                     \
	VPANDD          Z31, Z26, Z16;                    \
	VPANDD          Z31, Z17, Z17;                    \
	VPANDD          Z31, Z27, Z18;                    \
	VPANDD          Z31, Z19, Z19;                    \
	VBROADCASTI64X4 16(p), Z29;                       \
	VPSLLVW         kqShl42<>(SB), Z29, Z26;          \
	VPTERNLOGD      $0xF8, kqKT10<>(SB), Z26, Z16;    \
	VPSLLVW         kqShl31<>(SB), Z29, Z27;          \
	VPTERNLOGD      $0xF8, kqKT10<>(SB), Z27, Z17;    \
	VPSRLVW         kqShr02<>(SB), Z29, Z26;          \
	VPTERNLOGD      $0xF8, kqKT10<>(SB), Z26, Z18;    \
	VPSRLVW         kqShr13<>(SB), Z29, Z27;          \
	VPTERNLOGD      $0xF8, kqKT10<>(SB), Z27, Z19;    \
	VPBROADCASTD    (p), X28;                         \
	VCVTPH2PS       X28, Y28

#define Q5KT_STEP(p, r, L0, L1, L2, L3) Q5KT_ROW(p, (r*0x55)); Q4KT_TOKENS(L0, L1, L2, L3)

// func q5kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
KTILE(·q5kTileVNNI, q5ktloop, KT_MASK0F, Q4KT_SCALES, Q5KT_STEP, 176)

// Q3_K tile: Q6_K's registers and Q6KT_TOKENS with the offset 4 (shift 2). Per row:
// the levels u = low2 + 4·h (0..7) in Z16..Z19 (values 0..63, 64..127, 128..191,
// 192..255), scale words in Z20..Z23, the sixteen scales (sc-32) as words in Y24, d in
// Y28. Z30 holds the four rows' scales as signed bytes, one row per 128-bit lane (the
// decode kernel's Q3K_SCALES); Z31 0x03; Z27 qs (32 bytes, both halves), Z29 hmask.

#define Q3KT_SCALES \
	VMOVDQU32    94(R8), X30;                       \
	VINSERTI32X4 $1, 94(R9), Z30, Z30;              \
	VINSERTI32X4 $2, 94(R10), Z30, Z30;             \
	VINSERTI32X4 $3, 94(R11), Z30, Z30;             \
	VPSHUFB      kqQ3KIdxQ<>(SB), Z30, Z25;         \
	VPSHUFB      kqQ3KIdxP<>(SB), Z30, Z30;         \
	VPSRLVD      kqQ3KShrL<>(SB), Z30, Z30;         \
	VPROLVD      kqQ3KRolQ<>(SB), Z25, Z25;         \
	VPANDD       kqBytes30<>(SB), Z25, Z25;         \
	VPTERNLOGD   $0xF8, kqKT0F<>(SB), Z30, Z25;     \
	VPSUBB       kqKT20<>(SB), Z25, Z30

// Q3KT_VEC: v = ((qs >> qsh) & 3) | ((hmask hop hsh) & 4).
#define Q3KT_VEC(qsh, hsh, hop, v) \
	VPSRLVW    qsh, Z27, v;                 \
	hop        hsh, Z29, Z26;               \
	VPANDD     kqKT04<>(SB), Z26, Z26;      \
	VPTERNLOGD $0xEC, Z31, Z26, v

#define Q3KT_ROW(p, lane) \
	VEXTRACTI32X4   $lane, Z30, X25;                                \
	VPMOVSXBW       X25, Y24;                                       \
	KT16_SCALES;                                                    \
	VBROADCASTI64X4 0(p), Z29;                                      \
	VBROADCASTI64X4 32(p), Z27;                                     \
	Q3KT_VEC(kqShr02<>(SB), kqShl21<>(SB), VPSLLVW, Z16);           \
	Q3KT_VEC(kqShr46<>(SB), kqShr01<>(SB), VPSRLVW, Z17);           \
	VBROADCASTI64X4 64(p), Z27;                                     \
	Q3KT_VEC(kqShr02<>(SB), kqShr23<>(SB), VPSRLVW, Z18);           \
	Q3KT_VEC(kqShr46<>(SB), kqShr45<>(SB), VPSRLVW, Z19);           \
	VPBROADCASTW    108(p), X28;                                    \
	VCVTPH2PS       X28, Y28

#define Q3KT_STEP(p, r, L0, L1, L2, L3) Q3KT_ROW(p, r); Q6KT_TOKENS(2, L0, L1, L2, L3)

// func q3kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
KTILE(·q3kTileVNNI, q3ktloop, KT_MASK03, Q3KT_SCALES, Q3KT_STEP, 110)

// Q2_K tile: Q4_K's registers and Q4KT_TOKENS, whose min term reads the token's sixteen
// int16 sums of 16 against the sixteen mins as words in Y24 (m_{2j}·B_{2j} +
// m_{2j+1}·B_{2j+1} per lane, the decode kernel's). Per row: the levels (0..3) in
// Z16..Z19, scale words in Z20..Z23 (KT16_SCALES), [d, dmin] in Y28; Z31 0x03, Z29 qs
// (32 bytes, both halves).

#define Q2KT_ROW(p) \
	VMOVDQU32       (p), X25;                 \
	VPSRLW          $4, X25, X29;             \
	VPANDD          kqKT0F<>(SB), X25, X25;   \
	VPANDD          kqKT0F<>(SB), X29, X29;   \
	VPMOVZXBW       X25, Y24;                 \
	KT16_SCALES;                              \
	VPMOVZXBW       X29, Y24;                 \
	VBROADCASTI64X4 16(p), Z29;               \
	VPSRLVW         kqShr02<>(SB), Z29, Z16;  \
	VPANDD          Z31, Z16, Z16;            \
	VPSRLVW         kqShr46<>(SB), Z29, Z17;  \
	VPANDD          Z31, Z17, Z17;            \
	VBROADCASTI64X4 48(p), Z29;               \
	VPSRLVW         kqShr02<>(SB), Z29, Z18;  \
	VPANDD          Z31, Z18, Z18;            \
	VPSRLVW         kqShr46<>(SB), Z29, Z19;  \
	VPANDD          Z31, Z19, Z19;            \
	VPBROADCASTD    80(p), X28;               \
	VCVTPH2PS       X28, Y28

#define Q2KT_STEP(p, r, L0, L1, L2, L3) Q2KT_ROW(p); Q4KT_TOKENS(L0, L1, L2, L3)

// func q2kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
KTILE(·q2kTileVNNI, q2ktloop, KT_MASK03, KT_NONE, Q2KT_STEP, 84)

// ---------------------------------------------------------------------------------
// Q8_K activation quantization (one 256-value record): ggml's quantize_row_q8_K_ref
// step for step — amax = max|x|; max = the first value with |x| = amax;
// iscale = -127/max; q = min(127, nearest-even(iscale·x)) (the product rounded to
// float32 first, then VCVTPS2DQ: nearest even, as ggml's 1.5·2^23 trick); d = 1/iscale;
// all zero when amax is 0. Writes the 256 quants in natural order at rec, d at rec+256
// and the sixteen int16 sums of 16 at rec+288 (bytes biased by 128 and summed with
// VPSADBW, the bias taken off).

#define Q8K_FIND(z) \
	ADDQ   $16, BX;        \
	VCMPPS $0, Z16, z, K1; \
	KMOVW  K1, AX;         \
	TESTL  AX, AX;         \
	JNZ    q8kfound

#define Q8K_QUANT16(off, dst) \
	VMULPS    off(SI), Z18, Z0;  \
	VCVTPS2DQ Z0, Z0;            \
	VPMINSD   Z20, Z0, Z0;       \
	VPMOVDB   Z0, dst

// Q8K_QUANT64: four groups of 16 (64 values from x+off): quants to qoff(DI), their four
// sums to soff(DI).
#define Q8K_QUANT64(off, qoff, soff) \
	Q8K_QUANT16(off, X1);                \
	Q8K_QUANT16(off+64, X2);             \
	Q8K_QUANT16(off+128, X3);            \
	Q8K_QUANT16(off+192, X4);            \
	VINSERTI32X4 $1, X2, Z1, Z1;         \
	VINSERTI32X4 $2, X3, Z1, Z1;         \
	VINSERTI32X4 $3, X4, Z1, Z1;         \
	VMOVDQU64    Z1, qoff(DI);           \
	VPXORD       Z21, Z1, Z1;            \
	VPSADBW      Z22, Z1, Z1;            \
	VPMOVQW      Z1, X1;                 \
	VPHADDW      X1, X1, X1;             \
	VPSUBW       X23, X1, X1;            \
	VMOVQ        X1, soff(DI)

// func quantQ8KAVX512(rec *byte, x *float32)
TEXT ·quantQ8KAVX512(SB), NOSPLIT, $0-16
	MOVQ         rec+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	VANDPS       (SI), Z31, Z0
	VANDPS       64(SI), Z31, Z1
	VANDPS       128(SI), Z31, Z2
	VANDPS       192(SI), Z31, Z3
	VANDPS       256(SI), Z31, Z4
	VANDPS       320(SI), Z31, Z5
	VANDPS       384(SI), Z31, Z6
	VANDPS       448(SI), Z31, Z7
	VANDPS       512(SI), Z31, Z8
	VANDPS       576(SI), Z31, Z9
	VANDPS       640(SI), Z31, Z10
	VANDPS       704(SI), Z31, Z11
	VANDPS       768(SI), Z31, Z12
	VANDPS       832(SI), Z31, Z13
	VANDPS       896(SI), Z31, Z14
	VANDPS       960(SI), Z31, Z15
	VMAXPS       Z1, Z0, Z16
	VMAXPS       Z3, Z2, Z17
	VMAXPS       Z5, Z4, Z18
	VMAXPS       Z7, Z6, Z19
	VMAXPS       Z9, Z8, Z20
	VMAXPS       Z11, Z10, Z21
	VMAXPS       Z13, Z12, Z22
	VMAXPS       Z15, Z14, Z23
	VMAXPS       Z17, Z16, Z16
	VMAXPS       Z19, Z18, Z18
	VMAXPS       Z21, Z20, Z20
	VMAXPS       Z23, Z22, Z22
	VMAXPS       Z18, Z16, Z16
	VMAXPS       Z22, Z20, Z20
	VMAXPS       Z20, Z16, Z16
	VEXTRACTF64X4 $1, Z16, Y17
	VMAXPS       Y17, Y16, Y16
	VEXTRACTF32X4 $1, Y16, X17
	VMAXPS       X17, X16, X16
	VMOVHLPS     X16, X16, X17
	VMAXPS       X17, X16, X16
	VMOVSHDUP    X16, X17
	VMAXSS       X17, X16, X16          // amax
	VXORPS       X17, X17, X17
	VUCOMISS     X17, X16
	JEQ          q8kzero
	VBROADCASTSS X16, Z16
	// The first value with |x| = amax: scan the 16 vectors of |x|.
	XORQ         BX, BX
	VCMPPS       $0, Z16, Z0, K1
	KMOVW        K1, AX
	TESTL        AX, AX
	JNZ          q8kfound
	Q8K_FIND(Z1)
	Q8K_FIND(Z2)
	Q8K_FIND(Z3)
	Q8K_FIND(Z4)
	Q8K_FIND(Z5)
	Q8K_FIND(Z6)
	Q8K_FIND(Z7)
	Q8K_FIND(Z8)
	Q8K_FIND(Z9)
	Q8K_FIND(Z10)
	Q8K_FIND(Z11)
	Q8K_FIND(Z12)
	Q8K_FIND(Z13)
	Q8K_FIND(Z14)
	Q8K_FIND(Z15)

q8kfound:
	BSFL         AX, AX
	ADDQ         AX, BX
	MOVL         $0xc2fe0000, AX       // -127.0
	VMOVD        AX, X18
	VDIVSS       (SI)(BX*4), X18, X18  // iscale = -127/max
	MOVL         $0x3f800000, AX       // 1.0
	VMOVD        AX, X19
	VDIVSS       X18, X19, X19         // d = 1/iscale
	VMOVSS       X19, 256(DI)
	VBROADCASTSS X18, Z18
	MOVL         $127, AX
	VPBROADCASTD AX, Z20
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z21
	VPXORD       Z22, Z22, Z22
	MOVL         $0x08000800, AX       // 2048 = 16·128 in each word
	VPBROADCASTD AX, X23
	Q8K_QUANT64(0, 0, 288)
	Q8K_QUANT64(256, 64, 296)
	Q8K_QUANT64(512, 128, 304)
	Q8K_QUANT64(768, 192, 312)
	VZEROUPPER
	RET

q8kzero:
	VPXORD    Z0, Z0, Z0
	VMOVDQU64 Z0, (DI)
	VMOVDQU64 Z0, 64(DI)
	VMOVDQU64 Z0, 128(DI)
	VMOVDQU64 Z0, 192(DI)
	VMOVDQU64 Z0, 256(DI)
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------------
// Q8_0 / Q8_1 activation quantization (72-byte records per 32 values): llama.cpp's x86
// quantize_row_q8_0/q8_1 — d = fp16(amax/127), q = nearest-even(x·(127/amax)) (all zero
// when amax is 0), then the lane terms: corr·(sum of each 4 quants) as int32 when corr
// is not 0 (Q4_0: -8, Q5_0: -16), else Q8_1's s = fp16(amax/127 · Σq) in lane 0 as
// float32 and zeros.

// func quantQ8_0AVX512(rec *byte, x *float32, nb int, corr int32)
TEXT ·quantQ8_0AVX512(SB), NOSPLIT, $0-28
	MOVQ         rec+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         nb+16(FP), CX
	MOVL         corr+24(FP), R8
	VPBROADCASTD R8, Y30                // corr in every lane
	MOVL         $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL         $0x42fe0000, AX        // 127.0
	VMOVD        AX, X29
	MOVL         $0x01010101, AX
	VPBROADCASTD AX, Y28                // unsigned ones for VPDPBUSD

q80loop:
	VMOVUPS      (SI), Z0
	VMOVUPS      64(SI), Z1
	VANDPS       Z31, Z0, Z2
	VANDPS       Z31, Z1, Z3
	VMAXPS       Z3, Z2, Z2
	VEXTRACTF64X4 $1, Z2, Y3
	VMAXPS       Y3, Y2, Y2
	VEXTRACTF32X4 $1, Y2, X3
	VMAXPS       X3, X2, X2
	VMOVHLPS     X2, X2, X3
	VMAXPS       X3, X2, X2
	VMOVSHDUP    X2, X3
	VMAXSS       X3, X2, X2             // amax
	VDIVSS       X29, X2, X4            // d = amax/127
	VCVTPS2PH    $0, X4, X5             // to fp16, nearest even
	VCVTPH2PS    X5, X5
	VMOVSS       X5, 64(DI)
	MOVL         $0, 68(DI)
	VXORPS       X6, X6, X6
	VUCOMISS     X6, X2
	JEQ          q80id
	VDIVSS       X2, X29, X6            // id = 127/amax

q80id:
	VBROADCASTSS X6, Z6
	VMULPS       Z6, Z0, Z0
	VMULPS       Z6, Z1, Z1
	VCVTPS2DQ    Z0, Z0
	VCVTPS2DQ    Z1, Z1
	VPMOVDB      Z0, X7
	VPMOVDB      Z1, X8
	VINSERTI32X4 $1, X8, Y7, Y7
	VMOVDQU      Y7, (DI)
	VPXORD       Y9, Y9, Y9
	VPDPBUSD     Y7, Y28, Y9            // the sums of each 4 quants
	TESTL        R8, R8
	JEQ          q81
	VPMULLD      Y30, Y9, Y9
	VMOVDQU      Y9, 32(DI)
	JMP          q80next

q81:
	VEXTRACTI32X4 $1, Y9, X10
	VPADDD       X10, X9, X9
	VPSHUFD      $0x4e, X9, X10
	VPADDD       X10, X9, X9
	VPSHUFD      $0xb1, X9, X10
	VPADDD       X10, X9, X9            // Σq in every lane
	VCVTDQ2PS    X9, X9
	VMULSS       X9, X4, X9             // d·Σq
	VCVTPS2PH    $0, X9, X9
	VCVTPH2PS    X9, X9
	VXORPS       Y10, Y10, Y10
	VMOVSS       X9, X10, X10           // [s, 0, 0, ...]
	VMOVDQU      Y10, 32(DI)

q80next:
	ADDQ         $128, SI
	ADDQ         $72, DI
	DECQ         CX
	JNZ          q80loop
	VZEROUPPER
	RET

// ---------------------------------------------------------------------------------
// Q4_0, Q5_0, Q4_1, Q5_1 4x4 tiles (TILE_PROLOGUE's registers: Y0..Y15 the lanes of
// (token t, row r) at 4t+r). Per 32-value block the four tokens' records give Y16..Y19
// (quants) and Y20..Y23 (lane terms); the sixteen scale products d_r·d_a(t), rounded
// to float32 as the decode kernels round them, come from one 16-lane VMULPS a chunk
// ahead (QLT_PRODS) into a slot of the frame (DI) at 4·(4t+r), where each (row, token)
// FMA broadcasts its own; the types with a min keep m_r at 64+4r. Each row's block is
// unpacked once into Y24 (the 16 nibble bytes in both halves, the upper half shifted
// right by 4 per word, masked) and meets the four tokens. K1..K3 pick lanes 4..15,
// 8..15, 12..15 (tokens 1..3 of a 16-lane vector); Y27 0x0F, Y28 the word shifts
// [0 ×8 | 4 ×8], Y26 0x10.

DATA kqQLShr04<>+0(SB)/8, $0x0000000000000000
DATA kqQLShr04<>+8(SB)/8, $0x0000000000000000
DATA kqQLShr04<>+16(SB)/8, $0x0004000400040004
DATA kqQLShr04<>+24(SB)/8, $0x0004000400040004
GLOBL kqQLShr04<>(SB), RODATA|NOPTR, $32

DATA kqQLIdxD<>+0(SB)/8, $0x0000000200000000
DATA kqQLIdxD<>+8(SB)/8, $0x0000000600000004
DATA kqQLIdxD<>+16(SB)/8, $0x0000000200000000
DATA kqQLIdxD<>+24(SB)/8, $0x0000000600000004
DATA kqQLIdxD<>+32(SB)/8, $0x0000000200000000
DATA kqQLIdxD<>+40(SB)/8, $0x0000000600000004
DATA kqQLIdxD<>+48(SB)/8, $0x0000000200000000
DATA kqQLIdxD<>+56(SB)/8, $0x0000000600000004
GLOBL kqQLIdxD<>(SB), RODATA|NOPTR, $64

DATA kqQLIdxM<>+0(SB)/8, $0x0000000300000001
DATA kqQLIdxM<>+8(SB)/8, $0x0000000700000005
DATA kqQLIdxM<>+16(SB)/8, $0x0000000300000001
DATA kqQLIdxM<>+24(SB)/8, $0x0000000700000005
GLOBL kqQLIdxM<>(SB), RODATA|NOPTR, $32

// QLT_HALVES gathers the four rows' fp16 fields at off into AX (row r in bits 16r..).
#define QLT_HALVES(off) \
	MOVWQZX off(R8), AX;  \
	MOVWQZX off(R9), BX;  \
	SHLQ    $16, BX;      \
	ORQ     BX, AX;       \
	MOVWQZX off(R10), BX; \
	SHLQ    $32, BX;      \
	ORQ     BX, AX;       \
	MOVWQZX off(R11), BX; \
	SHLQ    $48, BX;      \
	ORQ     BX, AX

// QLT_SCALES (the four-row decode): d_r·d_a to (DI) at 4r (all sixteen lanes, d_a in Z30).
#define QLT_SCALES \
	QLT_HALVES(0);                \
	VPBROADCASTQ AX, Y29;         \
	VCVTPH2PS    Y29, Z29;        \
	VMULPS       Z30, Z29, Z29;   \
	VMOVUPS      Z29, (DI)

// QLT_MINS (the four-row decode): the four m_r to 64(DI).
#define QLT_MINS \
	QLT_HALVES(2);                \
	VMOVQ        AX, X29;         \
	VCVTPH2PS    X29, X29;        \
	VMOVUPS      X29, 64(DI)

// QLT_NIBBLES unpacks the row's 16 nibble bytes at qsoff(p) into Y24.
#define QLT_NIBBLES(qsoff, p) \
	VBROADCASTI32X4 qsoff(p), Y24;  \
	VPSRLVW         Y28, Y24, Y24;  \
	VPANDD          Y27, Y24, Y24

// QLT_FIFTH adds Q5's fifth bits (qh at qhoff(p), bit i for value i) to Y24.
#define QLT_FIFTH(qhoff, p) \
	KMOVD   qhoff(p), K4;           \
	VPADDB  Y26, Y24, K4, Y24

// QLT_TOK: (row, token) with the offset terms in c: I = c + Σ q·a, L += I·dd.
#define QLT_TOK(a, c, dd, L) \
	VMOVDQA32         c, Y25;        \
	VPDPBUSD          a, Y24, Y25;   \
	VCVTDQ2PS         Y25, Y25;      \
	VFMADD231PS.BCST  dd(DI), Y25, L

// QLT_TOKMIN: (row, token) of a type with a min: I = Σ q·a, L += I·dd, L += c·m.
#define QLT_TOKMIN(a, c, dd, m, L) \
	VPXORD            Y25, Y25, Y25; \
	VPDPBUSD          a, Y24, Y25;   \
	VCVTDQ2PS         Y25, Y25;      \
	VFMADD231PS.BCST  dd(DI), Y25, L; \
	VFMADD231PS.BCST  m(DI), c, L

#define QLT_TOKENS(r, La, Lb, Lc, Ld) \
	QLT_TOK(Y16, Y20, 0+4*r, La);  \
	QLT_TOK(Y17, Y21, 16+4*r, Lb); \
	QLT_TOK(Y18, Y22, 32+4*r, Lc); \
	QLT_TOK(Y19, Y23, 48+4*r, Ld)

#define QLT_TOKENSMIN(r, La, Lb, Lc, Ld) \
	QLT_TOKMIN(Y16, Y20, 0+4*r, 64+4*r, La);  \
	QLT_TOKMIN(Y17, Y21, 16+4*r, 64+4*r, Lb); \
	QLT_TOKMIN(Y18, Y22, 32+4*r, 64+4*r, Lc); \
	QLT_TOKMIN(Y19, Y23, 48+4*r, 64+4*r, Ld)

#define QLT_NEXT(bytes) \
	ADDQ $bytes, R8;  \
	ADDQ $bytes, R9;  \
	ADDQ $bytes, R10; \
	ADDQ $bytes, R11; \
	ADDQ $72, SI;     \
	DECQ CX

// The tiles take their scale products a chunk ahead (as the Q8_0 tile does): for up to
// 32 blocks at a time, one 80-byte slot per block in the frame (R14, 64-byte aligned)
// gets the block's sixteen d_r·d_a(t) at 4·(4t+r) and, for the types with a min, the
// four m_r at 64+4r; the block loop then broadcasts them from slots whose stores have
// long retired (products stored just before use wait on store forwarding).

// QLT_PRODS fills the slots of the chunk's BX blocks (weights R8..R11, activations SI);
// leaves AX at the end of the slots. The four rows' first dwords (d and m, or d and two
// nibble bytes) are merged into [d0 m0 d1 m1 d2 m2 d3 m3] and converted at once; Z31
// picks the d's into lane 4t+r, Y25 the m's. MINS is QLT_PMINS or QLT_NOMINS.
#define QLT_PRODS(label, bytes, MINS) \
	MOVQ         SI, AX;                       \
	XORQ         DX, DX;                       \
	MOVQ         R14, DI;                      \
	VMOVDQU32    kqQLIdxD<>(SB), Z31;          \
	VMOVDQU32    kqQLIdxM<>(SB), Y25;          \
label:                                         \
	VMOVD        (R8)(DX*1), X16;              \
	VMOVD        (R9)(DX*1), X17;              \
	VMOVD        (R10)(DX*1), X18;             \
	VMOVD        (R11)(DX*1), X19;             \
	VPUNPCKLDQ   X17, X16, X16;                \
	VPUNPCKLDQ   X19, X18, X18;                \
	VPUNPCKLQDQ  X18, X16, X16;                \
	VCVTPH2PS    X16, Y16;                     \
	VPERMPS      Z16, Z31, Z29;                \
	VBROADCASTSS 64(AX), Z30;                  \
	VBROADCASTSS 64(AX)(R12*1), K1, Z30;       \
	VBROADCASTSS 64(AX)(R12*2), K2, Z30;       \
	VBROADCASTSS 64(AX)(R13*1), K3, Z30;       \
	VMULPS       Z30, Z29, Z29;                \
	VMOVUPS      Z29, (DI);                    \
	MINS;                                      \
	ADDQ         $bytes, DX;                   \
	ADDQ         $72, AX;                      \
	ADDQ         $80, DI;                      \
	DECQ         BX;                           \
	JNZ          label;                        \
	MOVQ         DI, AX

#define QLT_NOMINS

#define QLT_PMINS \
	VPERMPS      Y16, Y25, Y17;                \
	VMOVUPS      X17, 64(DI)

// QLT_TILE is one type's tile: BODY computes the 16 (row, token) steps of one block
// (activations in Y16..Y23, the block's slot at DI).
#define QLT_TILE(name, chunkl, prodl, loopl, bytes, MINS, BODY) \
TEXT name(SB), $2624-48;                       \
	TILE_PROLOGUE;                             \
	MOVL         $0x0f0f0f0f, AX;              \
	VPBROADCASTD AX, Y27;                      \
	MOVL         $0x10101010, AX;              \
	VPBROADCASTD AX, Y26;                      \
	VMOVDQU32    kqQLShr04<>(SB), Y28;         \
	MOVL         $0xfff0, AX;                  \
	KMOVW        AX, K1;                       \
	MOVL         $0xff00, AX;                  \
	KMOVW        AX, K2;                       \
	MOVL         $0xf000, AX;                  \
	KMOVW        AX, K3;                       \
	LEAQ         63(SP), R14;                  \
	ANDQ         $-64, R14;                    \
chunkl:                                        \
	MOVQ         $32, BX;                      \
	CMPQ         CX, BX;                       \
	CMOVQLT      CX, BX;                       \
	SUBQ         BX, CX;                       \
	QLT_PRODS(prodl, bytes, MINS);             \
	MOVQ         R14, DI;                      \
loopl:                                         \
	VMOVDQU32    (SI), Y16;                    \
	VMOVDQU32    (SI)(R12*1), Y17;             \
	VMOVDQU32    (SI)(R12*2), Y18;             \
	VMOVDQU32    (SI)(R13*1), Y19;             \
	VMOVDQU32    32(SI), Y20;                  \
	VMOVDQU32    32(SI)(R12*1), Y21;           \
	VMOVDQU32    32(SI)(R12*2), Y22;           \
	VMOVDQU32    32(SI)(R13*1), Y23;           \
	BODY;                                      \
	ADDQ         $bytes, R8;                   \
	ADDQ         $bytes, R9;                   \
	ADDQ         $bytes, R10;                  \
	ADDQ         $bytes, R11;                  \
	ADDQ         $72, SI;                      \
	ADDQ         $80, DI;                      \
	CMPQ         DI, AX;                       \
	JNE          loopl;                        \
	TESTQ        CX, CX;                       \
	JNZ          chunkl;                       \
	TILE_EPILOGUE;                             \
	RET

// QLT_ROWS4 runs a type's row step ROW(p, r, La, Lb, Lc, Ld) for the four rows: row r's
// weights at p, its tokens' lanes in La..Ld.
#define QLT_ROWS4(ROW) \
	ROW(R8, 0, Y0, Y4, Y8, Y12);               \
	ROW(R9, 1, Y1, Y5, Y9, Y13);               \
	ROW(R10, 2, Y2, Y6, Y10, Y14);             \
	ROW(R11, 3, Y3, Y7, Y11, Y15)

#define Q40T_ROW(p, r, La, Lb, Lc, Ld) QLT_NIBBLES(2, p); QLT_TOKENS(r, La, Lb, Lc, Ld)
#define Q50T_ROW(p, r, La, Lb, Lc, Ld) QLT_NIBBLES(6, p); QLT_FIFTH(2, p); QLT_TOKENS(r, La, Lb, Lc, Ld)
#define Q41T_ROW(p, r, La, Lb, Lc, Ld) QLT_NIBBLES(4, p); QLT_TOKENSMIN(r, La, Lb, Lc, Ld)
#define Q51T_ROW(p, r, La, Lb, Lc, Ld) QLT_NIBBLES(8, p); QLT_FIFTH(4, p); QLT_TOKENSMIN(r, La, Lb, Lc, Ld)

#define Q40T_BODY QLT_ROWS4(Q40T_ROW)
#define Q50T_BODY QLT_ROWS4(Q50T_ROW)
#define Q41T_BODY QLT_ROWS4(Q41T_ROW)
#define Q51T_BODY QLT_ROWS4(Q51T_ROW)

// func q40TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
QLT_TILE(·q40TileVNNI, q40tchunk, q40tprod, q40tloop, 18, QLT_NOMINS, Q40T_BODY)

// func q50TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
QLT_TILE(·q50TileVNNI, q50tchunk, q50tprod, q50tloop, 22, QLT_NOMINS, Q50T_BODY)

// func q41TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
QLT_TILE(·q41TileVNNI, q41tchunk, q41tprod, q41tloop, 20, QLT_PMINS, Q41T_BODY)

// func q51TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)
QLT_TILE(·q51TileVNNI, q51tchunk, q51tprod, q51tloop, 24, QLT_PMINS, Q51T_BODY)

// ---------------------------------------------------------------------------------
// Q4_0, Q5_0, Q4_1, Q5_1 decode over four rows at once (Rows4): the tile's steps with
// one token, the four rows' blocks interleaved so that four independent FMA chains are
// in flight. One row's lanes take one (two with a min) dependent FMA per 32 values, so
// the one-row kernel waits on FMA latency: 4 cycles per 18 bytes of Q4_0, 8 per 20
// bytes of Q4_1. Four interleaved rows are four short streams that the hardware
// prefetchers follow badly (measured 7 GB/s against the one-row kernel's 13 from DRAM),
// so R12 walks the next four rows (from row 4) sequentially, 4·block bytes per step,
// and prefetches them: the whole matrix is then read ahead in order.

#define QLR4_PROLOGUE \
	MOVQ         w+8(FP), R8;       \
	MOVQ         ldw+16(FP), DX;    \
	MOVQ         nb+24(FP), CX;     \
	MOVQ         act+32(FP), SI;    \
	LEAQ         (R8)(DX*1), R9;    \
	LEAQ         (R9)(DX*1), R10;   \
	LEAQ         (R10)(DX*1), R11;  \
	LEAQ         (R11)(DX*1), R12;  \
	MOVQ         SP, DI;            \
	VPXORD       Y0, Y0, Y0;        \
	VPXORD       Y1, Y1, Y1;        \
	VPXORD       Y2, Y2, Y2;        \
	VPXORD       Y3, Y3, Y3;        \
	MOVL         $0x0f0f0f0f, AX;   \
	VPBROADCASTD AX, Y27;           \
	MOVL         $0x10101010, AX;   \
	VPBROADCASTD AX, Y26;           \
	VMOVDQU32    kqQLShr04<>(SB), Y28

#define QLR4_ACT \
	PREFETCHT0   (R12);             \
	PREFETCHT0   64(R12);           \
	VMOVDQU32    (SI), Y16;         \
	VMOVDQU32    32(SI), Y20;       \
	VBROADCASTSS 64(SI), Z30

#define QLR4_EPILOGUE \
	MOVQ    out+0(FP), AX;                \
	KREDUCE4(Y0, Y1, Y2, Y3, X0, X1);     \
	VMOVUPS X0, (AX);                     \
	VZEROUPPER

// QLR4 is a legacy type's four-row decode kernel: per block the token's activations and
// the four rows' scales, PRE (the mins, where the type has them), then STEP(p, r, L) for
// row r (weights at p, lanes in L); abytes and wbytes are the activation record's and
// the weight block's sizes.
#define QLR4(name, label, PRE, STEP, abytes, wbytes) \
TEXT name(SB), NOSPLIT, $80-40; \
	QLR4_PROLOGUE;              \
label:                          \
	QLR4_ACT;                   \
	QLT_SCALES;                 \
	PRE;                        \
	STEP(R8, 0, Y0);            \
	STEP(R9, 1, Y1);            \
	STEP(R10, 2, Y2);           \
	STEP(R11, 3, Y3);           \
	ADDQ         $abytes, R12;  \
	QLT_NEXT(wbytes);           \
	JNZ          label;         \
	QLR4_EPILOGUE;              \
	RET

#define Q40R4_STEP(p, r, L) QLT_NIBBLES(2, p); QLT_TOK(Y16, Y20, 4*r, L)
#define Q41R4_STEP(p, r, L) QLT_NIBBLES(4, p); QLT_TOKMIN(Y16, Y20, 4*r, 64+4*r, L)
#define Q50R4_STEP(p, r, L) QLT_NIBBLES(6, p); QLT_FIFTH(2, p); QLT_TOK(Y16, Y20, 4*r, L)
#define Q51R4_STEP(p, r, L) QLT_NIBBLES(8, p); QLT_FIFTH(4, p); QLT_TOKMIN(Y16, Y20, 4*r, 64+4*r, L)

// func q40Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)
QLR4(·q40Rows4VNNI, q40r4loop, KT_NONE, Q40R4_STEP, 72, 18)

// func q41Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)
QLR4(·q41Rows4VNNI, q41r4loop, QLT_MINS, Q41R4_STEP, 80, 20)

// func q50Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)
QLR4(·q50Rows4VNNI, q50r4loop, KT_NONE, Q50R4_STEP, 88, 22)

// func q51Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)
QLR4(·q51Rows4VNNI, q51r4loop, QLT_MINS, Q51R4_STEP, 96, 24)
