// Package skipper is a test package whose only test skips for a missing reference;
// testref's tests run it with go test to see the summary line reach the go command's
// standard error.
package skipper

import (
	"testing"

	"github.com/vireo-ai/vireo/internal/testref"
)

func TestMain(m *testing.M) { testref.Main(m) }

func TestNeedsNode(t *testing.T) { testref.Missing(t, "Node.js (a stand-in)") }
