//go:build !unix

package loader

import (
	"fmt"
	"io"
	"os"
)

// mapFile reads path into memory on platforms without syscall.Mmap.
func mapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return mapOpen(f)
}

// mapOpen reads an open file into memory.
func mapOpen(f *os.File) ([]byte, func() error, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("file is empty")
	}
	return data, func() error { return nil }, nil
}
