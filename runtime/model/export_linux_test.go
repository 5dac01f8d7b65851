package model

// SetResidentMin lowers the least matrix size copied into huge-page memory (so the
// small fixture models take that path) until the returned function restores it.
func SetResidentMin(n int) (restore func()) {
	old := residentMin
	residentMin = n
	return func() { residentMin = old }
}

// HugePages reports whether this kernel backs MADV_HUGEPAGE memory with huge pages.
func HugePages() bool { return hugePages() }
