package kern

// The AVX-512 VNNI tiles of the legacy types (kq_vnni_amd64.s): 4 rows x 4 tokens,
// each row's block unpacked once for the four tokens.

//go:noescape
func q40TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q50TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q41TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

//go:noescape
func q51TileVNNI(out *[16]float32, w *byte, ldw, nb int, act *byte, lda int)

func init() {
	QQ4_0.tile[qLevelVNNI] = q40TileVNNI
	QQ5_0.tile[qLevelVNNI] = q50TileVNNI
	QQ4_1.tile[qLevelVNNI] = q41TileVNNI
	QQ5_1.tile[qLevelVNNI] = q51TileVNNI
}
