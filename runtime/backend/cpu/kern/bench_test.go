package kern

import (
	"fmt"
	"testing"
	"unsafe"
)

// Benchmarks for one goroutine. Matvec: a rows x cols weight matrix times one activation
// vector (Dot per row) or four (Dot4 per row); reports GB/s of weight bytes streamed.
// Kinds: f32 (Dot/Dot4), q8 (DotQ8/Dot4Q8), i8 (DotI8: int8 activations, exact int32).
// "l3" reuses one matrix (46 MB fp32 / 11.5 MB int8: on this host it stays in the 480 MB
// L3 between iterations); "dram" walks a 1 GiB arena of matrices so every pass streams
// from memory. Small: in-cache dot of length n, GFLOP/s. Every benchmark runs once per
// implementation level ("go" = portable) so ratios come from one run.

const (
	mvRows = 5632
	mvCols = 2048
	arenaB = 1 << 30
)

var arena []byte

// weightArena returns 1 GiB of finite fp32 values (read as int8 it is arbitrary bytes).
func weightArena() []byte {
	if arena == nil {
		arena = make([]byte, arenaB)
		f := unsafe.Slice((*float32)(unsafe.Pointer(&arena[0])), arenaB/4)
		for i := range f {
			f[i] = float32(i%17-8) * 0.01
		}
	}
	return arena
}

func f32s(b []byte) []float32 { return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4) }
func i8s(b []byte) []int8     { return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b)) }

func forEachLevelB(b *testing.B, f func(b *testing.B)) {
	for _, l := range availableLevels() {
		b.Run(levelName(l), func(b *testing.B) {
			setLevel(b, l)
			f(b)
		})
	}
}

// benchDecode measures rows4 (four weight rows ldw bytes apart into o) over a matrix of
// rows rows: "decode/l3"+suffix on the arena's first copy, read again every pass (warm
// in the caches), "decode/dram"+suffix on the arena's copies in turn, so every pass
// streams its weights from memory.
func benchDecode(b *testing.B, suffix string, arena []byte, rows, ldw int, rows4 func(o *[4]float32, w []byte)) {
	m := rows * ldw
	b.Run("decode/l3"+suffix, func(b *testing.B) {
		var o [4]float32
		for i := 0; i < b.N; i++ {
			for r := 0; r+4 <= rows; r += 4 {
				rows4(&o, arena[r*ldw:])
			}
		}
		reportGBs(b, m)
	})
	b.Run("decode/dram"+suffix, func(b *testing.B) {
		off := 0
		var o [4]float32
		for i := 0; i < b.N; i++ {
			if off+m > len(arena) {
				off = 0
			}
			w := arena[off : off+m]
			for r := 0; r+4 <= rows; r += 4 {
				rows4(&o, w[r*ldw:])
			}
			off += m
		}
		reportGBs(b, m)
	})
}

