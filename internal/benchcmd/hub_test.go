package benchcmd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/bench"
	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/hub/hubtest"
)

// TestHubModelPath: --model-path takes a Hub name, downloaded from a local stand-in
// for the Hub into the Hugging Face cache; --offline refuses one that is not cached.
func TestHubModelPath(t *testing.T) {
	data, err := os.ReadFile(shared.Path(t, "models", "stories260K", "stories260K.gguf"))
	require.NoError(t, err)
	repo := &hubtest.Repo{ID: "vireo-test/stories260K-GGUF", Files: []hubtest.File{{Path: "stories260K.gguf", Data: data, LFS: true}}}
	srv := hubtest.New(t, repo)
	cache := filepath.Join(t.TempDir(), "hub")
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HOME", t.TempDir())
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
	}
	out := filepath.Join(t.TempDir(), "w.json")
	log, err := runCLI(t, "weight-configs", "--model-path", "vireo-test/stories260K-GGUF", "--threads", "1", "--formats", "f32",
		"--num-prompts", "1", "--rounds", "1", "--input-len", "8", "--output-len", "2", "--out", out)
	require.NoError(t, err, log)
	var res bench.WeightResult
	require.NoError(t, bench.ReadJSON(out, &res))
	require.Equal(t, filepath.Join(cache, "models--vireo-test--stories260K-GGUF", "snapshots", repo.Commit, "stories260K.gguf"), res.Config.Model.Path,
		"the report records the cached file the name resolved to")

	srv.Reset()
	_, err = runCLI(t, "weight-configs", "--model-path", "vireo-test/other", "--offline", "--out", out)
	require.ErrorContains(t, err, "vireo-test/other: offline mode")
	require.Zero(t, srv.Count())
}
