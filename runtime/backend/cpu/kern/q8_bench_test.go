package kern

import "testing"

// BenchmarkQ8Tile measures Q8Tile4x4 alone (packing done beforehand) on the TinyLlama
// FFN width (2048, 64 blocks), in GMAC/s (weight x activation products): "l2" runs 64
// packed weight rows against 64 tokens whose activations (256 KiB with the
// corrections) come from L2, as a MatMul's token block does; "l1" 64 rows against 8
// tokens that stay in L1. The two measure the same when the tile is bound by its
// arithmetic rather than by fetching activations.
func BenchmarkQ8Tile(b *testing.B) {
	if !HasQ8() {
		b.Skip("no AVX-512 VNNI: the tile runs in portable Go")
	}
	const cols, rows = mvCols, 64
	nb := cols / Q8Block
	ldw := nb * Q8BlockBytes
	w := weightArena()[:rows*ldw]
	pws := make([][]byte, rows/4)
	pds := make([][]float32, rows/4)
	for g := range pws {
		pws[g], pds[g] = make([]byte, 4*cols), make([]float32, 4*nb)
		Q8Pack4(pws[g], pds[g], w[4*g*ldw:], ldw, nb)
	}
	for _, c := range []struct {
		name string
		toks int
	}{{"l2", 64}, {"l1", 8}} {
		toks := c.toks
		x := make([]float32, toks*cols)
		for i := range x {
			x[i] = float32(i%13-6) * 0.1
		}
		qa, da, ca := make([]int8, len(x)), make([]float32, len(x)/Q8Block), make([]int32, len(x)/4)
		QuantizeQ8(qa, da, ca, x)
		da4 := make([]float32, len(da))
		for t := 0; t < toks; t += 4 {
			Q8Interleave4(da4[t*nb:], da[t*nb:], nb, nb)
		}
		b.Run(c.name, func(b *testing.B) {
			var o [16]float32
			for i := 0; i < b.N; i++ {
				for g := range pws {
					for t := 0; t < toks; t += 4 {
						Q8Tile4x4(&o, pws[g], pds[g], nb, qa[t*cols:], cols, da4[t*nb:], ca[t*cols/4:], cols/4)
					}
				}
			}
			b.ReportMetric(float64(rows*toks*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
