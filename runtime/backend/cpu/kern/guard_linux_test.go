package kern

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// guarded returns size bytes that end exactly where an inaccessible page begins, so any
// read past the end faults.
func guarded(t *testing.T, size int) []byte {
	page := syscall.Getpagesize()
	span := (size+page-1)/page*page + page
	mem, err := syscall.Mmap(-1, 0, span, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Munmap(mem) })
	require.NoError(t, syscall.Mprotect(mem[span-page:], syscall.PROT_NONE))
	return mem[span-page-size : span-page]
}

func guardedF32(t *testing.T, n int) []float32 {
	if n == 0 {
		return nil
	}
	b := guarded(t, 4*n)
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), n)
}

func guardedI8(t *testing.T, n int) []int8 {
	if n == 0 {
		return nil
	}
	b := guarded(t, n)
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), n)
}

// TestGuardPage: operands that end at an unmapped page must not fault (masked tails).
func TestGuardPage(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, n := range testSizes() {
			x := guardedF32(t, n)
			w := guardedF32(t, n)
			wq := guardedI8(t, n)
			copy(x, randF32(r, n))
			copy(w, randF32(r, n))
			copy(wq, randI8(r, n))
			d, dq := Dot(x, w), DotQ8(x, wq)
			ldx := n + 1
			x4 := guardedF32(t, 3*ldx+n)
			for row := 0; row < 4; row++ {
				copy(x4[row*ldx:], x)
			}
			var o, oq [4]float32
			Dot4(&o, x4, ldx, n, w)
			Dot4Q8(&oq, x4, ldx, n, wq)
			require.Equal(t, [4]float32{d, d, d, d}, o, "n=%d", n)
			require.Equal(t, [4]float32{dq, dq, dq, dq}, oq, "n=%d", n)
		}
	})
}

func TestGuardPageAxpy(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		for _, n := range testSizes() {
			d, x := guardedF32(t, n), guardedF32(t, n)
			for i := range x {
				d[i], x[i] = 1, float32(i)
			}
			Axpy(d, 2, x)
			for i := range d {
				require.Equal(t, float32(1+2*i), d[i])
			}
		}
	})
}

func TestGuardPageDotI8(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(17, 18))
		for _, n := range append(testSizes(), 300, 1000) {
			gx, gw := guardedI8(t, n), guardedI8(t, n)
			copy(gx, randI8(r, n))
			copy(gw, randI8(r, n))
			require.Equal(t, dotI8Generic(gx, gw), DotI8(gx, gw), "n=%d", n)
		}
	})
}
