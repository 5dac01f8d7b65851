//go:build !unix

package hub

import "errors"

// lockBlob does not lock where flock is missing: concurrent pulls of one blob from two
// processes may both download it (each renames a complete, verified file into place).
func lockBlob(dir, etag string) (func(), error) { return func() {}, nil }

// diskFree is unknown here; the check before downloading is skipped.
func diskFree(dir string) (int64, error) { return 0, errors.New("free space unknown on this system") }
