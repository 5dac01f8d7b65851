package kern

// The AVX-512 VNNI kernels (kq_vnni_amd64.s): 4 rows x 1 token.

//go:noescape
func q4kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q5kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q6kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q3kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q2kRows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q40Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q41Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q50Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q51Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

// The AVX2 kernels (kq_avx2_amd64.s): 4 rows x 1 token.

//go:noescape
func q4kRows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q5kRows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q6kRows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q3kRows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q2kRows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q40Rows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q41Rows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q50Rows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q51Rows4AVX2(out *[4]float32, w *byte, ldw, nb int, act *byte)

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
	QQ4_K.rows4[qLevelVNNI] = q4kRows4VNNI
	QQ5_K.rows4[qLevelVNNI] = q5kRows4VNNI
	QQ6_K.rows4[qLevelVNNI] = q6kRows4VNNI
	QQ3_K.rows4[qLevelVNNI] = q3kRows4VNNI
	QQ2_K.rows4[qLevelVNNI] = q2kRows4VNNI
	QQ4_0.rows4[qLevelVNNI] = q40Rows4VNNI
	QQ4_1.rows4[qLevelVNNI] = q41Rows4VNNI
	QQ5_0.rows4[qLevelVNNI] = q50Rows4VNNI
	QQ5_1.rows4[qLevelVNNI] = q51Rows4VNNI
	QQ4_K.rows4[qLevelAVX2] = q4kRows4AVX2
	QQ5_K.rows4[qLevelAVX2] = q5kRows4AVX2
	QQ6_K.rows4[qLevelAVX2] = q6kRows4AVX2
	QQ3_K.rows4[qLevelAVX2] = q3kRows4AVX2
	QQ2_K.rows4[qLevelAVX2] = q2kRows4AVX2
	QQ4_0.rows4[qLevelAVX2] = q40Rows4AVX2
	QQ4_1.rows4[qLevelAVX2] = q41Rows4AVX2
	QQ5_0.rows4[qLevelAVX2] = q50Rows4AVX2
	QQ5_1.rows4[qLevelAVX2] = q51Rows4AVX2
}
