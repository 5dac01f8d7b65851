package kern

// The AVX-512 VNNI 4x4 tiles of Q5_K, Q3_K and Q2_K (kq_vnni_amd64.s, after the Q6_K
// tile): each unpacks a weight super-block once per row for four tokens, bit for bit
// the decode kernel's result per token.

//go:noescape
func q5kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q3kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q2kTileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

func init() {
	QQ5_K.tile[qLevelVNNI] = q5kTileVNNI
	QQ3_K.tile[qLevelVNNI] = q3kTileVNNI
	QQ2_K.tile[qLevelVNNI] = q2kTileVNNI
}
