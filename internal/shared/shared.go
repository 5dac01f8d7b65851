// Package shared finds the project's read-only reference data (../shared: models,
// golden outputs, eval texts) for tests and benchmarks.
package shared

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Root returns the shared data folder: $VIREO_SHARED, else ../shared beside the module
// root. It returns "" when the folder does not exist.
func Root() string {
	if d := os.Getenv("VIREO_SHARED"); d != "" {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
		return ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			d := filepath.Join(dir, "..", "shared")
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				return d
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Path joins elem onto the shared folder, skipping the test with a clear message when
// the folder or the file is missing.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	root := Root()
	if root == "" {
		tb.Skip("shared data not found: set VIREO_SHARED or place it at ../shared beside the repository")
	}
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared data file missing: %s", p)
	}
	return p
}

// ReadText reads a text file with newlines normalized as Python's text mode reads them
// (CRLF and lone CR become LF): the golden numbers were computed that way, and
// WikiText-2's file has CRLF endings.
func ReadText(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(string(data)), nil
}
