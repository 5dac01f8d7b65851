package engine

import (
	"testing"

	"github.com/vireo-ai/vireo/internal/testref"
)

// TestMain says in one line when reference tests skipped because the npm references
// are not installed (bash scripts/install-test-deps.sh), even without -v.
func TestMain(m *testing.M) { testref.Main(m) }
