package kern

import (
	"fmt"
	"testing"
)

// BenchmarkDot24Matvec is BenchmarkDotMatvec's TinyLlama FFN shape (5632 x 2048) with the
// matrix 2:4 sparse against the dense kernels on the same shape, in one run: "dense"
// streams every weight, "2:4" half the values plus the metadata (1/16 byte per input;
// read from the arena, so arbitrary codes, which the kernels read like valid ones).
// GB/s counts the bytes each streams; "Gw/s" dense-equivalent weights per second (the
// speed that matters).
func BenchmarkDot24Matvec(b *testing.B) {
	all := weightArena()
	x := make([]float32, 4*mvCols)
	for i := range x {
		x[i] = float32(i%13-6) * 0.1
	}
	var y [4]float32
	ms := (mvCols/4 + 1) / 2
	for _, kind := range []string{"f32", "q8"} {
		esize := 4
		if kind == "q8" {
			esize = 1
		}
		for _, layout := range []string{"dense", "2:4"} {
			valBytes := mvRows * mvCols * esize
			meta := 0
			if layout == "2:4" {
				valBytes /= 2
				meta = mvRows * ms
			}
			mat := valBytes + meta
			nmat := len(all) / mat
			for _, rows := range []int{1, 4} {
				b.Run(fmt.Sprintf("%s/%s/x%d", kind, layout, rows), func(b *testing.B) {
					forEachLevelB(b, func(b *testing.B) {
						k := 0
						for b.Loop() {
							m := all[k*mat : (k+1)*mat]
							if k++; k == nmat {
								k = 0
							}
							vals, md := m[:valBytes], m[valBytes:]
							switch {
							case layout == "dense" && kind == "f32":
								w := f32s(vals)
								for r := 0; r < mvRows; r++ {
									if rows == 1 {
										y[0] = Dot(x[:mvCols], w[r*mvCols:])
									} else {
										Dot4(&y, x, mvCols, mvCols, w[r*mvCols:])
									}
								}
							case layout == "dense":
								w := i8s(vals)
								for r := 0; r < mvRows; r++ {
									if rows == 1 {
										y[0] = DotQ8(x[:mvCols], w[r*mvCols:])
									} else {
										Dot4Q8(&y, x, mvCols, mvCols, w[r*mvCols:])
									}
								}
							case kind == "f32":
								w := f32s(vals)
								for r := 0; r < mvRows; r++ {
									v, mr := w[r*mvCols/2:], md[r*ms:]
									if rows == 1 {
										y[0] = Dot24(x[:mvCols], v, mr)
									} else {
										Dot24x4(&y, x, mvCols, mvCols, v, mr)
									}
								}
							default:
								w := i8s(vals)
								for r := 0; r < mvRows; r++ {
									v, mr := w[r*mvCols/2:], md[r*ms:]
									if rows == 1 {
										y[0] = Dot24Q8(x[:mvCols], v, mr)
									} else {
										Dot24x4Q8(&y, x, mvCols, mvCols, v, mr)
									}
								}
							}
						}
						reportGBs(b, mat)
						b.ReportMetric(float64(rows*mvRows*mvCols)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gw/s")
					})
				})
			}
		}
	}
}
