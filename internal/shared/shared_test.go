package shared

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPathFindsStories(t *testing.T) {
	p := Path(t, "models", "stories260K", "stories260K.bin")
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(1<<20))
}

func TestRootHonoursEnv(t *testing.T) {
	t.Setenv("VIREO_SHARED", "/nonexistent/vireo-shared")
	require.Equal(t, "", Root())
}
