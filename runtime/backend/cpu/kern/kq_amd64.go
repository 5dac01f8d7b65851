package kern

import "golang.org/x/sys/cpu"

// The AVX-512 VNNI decode kernels (kq_vnni_amd64.s): one row x one token.

//go:noescape
func q4kRow1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q5kRow1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q6kRow1VNNI(out *float32, w *byte, nb int, act *byte)

// q6kRow1GFNI is q6kRow1VNNI with its 6-bit unpack in GFNI affine transforms (5
// instructions per 128 values instead of 7); used where the CPU has GFNI.
//
//go:noescape
func q6kRow1GFNI(out *float32, w *byte, nb int, act *byte)

// q4kRows4VNNI is Q4_K's Rows4 in one call: the four rows interleaved per super-block
// (the activations loaded once for them) and the next four rows prefetched in order.
//
//go:noescape
func q4kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q3kRow1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q2kRow1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q40Row1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q41Row1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q50Row1VNNI(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q51Row1VNNI(out *float32, w *byte, nb int, act *byte)

// The AVX2 decode kernels (kq_avx2_amd64.s): one row x one token.

//go:noescape
func q4kRow1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q5kRow1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q6kRow1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q3kRow1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q2kRow1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q40Row1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q41Row1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q50Row1AVX2(out *float32, w *byte, nb int, act *byte)

//go:noescape
func q51Row1AVX2(out *float32, w *byte, nb int, act *byte)

// The AVX-512 VNNI tiles: 4 rows x 4 tokens.

//go:noescape
func q4kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q6kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func quantQ8KAVX512(rec *byte, x *float32)

// quantQ8KFast quantizes one Q8_K record (natural order, int16 sums) in assembly
// where the CPU allows; false when the caller must.
func quantQ8KFast(rec []byte, x []float32) bool {
	if level != levelAVX512 || len(rec) < qkActRecord || len(x) < 256 {
		return false
	}
	quantQ8KAVX512(&rec[0], &x[0])
	return true
}

//go:noescape
func quantQ8_0AVX512(rec *byte, x *float32, nb int, corr int32)

// quantQ8_0Fast quantizes len(x)/32 Q8_0/Q8_1 records in assembly where the CPU
// allows (AVX-512 with VNNI); false when the caller must.
func quantQ8_0Fast(act []byte, x []float32, corr int32) bool {
	nb := len(x) / 32
	if level != levelAVX512 || !Features.VNNI || nb == 0 || len(act) < nb*qlActRecord {
		return false
	}
	quantQ8_0AVX512(&act[0], &x[0], nb, corr)
	return true
}

func init() {
	QQ4_K.tile[qLevelVNNI] = q4kTileVNNI
	QQ6_K.tile[qLevelVNNI] = q6kTileVNNI
	QQ4_K.row1[qLevelVNNI] = q4kRow1VNNI
	QQ5_K.row1[qLevelVNNI] = q5kRow1VNNI
	QQ6_K.row1[qLevelVNNI] = q6kRow1VNNI
	QQ4_K.rows4[qLevelVNNI] = q4kRows4VNNI
	if cpu.X86.HasAVX512GFNI {
		QQ6_K.row1[qLevelVNNI] = q6kRow1GFNI
	}
	QQ3_K.row1[qLevelVNNI] = q3kRow1VNNI
	QQ2_K.row1[qLevelVNNI] = q2kRow1VNNI
	QQ4_0.row1[qLevelVNNI] = q40Row1VNNI
	QQ4_1.row1[qLevelVNNI] = q41Row1VNNI
	QQ5_0.row1[qLevelVNNI] = q50Row1VNNI
	QQ5_1.row1[qLevelVNNI] = q51Row1VNNI
	QQ4_K.row1[qLevelAVX2] = q4kRow1AVX2
	QQ5_K.row1[qLevelAVX2] = q5kRow1AVX2
	QQ6_K.row1[qLevelAVX2] = q6kRow1AVX2
	QQ3_K.row1[qLevelAVX2] = q3kRow1AVX2
	QQ2_K.row1[qLevelAVX2] = q2kRow1AVX2
	QQ4_0.row1[qLevelAVX2] = q40Row1AVX2
	QQ4_1.row1[qLevelAVX2] = q41Row1AVX2
	QQ5_0.row1[qLevelAVX2] = q50Row1AVX2
	QQ5_1.row1[qLevelAVX2] = q51Row1AVX2
}
