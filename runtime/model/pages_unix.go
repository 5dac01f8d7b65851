//go:build unix

package model

import (
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dropPages tells the kernel the whole pages inside b (a read-only file mapping whose
// contents were converted and are no longer read) can leave this process's resident
// set; the file still backs them if anything reads them again.
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	end := start + uintptr(len(b))
	lo, hi := (start+page-1)&^(page-1), end&^(page-1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_DONTNEED)
}

// prefault maps the pages of b (a read-only file mapping the backend reads in place)
// into this process now, at load, rather than on first use: otherwise the first
// forward pass pays one page fault per 4 KiB of weights (about 300,000 for a 1.1 GB
// model). MADV_POPULATE_READ does it in one call where the kernel has it (Linux 5.14);
// elsewhere one read per page does.
func prefault(b []byte) {
	if len(b) == 0 {
		return
	}
	page := os.Getpagesize()
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := int(start&^uintptr(page-1) - start) // <= 0: back to the page boundary
	whole := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), lo)), len(b)-lo)
	if unix.Madvise(whole, unix.MADV_POPULATE_READ) == nil {
		return
	}
	var sink byte
	for i := 0; i < len(b); i += page {
		sink += b[i]
	}
	runtime.KeepAlive(sink)
}
