package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/hub/hubtest"
)

// hubEnv points the Hub settings at srv and a fresh cache, with no token and online.
func hubEnv(t *testing.T, srv *hubtest.Server) string {
	cache := filepath.Join(t.TempDir(), "hub")
	t.Setenv("HF_ENDPOINT", srv.URL)
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_HOME", t.TempDir()) // no token file
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
	}
	return cache
}

// storiesRepos serves stories260K (read from the shared folder at test time) as a GGUF
// repo and as a llama2.c repo laid out like karpathy/tinyllamas.
func storiesRepos(t *testing.T) (srv *hubtest.Server, gguf, bin []byte) {
	var err error
	gguf, err = os.ReadFile(shared.Path(t, "models", "stories260K", "stories260K.gguf"))
	require.NoError(t, err)
	bin, err = os.ReadFile(shared.Path(t, "models", "stories260K", "stories260K.bin"))
	require.NoError(t, err)
	tok, err := os.ReadFile(shared.Path(t, "models", "stories260K", "tok512.bin"))
	require.NoError(t, err)
	srv = hubtest.New(t,
		&hubtest.Repo{ID: "vireo-test/stories260K-GGUF", Files: []hubtest.File{
			{Path: "README.md", Data: []byte("# stories260K\n")},
			{Path: "stories260K.gguf", Data: gguf, LFS: true},
		}},
		&hubtest.Repo{ID: "vireo-test/tinyllamas", Files: []hubtest.File{
			{Path: "stories260K/stories260K.bin", Data: bin, LFS: true},
			{Path: "stories260K/tok512.bin", Data: tok, LFS: true},
			{Path: "stories15M.bin", Data: []byte("not fetched"), LFS: true},
		}},
		&hubtest.Repo{ID: "vireo-test/gated", Gated: true, Files: []hubtest.File{{Path: "m.gguf", Data: gguf, LFS: true}}},
	)
	return srv, gguf, bin
}

