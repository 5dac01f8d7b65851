package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
)

// TestExampleBuildsAndRuns builds the example as a user would and runs it on stories260K.
func TestExampleBuildsAndRuns(t *testing.T) {
	modelPath := shared.Path(t, "models", "stories260K", "stories260K.bin")
	bin := filepath.Join(t.TempDir(), "embed")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	out, err := exec.Command(bin, "-model", modelPath, "-max-tokens", "12").CombinedOutput()
	require.NoError(t, err, string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 3, string(out))
	require.True(t, strings.HasPrefix(lines[0], `"Once upon a time" -> "`), lines[0])
}
