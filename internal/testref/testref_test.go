package testref

import (
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSummary(t *testing.T) {
	require.Equal(t, "", Summary("x"))
	t.Run("a", func(t *testing.T) { Missing(t, "Node.js") })
	t.Run("b", func(t *testing.T) { Missing(t, "the openai npm client (server/testdata/node)") })
	t.Run("c", func(t *testing.T) { Missing(t, "Node.js") })
	require.Equal(t, "github.com/vireo-ai/vireo/server: 3 reference tests skipped, missing Node.js, the openai npm client (server/testdata/node): run bash scripts/install-test-deps.sh",
		Summary("github.com/vireo-ai/vireo/server"))
	mu.Lock()
	clear(skipped)
	mu.Unlock()
}

func TestCallerPackage(t *testing.T) {
	require.Equal(t, "github.com/vireo-ai/vireo/internal/testref", func() string { return callerPackage() }())
}

// TestLineReachesGoTest: `go test` in package list mode, which shows nothing else of a
// passing package's output, shows the summary line (the go command's standard error is
// a pipe here, as in CI).
func TestLineReachesGoTest(t *testing.T) {
	if testing.Short() || runtime.GOOS != "linux" {
		t.Skip("runs go test; the line takes this route on Linux only")
	}
	out, err := exec.Command("go", "test", "-count=1", "./testdata/skipper").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "github.com/vireo-ai/vireo/internal/testref/testdata/skipper: 1 reference test skipped, missing Node.js (a stand-in): run bash scripts/install-test-deps.sh\n")
	require.Contains(t, string(out), "ok  \tgithub.com/vireo-ai/vireo/internal/testref/testdata/skipper")
}
