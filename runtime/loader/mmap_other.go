//go:build !unix

package loader

import (
	"fmt"
	"os"
)

// mapFile reads path into memory on platforms without syscall.Mmap.
func mapFile(path string) ([]byte, func() error, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("file is empty")
	}
	return data, func() error { return nil }, nil
}