func reportGBs(b *testing.B, bytesPerOp int) {
	b.ReportMetric(float64(bytesPerOp)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
}

func reportGFlops(b *testing.B, flopsPerOp int) {
	b.ReportMetric(float64(flopsPerOp)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkCopy is the reference: copy() of 256 MiB; GB/s counts bytes copied (each
// is read once and written once, so the memory traffic is twice that or more).
func BenchmarkCopy(b *testing.B) {
	src := weightArena()[:256<<20]
	dst := make([]byte, len(src))
	copy(dst, src) // fault the pages in
	b.ResetTimer()
	for b.Loop() {
		copy(dst, src)
	}
	reportGBs(b, len(src))
}

// BenchmarkReadStream is a read-only reference: an unrolled Go loop summing the 1 GiB
// arena as uint64 in 64 MiB pieces (a fresh piece each iteration, so it streams from
// memory); GB/s of bytes read.
func BenchmarkReadStream(b *testing.B) {
	all := weightArena()
	u := unsafe.Slice((*uint64)(unsafe.Pointer(&all[0])), len(all)/8)
	const piece = 64 << 20 / 8
	var sink uint64
	k := 0
	for b.Loop() {
		p := u[k*piece : (k+1)*piece]
		if k++; k == len(u)/piece {
			k = 0
		}
		var s0, s1, s2, s3 uint64
		for i := 0; i+8 <= len(p); i += 8 {
			s0 += p[i] ^ p[i+4]
			s1 += p[i+1] ^ p[i+5]
			s2 += p[i+2] ^ p[i+6]
			s3 += p[i+3] ^ p[i+7]
		}
		sink += s0 + s1 + s2 + s3
	}
	reportGBs(b, piece*8)
	_ = sink
}

func BenchmarkDotMatvec(b *testing.B) {
	all := weightArena()
	x := make([]float32, 4*mvCols)
	for i := range x {
		x[i] = float32(i%13-6) * 0.1
	}
	y := make([]float32, mvRows)
	y4 := make([][4]float32, mvRows)
	xq := make([]int8, mvCols)
	for i := range xq {
		xq[i] = int8(i%13 - 6)
	}
	for _, kind := range []string{"f32", "q8", "i8"} {
		esize := 4
		if kind != "f32" {
			esize = 1
		}
		mat := mvRows * mvCols * esize
		for _, where := range []string{"l3", "dram"} {
			nmat := 1
			if where == "dram" {
				nmat = len(all) / mat
			}
			for _, rows := range []int{1, 4} {
				if kind == "i8" && rows == 4 {
					continue // no 4-row DotI8
				}
				b.Run(fmt.Sprintf("%s/%s/x%d", kind, where, rows), func(b *testing.B) {
					forEachLevelB(b, func(b *testing.B) {
						k := 0
						for b.Loop() {
							m := all[k*mat : (k+1)*mat]
							if k++; k == nmat {
								k = 0
							}
							switch {
							case kind == "f32" && rows == 1:
								w := f32s(m)
								for r := range y {
									y[r] = Dot(x[:mvCols], w[r*mvCols:])
								}
							case kind == "f32":
								w := f32s(m)
								for r := range y4 {
									Dot4(&y4[r], x, mvCols, mvCols, w[r*mvCols:])
								}
							case kind == "i8":
								w := i8s(m)
								for r := range y {
									y[r] = float32(DotI8(xq, w[r*mvCols:]))
								}
							case rows == 1:
								w := i8s(m)
								for r := range y {
									y[r] = DotQ8(x[:mvCols], w[r*mvCols:])
								}
							default:
								w := i8s(m)
								for r := range y4 {
									Dot4Q8(&y4[r], x, mvCols, mvCols, w[r*mvCols:])
								}
							}
						}
						reportGBs(b, mat)
						reportGFlops(b, 2*rows*mvRows*mvCols)
					})
				})
			}
		}
	}
}

// BenchmarkDotSmall: in-cache dots (x, w in L1/L2), GFLOP/s.
func BenchmarkDotSmall(b *testing.B) {
	for _, n := range []int{64, 2048} {
		x := make([]float32, 4*n)
		w := make([]float32, n)
		wq := make([]int8, n)
		for i := range x {
			x[i] = float32(i%13-6) * 0.1
		}
		for i := range w {
			w[i] = float32(i%7-3) * 0.1
			wq[i] = int8(i%255 - 127)
		}
		var sink float32
		var o [4]float32
		b.Run(fmt.Sprintf("Dot/n=%d", n), func(b *testing.B) {
			forEachLevelB(b, func(b *testing.B) {
				for b.Loop() {
					sink += Dot(x[:n], w)
				}
				reportGFlops(b, 2*n)
			})
		})
		b.Run(fmt.Sprintf("DotQ8/n=%d", n), func(b *testing.B) {
			forEachLevelB(b, func(b *testing.B) {
				for b.Loop() {
					sink += DotQ8(x[:n], wq)
				}
				reportGFlops(b, 2*n)
			})
		})
		b.Run(fmt.Sprintf("Dot4/n=%d", n), func(b *testing.B) {
			forEachLevelB(b, func(b *testing.B) {
				for b.Loop() {
					Dot4(&o, x, n, n, w)
				}
				reportGFlops(b, 8*n)
			})
		})
		b.Run(fmt.Sprintf("Dot4Q8/n=%d", n), func(b *testing.B) {
			forEachLevelB(b, func(b *testing.B) {
				for b.Loop() {
					Dot4Q8(&o, x, n, n, wq)
				}
				reportGFlops(b, 8*n)
			})
		})
		_ = sink
	}
}

// BenchmarkQ8 measures the Q8_0 x Q8_0 kernels on the TinyLlama FFN shape (5632 x 2048
// Q8_0, 12.3 MB): "decode" walks the whole matrix against one token (GB/s of weights;
// "dram" over a 1 GiB arena so every pass streams from memory), "tile" a 4x4 tile
// over 64 weight rows against 64 tokens, reusing the rows from L1 (GMAC/s).
func BenchmarkQ8(b *testing.B) {
	const rows, cols = mvRows, mvCols
	nb := cols / Q8Block
	ldw := nb * Q8BlockBytes
	x := make([]float32, 64*cols)
	for i := range x {
		x[i] = float32(i%13-6) * 0.1
	}
	qa, da, ca := make([]int8, len(x)), make([]float32, len(x)/Q8Block), make([]int32, len(x)/4)
	QuantizeQ8(qa, da, ca, x)
	benchDecode(b, "", weightArena(), rows, ldw, func(o *[4]float32, w []byte) { Q8Rows4(o, w, ldw, nb, qa, da) })
	b.Run("tile", func(b *testing.B) {
		w := weightArena()[:64*ldw]
		var o [16]float32
		pw, pd := make([]byte, 4*cols), make([]float32, 4*nb)
		da4 := make([]float32, len(da))
		for t := 0; t < 64; t += 4 {
			Q8Interleave4(da4[t*nb:], da[t*nb:], nb, nb)
		}
		for i := 0; i < b.N; i++ {
			for r := 0; r < 64; r += 4 {
				Q8Pack4(pw, pd, w[r*ldw:], ldw, nb)
				for t := 0; t < 64; t += 4 {
					Q8Tile4x4(&o, pw, pd, nb, qa[t*cols:], cols, da4[t*nb:], ca[t*cols/4:], cols/4)
				}
			}
		}
		b.ReportMetric(float64(64*64*cols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
	})
	b.Run("quantize", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			QuantizeQ8(qa, da, ca, x)
		}
		b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gvalues/s")
	})
}
