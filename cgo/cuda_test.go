//go:build cuda

package cgo

import (
	"errors"
	"testing"
	"unsafe"
)

// TestDevice reads the device and round-trips a buffer; it skips without a GPU.
func TestDevice(t *testing.T) {
	n, err := DeviceCount()
	if errors.Is(err, ErrNoDevice) || n == 0 {
		t.Skipf("no CUDA device: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := GetDeviceInfo(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: cc %d.%d, %d SMs, %d MiB", info.Name, info.Major, info.Minor, info.Multiprocessors, info.TotalMem>>20)
	src := []byte("vireo round trip")
	p, err := Malloc(len(src))
	if err != nil {
		t.Fatal(err)
	}
	defer Free(p)
	if err := MemcpyH2D(p, unsafe.Pointer(&src[0]), len(src), Stream{}); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, len(src))
	if err := MemcpyD2H(unsafe.Pointer(&dst[0]), p, len(dst), Stream{}); err != nil {
		t.Fatal(err)
	}
	if string(dst) != string(src) {
		t.Fatalf("round trip gave %q", dst)
	}
	// A bad argument is an error naming the op.
	err = MatMulW8A16(Stream{}, &MatMulArgs{DType: F16, N: 1, NOut: 1, K: 1})
	var e *Error
	if !errors.As(err, &e) || e.Code != StatusArg {
		t.Fatalf("bad matmul arguments gave %v", err)
	}
}