func greedy(t *testing.T, model string, extra ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	args := append([]string{"-model", model, "-prompt", "Once upon a time", "-temperature", "0", "-max-tokens", "40", "-weights", "f32", "-quiet"}, extra...)
	err := run(args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestHubModel: a repo id downloads (cut mid-transfer, resumed), verifies and generates
// the same greedy text as the local file; then it is found in the cache, offline, with
// no request at all.
func TestHubModel(t *testing.T) {
	srv, gguf, _ := storiesRepos(t)
	hubEnv(t, srv)
	want, errOut, err := greedy(t, shared.Path(t, "models", "stories260K", "stories260K.gguf"))
	require.NoError(t, err, errOut)
	require.True(t, strings.HasPrefix(want, "Once upon a time, there was a little girl named Lily."), want)

	cut := len(gguf) / 2
	srv.CutAfter(gguf, int64(cut), 1)
	got, errOut, err := greedy(t, "vireo-test/stories260K-GGUF")
	require.NoError(t, err, errOut)
	require.Equal(t, want, got)
	require.Contains(t, errOut, "transfer interrupted: resuming")
	var ranges []string
	for _, r := range srv.Requests() {
		if r.Server == "cdn" {
			ranges = append(ranges, r.Range)
		}
	}
	require.Equal(t, []string{"", "bytes=" + strconv.Itoa(cut) + "-"}, ranges)

	srv.Reset()
	got, errOut, err = greedy(t, "vireo-test/stories260K-GGUF", "-offline")
	require.NoError(t, err, errOut)
	require.Equal(t, want, got)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, _, err = greedy(t, "vireo-test/stories260K-GGUF:F32")
	require.Error(t, err, "the file's name gives no quantization")
	require.ErrorContains(t, err, "offline mode")
	t.Setenv("HF_HUB_OFFLINE", "")
	got, errOut, err = greedy(t, "vireo-test/stories260K-GGUF/stories260K.gguf")
	require.NoError(t, err, errOut)
	require.Equal(t, want, got)
	require.Zero(t, srv.Count(), "a cached model needs no request: %v", srv.Requests())
}

// TestHubLlama2C: a llama2.c .bin named inside a repo comes with its tokenizer.
func TestHubLlama2C(t *testing.T) {
	srv, _, _ := storiesRepos(t)
	hubEnv(t, srv)
	want, errOut, err := greedy(t, shared.Path(t, "models", "stories260K", "stories260K.bin"))
	require.NoError(t, err, errOut)
	got, errOut, err := greedy(t, "vireo-test/tinyllamas/stories260K/stories260K.bin")
	require.NoError(t, err, errOut)
	require.Equal(t, want, got)
	for _, r := range srv.Requests() {
		require.NotContains(t, r.Path, "stories15M", "only the named model and its tokenizer")
	}
}

func TestPullAndList(t *testing.T) {
	srv, gguf, _ := storiesRepos(t)
	cache := hubEnv(t, srv)
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"list"}, &out, &errOut))
	require.Contains(t, out.String(), "no models in "+cache)

	out.Reset()
	require.NoError(t, run([]string{"pull", "vireo-test/stories260K-GGUF"}, &out, &errOut), errOut.String())
	path := strings.TrimSpace(out.String())
	require.Equal(t, filepath.Join(cache, "models--vireo-test--stories260K-GGUF", "snapshots"), filepath.Dir(filepath.Dir(path)))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(gguf, data))
	require.Contains(t, errOut.String(), "pulled vireo-test/stories260K-GGUF (commit ")
	require.Contains(t, errOut.String(), "1.2 MB downloaded")

	// Pulling again downloads nothing and verifies the cached file.
	errOut.Reset()
	out.Reset()
	require.NoError(t, run([]string{"pull", "vireo-test/stories260K-GGUF"}, &out, &errOut))
	require.Contains(t, errOut.String(), "0 B downloaded")
	require.Contains(t, errOut.String(), "1 cached file verified")

	out.Reset()
	require.NoError(t, run([]string{"list"}, &out, &errOut))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3, out.String())
	require.Regexp(t, `^NAME\s+FORMAT\s+SIZE\s+REVISION\s+MODIFIED$`, lines[0])
	require.Regexp(t, `^vireo-test/stories260K-GGUF\s+gguf\s+1\.2 MB\s+main\s+\d{4}-\d\d-\d\d \d\d:\d\d$`, lines[1])
	require.Equal(t, "1 model, 1.2 MB, in "+cache, lines[2])

	out.Reset()
	require.NoError(t, run([]string{"list", "-json"}, &out, &errOut))
	require.Contains(t, out.String(), `"name": "vireo-test/stories260K-GGUF"`)
	require.Contains(t, out.String(), `"size": `+strconv.Itoa(len(gguf)))

	// A gated repo: the error names the fix, and the token is in no output.
	t.Setenv("HF_TOKEN", srv.NoAccessToken)
	out.Reset()
	errOut.Reset()
	err = run([]string{"pull", "vireo-test/gated"}, &out, &errOut)
	require.ErrorContains(t, err, "vireo-test/gated is a gated model and the token from $HF_TOKEN has no access")
	require.NotContains(t, err.Error()+out.String()+errOut.String(), srv.NoAccessToken)

	for args, msg := range map[string]string{
		"pull":                   "pull takes one model name",
		"pull a b":               "pull takes one model name",
		"pull ./local.gguf":      "is not a Hub model name",
		"list extra":             "unexpected argument",
		"pull vireo-test/nope":   "vireo-test/nope: no such model repository",
		"-model vireo-test/nope": "vireo-test/nope: no such model repository",
		"-model org/":            `"org/" is not a local file or folder`,
	} {
		err := run(strings.Fields(args), &out, &errOut)
		require.ErrorContains(t, err, msg, args)
	}
}

// TestHubQuantizeCompress: vireo quantize and vireo compress take a Hub name for IN as
// vireo run does (downloaded into the cache, then offline from it) and write the very
// bytes they write from the local file.
func TestHubQuantizeCompress(t *testing.T) {
	srv, _, _ := storiesRepos(t)
	hubEnv(t, srv)
	local := shared.Path(t, "models", "stories260K", "stories260K.gguf")
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
	}{
		{"quantize", []string{"--type", "q8_0", "--f16-fallback", "--threads", "2", "--quiet"}},
		{"compress", []string{"--rank-fraction", "0.5", "--allow-larger", "--quiet"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			want, got, again := filepath.Join(dir, c.name+"-local.gguf"), filepath.Join(dir, c.name+"-hub.gguf"), filepath.Join(dir, c.name+"-offline.gguf")
			require.NoError(t, run(append([]string{c.name, local, want}, c.args...), &stdout, &stderr), stderr.String())
			require.NoError(t, run(append([]string{c.name, "vireo-test/stories260K-GGUF", got}, c.args...), &stdout, &stderr), stderr.String())
			srv.Reset()
			require.NoError(t, run(append([]string{c.name, "vireo-test/stories260K-GGUF", again, "--offline"}, c.args...), &stdout, &stderr), stderr.String())
			require.Zero(t, srv.Count(), "offline: no request")
			w, err := os.ReadFile(want)
			require.NoError(t, err)
			for _, p := range []string{got, again} {
				g, err := os.ReadFile(p)
				require.NoError(t, err)
				require.True(t, bytes.Equal(w, g), "%s differs from the local file's output", p)
			}
			err = run(append([]string{c.name, "vireo-test/no-such-repo", filepath.Join(dir, c.name+"-missing.gguf")}, c.args...), &stdout, &stderr)
			require.ErrorContains(t, err, "vireo-test/no-such-repo")
		})
	}
}
