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

func TestReadTextNormalizesNewlines(t *testing.T) {
	p := t.TempDir() + "/t.txt"
	require.NoError(t, os.WriteFile(p, []byte("a\r\nb\rc\nd"), 0o644))
	s, err := ReadText(p)
	require.NoError(t, err)
	require.Equal(t, "a\nb\nc\nd", s)
}
