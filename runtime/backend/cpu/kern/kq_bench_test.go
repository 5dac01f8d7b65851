package kern

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// qArena is 512 MiB of valid blocks of one format: a random TinyLlama-FFN-sized matrix
// repeated, so "dram" passes stream from memory.
func qArena(f *QFormat, rows, cols int) []byte {
	r := rand.New(rand.NewPCG(9, 10))
	m := randBlocks(r, f, rows, cols/f.Block)
	a := make([]byte, (512<<20)/len(m)*len(m))
	for off := 0; off < len(a); off += len(m) {
		copy(a[off:], m)
	}
	return a
}

// BenchmarkQKernels measures each block format's kernels on the TinyLlama FFN shape
// (5632 x 2048): "decode" walks the whole matrix against one token with Rows4 (GB/s of
// weights; "l3" reuses one matrix, "dram" walks a 512 MiB arena; "-row1" with Dot per
// row, the one-row kernel, for the formats whose Rows4 has a four-row kernel), "tile" 64 rows x 64
// tokens in 4x4 tiles from cache (GMAC/s), "tile-rows4" the same product with Rows4 per
// token (what Tile4x4 falls back to without a tile: the baseline a tile must beat),
// "quantize" one token's activations.
func BenchmarkQKernels(b *testing.B) {
	const rows, cols = mvRows, mvCols
	for _, f := range QFormats {
		b.Run(f.Name, func(b *testing.B) {
			nb := cols / f.Block
			ldw := f.RowBytes(cols)
			x := randActivations(rand.New(rand.NewPCG(1, 1)), 64*cols)
			lda := f.ActBytes(cols)
			act := make([]byte, 64*lda)
			for t := 0; t < 64; t++ {
				f.Quantize(act[t*lda:], x[t*cols:(t+1)*cols])
			}
			arena := qArena(f, rows, cols)
			forEachLevelB(b, func(b *testing.B) {
				// rows4 is Rows4 (the four-row kernel where the format has one), row1
				// Dot per row (the one-row kernel).
				rows4 := func(o *[4]float32, w []byte) { f.Rows4(o, w, ldw, nb, act) }
				row1 := func(o *[4]float32, w []byte) {
					for r := range o {
						o[r] = f.Dot(w[r*ldw:r*ldw+nb*f.BlockBytes], nb, act)
					}
				}
				for _, k := range []struct {
					name string
					run  func(o *[4]float32, w []byte)
				}{{"", rows4}, {"-row1", row1}} {
					benchDecode(b, k.name, arena, rows, ldw, k.run)
				}
				b.Run("tile", func(b *testing.B) {
					var o [16]float32
					for i := 0; i < b.N; i++ {
						for r := 0; r < 64; r += 4 {
							for t := 0; t < 64; t += 4 {
								f.Tile4x4(&o, arena[r*ldw:], ldw, nb, act[t*lda:], lda)
							}
						}
					}
					b.ReportMetric(float64(64*64*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
				})
				b.Run("tile-rows4", func(b *testing.B) {
					var o [4]float32
					for i := 0; i < b.N; i++ {
						for r := 0; r < 64; r += 4 {
							for t := 0; t < 64; t++ {
								f.Rows4(&o, arena[r*ldw:], ldw, nb, act[t*lda:])
							}
						}
					}
					b.ReportMetric(float64(64*64*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
				})
			})
			b.Run("quantize", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					f.Quantize(act, x[:cols])
				}
				b.ReportMetric(float64(cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gvalues/s")
			})
		})
	}
}

// BenchmarkReadBandwidth is the denominator of "fraction of read bandwidth": every
// core (GOMAXPROCS goroutines) streams its share of a 1 GiB arena once per iteration
// with the float kernel's vector loads, dotting 16 KiB chunks against one L1-resident
// chunk; GB/s counts the arena's bytes.
func BenchmarkReadBandwidth(b *testing.B) {
	a := f32s(weightArena())
	const chunk = 4096 // floats: 16 KiB
	w := make([]float32, chunk)
	for i := range w {
		w[i] = 1
	}
	procs := runtime.GOMAXPROCS(0)
	per := len(a) / procs / chunk * chunk
	var sink atomic.Uint32
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for p := 0; p < procs; p++ {
			wg.Go(func() {
				var s float32
				for off := p * per; off < (p+1)*per; off += chunk {
					s += Dot(a[off:off+chunk], w)
				}
				sink.Add(math.Float32bits(s) & 1)
			})
		}
		wg.Wait()
	}
	reportGBs(b, procs*per*4)
}
