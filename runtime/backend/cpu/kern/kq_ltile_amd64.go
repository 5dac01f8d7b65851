package kern

// The legacy types' (Q4_0, Q5_0, Q4_1, Q5_1) AVX-512 VNNI kernels beyond the one-row
// decode kernels (kq_vnni_amd64.s): 4 rows x 4 tokens tiles, each row's block unpacked
// once for the four tokens, and 4 rows x 1 token decode kernels that keep four FMA
// chains in flight and prefetch the next four rows in order.

//go:noescape
func q40TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q50TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q41TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q51TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q40Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q50Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q41Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

//go:noescape
func q51Rows4VNNI(out *[4]float32, w *byte, ldw, nb int, act *byte)

func init() {
	QQ4_0.tile[qLevelVNNI] = q40TileVNNI
	QQ5_0.tile[qLevelVNNI] = q50TileVNNI
	QQ4_1.tile[qLevelVNNI] = q41TileVNNI
	QQ5_1.tile[qLevelVNNI] = q51TileVNNI
	QQ4_0.rows4[qLevelVNNI] = q40Rows4VNNI
	QQ5_0.rows4[qLevelVNNI] = q50Rows4VNNI
	QQ4_1.rows4[qLevelVNNI] = q41Rows4VNNI
	QQ5_1.rows4[qLevelVNNI] = q51Rows4VNNI
}
