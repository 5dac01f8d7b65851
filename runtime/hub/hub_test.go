package hub

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/hub/hubtest"
)

// syncBuffer is a bytes.Buffer safe for the logger's and the test's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig points a config at srv with a fresh cache and a logger into logs.
func testConfig(t *testing.T, srv *hubtest.Server, logs *syncBuffer) Config {
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zapcore.DebugLevel)
	return Config{Endpoint: srv.URL, CacheDir: filepath.Join(t.TempDir(), "hub"), Backoff: time.Millisecond, Logger: zap.New(core)}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// ggufRepo is a repo like bartowski's: two quantizations of one model, a README and
// .gitattributes in git, the GGUFs in LFS.
func ggufRepo() (*hubtest.Repo, []byte, []byte) {
	q8 := randomBytes(3<<20+123, 1)
	q4 := randomBytes(2<<20+7, 2)
	return &hubtest.Repo{ID: "vireo-test/Tiny-GGUF", Files: []hubtest.File{
		{Path: ".gitattributes", Data: []byte("*.gguf filter=lfs diff=lfs merge=lfs -text\n")},
		{Path: "README.md", Data: []byte("# Tiny\n")},
		{Path: "Tiny-Q8_0.gguf", Data: q8, LFS: true},
		{Path: "Tiny-Q4_K_M.gguf", Data: q4, LFS: true},
	}}, q8, q4
}

func cdnGets(srv *hubtest.Server) []hubtest.Request {
	var out []hubtest.Request
	for _, r := range srv.Requests() {
		if r.Server == "cdn" && r.Method == "GET" {
			out = append(out, r)
		}
	}
	return out
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]Ref{
		"org/name":                           {Repo: "org/name"},
		"org/name@v1.0":                      {Repo: "org/name", Revision: "v1.0"},
		"org/name@refs/pr/1":                 {Repo: "org/name", Revision: "refs/pr/1"},
		"bartowski/Llama-3.2-1B-GGUF:Q4_K_M": {Repo: "bartowski/Llama-3.2-1B-GGUF", Quant: "Q4_K_M"},
		"org/name:q8_0@dev":                  {Repo: "org/name", Quant: "q8_0", Revision: "dev"},
		"org/name@dev:Q8_0":                  {Repo: "org/name", Quant: "Q8_0", Revision: "dev"},
		"org/name/sub/model.gguf":            {Repo: "org/name", File: "sub/model.gguf"},
		"karpathy/tinyllamas/stories260K/stories260K.bin":   {Repo: "karpathy/tinyllamas", File: "stories260K/stories260K.bin"},
		"org/name@0123456789abcdef0123456789abcdef01234567": {Repo: "org/name", Revision: "0123456789abcdef0123456789abcdef01234567"},
	} {
		got, err := ParseRef(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
		again, err := ParseRef(got.String())
		require.NoError(t, err)
		require.Equal(t, got, again, "String round-trips")
	}
	for in, why := range map[string]string{
		"":                     "empty",
		"gpt2":                 "has an owner",
		"org/-name":            "not a valid owner or repo name",
		"org/na--me":           "not a valid owner or repo name",
		"org/name:":            "empty quantization",
		"org/name@":            "empty revision",
		"org/name@a..b":        "not a branch",
		"org/name/../x.gguf":   "'..'",
		"org/name/x.txt":       "must be a .gguf",
		"org/name/x.gguf:Q4_0": "either a file or a :QUANT",
		"org/name:Q4 K":        "quantization",
		"org/name:Q4_0@v:Q8_0": "two quantizations",
	} {
		_, err := ParseRef(in)
		require.ErrorContains(t, err, why, in)
	}
	// A missing local path is not mistaken for a repo.
	for _, p := range []string{"./m.gguf", "/x/y", "models/x.gguf", "~/m", "dir/model.safetensors"} {
		require.True(t, looksLikePath(p), p)
	}
	require.False(t, looksLikePath("org/name"))
	require.False(t, looksLikePath("org/name.v2"))
}

func TestConfigFromEnv(t *testing.T) {
	home := t.TempDir()
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
		"HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HUB_DOWNLOAD_TIMEOUT"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", home)
	c := FromEnv()
	require.Equal(t, filepath.Join(home, ".cache", "huggingface", "hub"), c.CacheDir)
	require.Equal(t, DefaultEndpoint, c.Endpoint)
	require.False(t, c.Offline)
	require.Empty(t, c.Token)

	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "xdg"))
	require.Equal(t, filepath.Join(home, "xdg", "huggingface", "hub"), FromEnv().CacheDir)
	t.Setenv("HF_HOME", filepath.Join(home, "hfhome"))
	require.Equal(t, filepath.Join(home, "hfhome", "hub"), FromEnv().CacheDir)
	t.Setenv("HUGGINGFACE_HUB_CACHE", filepath.Join(home, "legacy"))
	require.Equal(t, filepath.Join(home, "legacy"), FromEnv().CacheDir)
	t.Setenv("HF_HUB_CACHE", "~/cache")
	require.Equal(t, filepath.Join(home, "cache"), FromEnv().CacheDir)

	// The token file `huggingface-cli login` writes, then HF_TOKEN over it.
	require.NoError(t, os.MkdirAll(filepath.Join(home, "hfhome"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(home, "hfhome", "token"), []byte("hf_fromfile\n"), 0o600))
	c = FromEnv()
	require.Equal(t, "hf_fromfile", c.Token)
	require.Equal(t, filepath.Join(home, "hfhome", "token"), c.TokenSource)
	t.Setenv("HF_TOKEN", "hf_fromenv")
	c = FromEnv()
	require.Equal(t, "hf_fromenv", c.Token)
	require.Equal(t, "$HF_TOKEN", c.TokenSource)

	for v, want := range map[string]bool{"1": true, "ON": true, "yes": true, "True": true, "0": false, "no": false, "": false} {
		t.Setenv("HF_HUB_OFFLINE", v)
		require.Equal(t, want, FromEnv().Offline, v)
	}
	t.Setenv("HF_ENDPOINT", "https://hf-mirror.example/")
	t.Setenv("HF_HUB_DOWNLOAD_TIMEOUT", "2.5")
	c = FromEnv()
	require.Equal(t, "https://hf-mirror.example", c.Endpoint)
	require.Equal(t, 2500*time.Millisecond, c.Stall)
}

// TestPullLayout downloads a quantization and checks the cache is laid out exactly as
// huggingface_hub lays it out.
func TestPullLayout(t *testing.T) {
	repo, _, q4 := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	res, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "q4_k_m"})
	require.NoError(t, err)
	dir := filepath.Join(cfg.CacheDir, "models--vireo-test--Tiny-GGUF")
	snap := filepath.Join(dir, "snapshots", repo.Commit)
	require.Equal(t, filepath.Join(snap, "Tiny-Q4_K_M.gguf"), res.Path)
	require.Equal(t, []string{"Tiny-Q4_K_M.gguf"}, res.Files)
	require.EqualValues(t, len(q4), res.Downloaded)

	sum := hubtest.SHA256Hex(q4)
	link, err := os.Readlink(res.Path)
	require.NoError(t, err)
	require.Equal(t, "../../blobs/"+sum, link, "a relative link into blobs/, named by the LFS sha256")
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(q4, got))
	ref, err := os.ReadFile(filepath.Join(dir, "refs", "main"))
	require.NoError(t, err)
	require.Equal(t, repo.Commit, string(ref), "refs/main holds the commit, no newline")
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs"))
	require.NoError(t, err)
	require.Len(t, blobs, 1, "only the chosen quantization, no .incomplete left")
	require.Equal(t, sum, blobs[0].Name())
	_, err = os.Stat(filepath.Join(cfg.CacheDir, ".locks", "models--vireo-test--Tiny-GGUF", sum+".lock"))
	require.NoError(t, err, "the lock file sits where huggingface_hub puts it")

	// Protocol: the file list, a HEAD on resolve/<commit>, the bytes from the CDN
	// without the token.
	var seq []string
	for _, r := range srv.Requests() {
		seq = append(seq, r.Server+" "+r.Method+" "+r.Path)
	}
	require.Equal(t, []string{
		"hub GET /api/models/vireo-test/Tiny-GGUF/revision/main?blobs=true",
		"hub HEAD /vireo-test/Tiny-GGUF/resolve/" + repo.Commit + "/Tiny-Q4_K_M.gguf",
		"cdn GET /blobs/" + sum + "?X-Amz-Expires=3600&X-Amz-Signature=fake",
	}, seq)
	require.Contains(t, logs.String(), `"msg":"downloading"`)
	require.Contains(t, logs.String(), `"msg":"file downloaded and verified"`)

	// Pulling again verifies the cached blob and transfers nothing.
	srv.Reset()
	res, err = Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q4_K_M"})
	require.NoError(t, err)
	require.Zero(t, res.Downloaded)
	require.Equal(t, 1, res.Verified)
	require.Empty(t, cdnGets(srv))
}

// TestResumeAfterDisconnect cuts the connection a third of the way into the blob; the
// transfer resumes with a Range request from where it stopped and verifies.
func TestResumeAfterDisconnect(t *testing.T) {
	repo, q8, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	cut := int64(len(q8) / 3)
	srv.CutAfter(q8, cut, 1)
	res, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.NoError(t, err)
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(q8, got))
	gets := cdnGets(srv)
	require.Len(t, gets, 2)
	require.Empty(t, gets[0].Range)
	require.Equal(t, "bytes="+itoa(cut)+"-", gets[1].Range, "the second request resumes at the cut")
	require.EqualValues(t, len(q8), res.Downloaded, "no byte downloaded twice")
	require.Contains(t, logs.String(), "transfer interrupted: resuming")
}

// TestStalledTransfer: a connection that stops sending is abandoned after Stall and
// the transfer resumes from the last byte received.
func TestStalledTransfer(t *testing.T) {
	repo, q8, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	cfg.Stall = 100 * time.Millisecond
	at := int64(len(q8) / 4)
	srv.StallAfter(q8, at, 1)
	res, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.NoError(t, err)
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(q8, got))
	require.Contains(t, logs.String(), "no data for 100ms")
	gets := cdnGets(srv)
	require.GreaterOrEqual(t, len(gets), 2)
	require.NotEmpty(t, gets[1].Range, "the retry resumes, it does not start over")
}

// TestInterrupted: cancelling a pull (Ctrl-C) keeps what arrived, says so, and the
// next pull resumes it.
func TestInterrupted(t *testing.T) {
	repo, q8, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	at := int64(len(q8) / 3)
	srv.StallAfter(q8, at, 1)
	inc := filepath.Join(cfg.CacheDir, "models--vireo-test--Tiny-GGUF", "blobs", hubtest.SHA256Hex(q8)+".incomplete")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Pull(ctx, cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
		done <- err
	}()
	require.Eventually(t, func() bool {
		fi, err := os.Stat(inc)
		return err == nil && fi.Size() == at
	}, time.Minute, time.Millisecond, "the bytes before the stall arrive")
	cancel()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "download of vireo-test/Tiny-GGUF:Q8_0 interrupted")
	require.ErrorContains(t, err, "the next run resumes it")
	fi, err := os.Stat(inc)
	require.NoError(t, err)
	require.Equal(t, at, fi.Size())

	ms, err := List(cfg.CacheDir)
	require.NoError(t, err)
	require.Len(t, ms, 1)
	ms[0].Modified = time.Time{}
	require.Equal(t, CachedModel{Name: repo.ID, Repo: repo.ID, Revision: "-", Format: "partial", Path: filepath.Dir(inc), Size: at, Incomplete: at}, ms[0],
		"list shows an interrupted download")

	srv.Reset()
	res, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.NoError(t, err)
	require.Equal(t, int64(len(q8))-at, res.Downloaded)
	require.Equal(t, "bytes="+itoa(at)+"-", cdnGets(srv)[0].Range)
}

// TestResumeAcrossRuns: with no retries the first pull fails and keeps the partial
// blob; the next run resumes it.
func TestResumeAcrossRuns(t *testing.T) {
	repo, q8, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	cfg.Retries = -1
	cut := int64(len(q8)/2 + 11)
	srv.CutAfter(q8, cut, 1)
	_, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.ErrorIs(t, err, ErrNoNetwork)
	require.ErrorContains(t, err, "the next run resumes from there")
	inc := filepath.Join(cfg.CacheDir, "models--vireo-test--Tiny-GGUF", "blobs", hubtest.SHA256Hex(q8)+".incomplete")
	fi, err := os.Stat(inc)
	require.NoError(t, err)
	require.Equal(t, cut, fi.Size())

	srv.Reset()
	res, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.NoError(t, err)
	require.Equal(t, int64(len(q8))-cut, res.Downloaded)
	gets := cdnGets(srv)
	require.Len(t, gets, 1)
	require.Equal(t, "bytes="+itoa(cut)+"-", gets[0].Range)
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(q8, got))
	_, err = os.Stat(inc)
	require.True(t, os.IsNotExist(err), "the .incomplete was renamed into place")
}

// TestCorrupt: a download whose sha256 does not match is deleted with a clear error; a
// cached blob corrupted later is found by pull, deleted, said so and fetched again.
func TestCorrupt(t *testing.T) {
	repo, _, q4 := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	ref := Ref{Repo: repo.ID, Quant: "Q4_K_M"}
	blobs := filepath.Join(cfg.CacheDir, "models--vireo-test--Tiny-GGUF", "blobs")

	srv.Corrupt(q4, true)
	_, err := Pull(context.Background(), cfg, ref)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "sha256")
	require.ErrorContains(t, err, "partial file was deleted")
	ents, _ := os.ReadDir(blobs)
	require.Empty(t, ents, "nothing corrupt stays in the cache")

	srv.Corrupt(q4, false)
	_, err = Pull(context.Background(), cfg, ref)
	require.NoError(t, err)
	blob := filepath.Join(blobs, hubtest.SHA256Hex(q4))
	data, err := os.ReadFile(blob)
	require.NoError(t, err)
	data[100] ^= 1
	require.NoError(t, os.WriteFile(blob, data, 0o644))

	res, err := Pull(context.Background(), cfg, ref)
	require.NoError(t, err)
	require.Equal(t, []string{"Tiny-Q4_K_M.gguf"}, res.Repaired)
	require.Contains(t, logs.String(), "corrupted blob in the cache: deleted, downloading it again")
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(q4, got))
}

// TestGated: without a token, with a token lacking access and with a bad token each get
// their own error naming the fix; the right token downloads; the token goes to the Hub
// only (never to the CDN) and never into a log line or an error.
func TestGated(t *testing.T) {
	data := randomBytes(1<<20, 3)
	repo := &hubtest.Repo{ID: "vireo-test/Gated-GGUF", Gated: true, Files: []hubtest.File{{Path: "gated-Q8_0.gguf", Data: data, LFS: true}}}
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	var errs []string
	cfg := testConfig(t, srv, &logs)
	ref := Ref{Repo: repo.ID}

	_, err := Pull(context.Background(), cfg, ref)
	require.ErrorIs(t, err, ErrGated)
	require.ErrorContains(t, err, "no token was sent")
	require.ErrorContains(t, err, "HF_TOKEN")
	require.ErrorContains(t, err, srv.URL+"/"+repo.ID)
	errs = append(errs, err.Error())

	cfg.Token, cfg.TokenSource = srv.NoAccessToken, "$HF_TOKEN"
	_, err = Pull(context.Background(), cfg, ref)
	require.ErrorIs(t, err, ErrGated)
	require.ErrorContains(t, err, "has no access")
	require.ErrorContains(t, err, "Request access")
	errs = append(errs, err.Error())

	cfg.Token = "hf_wrong_SECRET_0000"
	_, err = Pull(context.Background(), cfg, ref)
	require.ErrorIs(t, err, ErrUnauthorized)
	require.ErrorContains(t, err, "refused the token from $HF_TOKEN")
	errs = append(errs, err.Error())

	cfg.Token = srv.Token
	res, err := Pull(context.Background(), cfg, ref)
	require.NoError(t, err)
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got))

	sawAuth := false
	for _, r := range srv.Requests() {
		if r.Server == "cdn" {
			require.Empty(t, r.Auth, "the CDN never sees the token")
		} else if r.Auth == "Bearer "+srv.Token {
			sawAuth = true
		}
	}
	require.True(t, sawAuth, "the Hub got the token")
	all := logs.String() + strings.Join(errs, "\n")
	for _, tok := range []string{srv.Token, srv.NoAccessToken, "hf_wrong_SECRET_0000"} {
		require.NotContains(t, all, tok)
	}
}

func TestNotFound(t *testing.T) {
	repo, _, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	_, err := Pull(context.Background(), cfg, Ref{Repo: "vireo-test/Nope"})
	require.ErrorIs(t, err, ErrRepoNotFound)
	require.ErrorContains(t, err, "vireo-test/Nope: no such model repository")
	require.ErrorContains(t, err, "HTTP 401 RepoNotFound", "anonymous: the Hub answers 401")
	cfg.Token, cfg.TokenSource = srv.Token, "$HF_TOKEN"
	_, err = Pull(context.Background(), cfg, Ref{Repo: "vireo-test/Nope"})
	require.ErrorIs(t, err, ErrRepoNotFound)
	require.ErrorContains(t, err, "HTTP 404 RepoNotFound")

	_, err = Pull(context.Background(), cfg, Ref{Repo: repo.ID, Revision: "v9"})
	require.ErrorIs(t, err, ErrRevisionNotFound)
	require.ErrorContains(t, err, `no revision "v9"`)

	_, err = Pull(context.Background(), cfg, Ref{Repo: repo.ID, File: "Tiny-Q2_K.gguf"})
	require.ErrorIs(t, err, ErrFileNotFound)
	require.ErrorContains(t, err, "Q8_0 (Tiny-Q8_0.gguf")

	_, err = Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q5_K_M"})
	require.ErrorIs(t, err, ErrNoQuant)
	require.ErrorContains(t, err, "no GGUF file matches Q5_K_M; the repo has: Q4_K_M (Tiny-Q4_K_M.gguf, 2.1 MB), Q8_0 (Tiny-Q8_0.gguf, 3.1 MB)")
}

func TestNoNetwork(t *testing.T) {
	cfg := Config{Endpoint: "http://127.0.0.1:1", CacheDir: t.TempDir()}
	_, err := Pull(context.Background(), cfg, Ref{Repo: "org/name"})
	require.ErrorIs(t, err, ErrNoNetwork)
	require.ErrorContains(t, err, "cannot reach the Hub at http://127.0.0.1:1")
	require.ErrorContains(t, err, "HF_HUB_OFFLINE=1")

	_, err = Resolve(context.Background(), "org/name", Config{Endpoint: "http://127.0.0.1:1", CacheDir: t.TempDir(), Offline: true})
	require.ErrorIs(t, err, ErrOffline)
	require.ErrorContains(t, err, "org/name is not in the cache")
	require.ErrorContains(t, err, "vireo pull org/name")
}

// TestDiskFull: the listed sizes are checked against the free space before any byte
// is downloaded.
func TestDiskFull(t *testing.T) {
	repo, q8, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	cfg.FreeSpace = func(string) (int64, error) { return int64(len(q8)) - 1, nil }
	_, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.ErrorIs(t, err, ErrDiskFull)
	require.ErrorContains(t, err, "3.1 MB to download, 3.1 MB free in "+cfg.CacheDir)
	require.ErrorContains(t, err, "HF_HUB_CACHE")
	require.Empty(t, cdnGets(srv), "nothing was downloaded")
	cfg.FreeSpace = func(string) (int64, error) { return int64(len(q8)), nil }
	_, err = Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.NoError(t, err)
}

// pythonCache writes a repo into cacheDir as huggingface_hub does: blobs named by etag,
// snapshot entries as relative symlinks, refs/main.
func pythonCache(t *testing.T, cacheDir string, repo *hubtest.Repo) string {
	dir := filepath.Join(cacheDir, "models--"+strings.ReplaceAll(repo.ID, "/", "--"))
	snap := filepath.Join(dir, "snapshots", repo.Commit)
	for _, f := range repo.Files {
		etag := hubtest.GitBlobSHA1(f.Data)
		if f.LFS {
			etag = hubtest.SHA256Hex(f.Data)
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "blobs"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "blobs", etag), f.Data, 0o644))
		link := filepath.Join(snap, filepath.FromSlash(f.Path))
		require.NoError(t, os.MkdirAll(filepath.Dir(link), 0o755))
		rel := strings.Repeat("../", strings.Count(f.Path, "/")+2) + "blobs/" + etag
		require.NoError(t, os.Symlink(rel, link))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "refs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "refs", "main"), []byte(repo.Commit), 0o644))
	return snap
}

// stRepo is a transformers-style repo: config, tokenizer, sharded safetensors, and
// files a model does not need (pytorch weights, a Mistral-format duplicate, originals).
func stRepo() *hubtest.Repo {
	index := []byte(`{"metadata":{"total_size":3000},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}}`)
	return &hubtest.Repo{ID: "vireo-test/Tiny-HF", Files: []hubtest.File{
		{Path: ".gitattributes", Data: []byte("*.safetensors filter=lfs\n")},
		{Path: "README.md", Data: []byte("# tiny\n")},
		{Path: "config.json", Data: []byte(`{"model_type":"llama"}`)},
		{Path: "generation_config.json", Data: []byte(`{"eos_token_id":2}`)},
		{Path: "tokenizer.json", Data: []byte(`{"model":{}}`)},
		{Path: "tokenizer_config.json", Data: []byte(`{}`)},
		{Path: "model.safetensors.index.json", Data: index},
		{Path: "model-00001-of-00002.safetensors", Data: randomBytes(1500, 4), LFS: true},
		{Path: "model-00002-of-00002.safetensors", Data: randomBytes(1500, 5), LFS: true},
		{Path: "consolidated.safetensors", Data: randomBytes(3000, 6), LFS: true},
		{Path: "pytorch_model.bin", Data: randomBytes(3000, 7), LFS: true},
		{Path: "original/consolidated.00.pth", Data: randomBytes(3000, 8), LFS: true},
	}}
}

// TestCacheFoundWithNoRequest builds a cache as the Python tools write it and resolves
// names from it, online and offline, with a server that counts requests: zero.
func TestCacheFoundWithNoRequest(t *testing.T) {
	gg, _, q4 := ggufRepo()
	st := stRepo()
	srv := hubtest.New(t, gg, st)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	ggSnap := pythonCache(t, cfg.CacheDir, gg)
	stSnap := pythonCache(t, cfg.CacheDir, st)
	for _, offline := range []bool{true, false} {
		cfg.Offline = offline
		for name, want := range map[string]string{
			"vireo-test/Tiny-GGUF":                filepath.Join(ggSnap, "Tiny-Q4_K_M.gguf"), // the default quantization
			"vireo-test/Tiny-GGUF:Q8_0":           filepath.Join(ggSnap, "Tiny-Q8_0.gguf"),
			"vireo-test/Tiny-GGUF/Tiny-Q8_0.gguf": filepath.Join(ggSnap, "Tiny-Q8_0.gguf"),
			"vireo-test/Tiny-GGUF@" + gg.Commit:   filepath.Join(ggSnap, "Tiny-Q4_K_M.gguf"),
			"vireo-test/Tiny-HF":                  stSnap,
		} {
			got, err := Resolve(context.Background(), name, cfg)
			require.NoError(t, err, name)
			require.Equal(t, want, got, name)
		}
		data, err := os.ReadFile(filepath.Join(ggSnap, "Tiny-Q4_K_M.gguf"))
		require.NoError(t, err)
		require.True(t, bytes.Equal(q4, data))
	}
	// Offline, what the cache lacks is an error that says so, still with no request.
	cfg.Offline = true
	_, err := Resolve(context.Background(), "vireo-test/Tiny-GGUF:Q2_K", cfg)
	require.ErrorIs(t, err, ErrOffline)
	require.ErrorContains(t, err, "no GGUF file matches Q2_K; the repo has: Q4_K_M (Tiny-Q4_K_M.gguf")
	_, err = Resolve(context.Background(), "vireo-test/Tiny-GGUF@v2", cfg)
	require.ErrorIs(t, err, ErrOffline)
	require.ErrorContains(t, err, "not its revision v2")
	// A shard deleted from under the snapshot makes it incomplete.
	require.NoError(t, os.Remove(filepath.Join(cfg.CacheDir, "models--vireo-test--Tiny-HF", "blobs", hubtest.SHA256Hex(st.Files[8].Data))))
	_, err = Resolve(context.Background(), "vireo-test/Tiny-HF", cfg)
	require.ErrorContains(t, err, "lacks model-00002-of-00002.safetensors")
	require.Zero(t, srv.Count(), "no request was made: %v", srv.Requests())

	// Online, the incomplete snapshot is completed: only the missing shard is fetched.
	cfg.Offline = false
	got, err := Resolve(context.Background(), "vireo-test/Tiny-HF", cfg)
	require.NoError(t, err)
	require.Equal(t, stSnap, got)
	gets := cdnGets(srv)
	require.Len(t, gets, 1)
	require.Contains(t, gets[0].Path, hubtest.SHA256Hex(st.Files[8].Data))
}

// TestSafetensorsPull fetches exactly what a safetensors model needs.
func TestSafetensorsPull(t *testing.T) {
	st := stRepo()
	srv := hubtest.New(t, st)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	res, err := Pull(context.Background(), cfg, Ref{Repo: st.ID})
	require.NoError(t, err)
	files, err := snapshotFiles(res.Path)
	require.NoError(t, err)
	var names []string
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	require.Equal(t, []string{"config.json", "generation_config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
		"model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"}, names)
	// Git files are verified by their git blob sha1 and named by it.
	link, err := os.Readlink(filepath.Join(res.Path, "config.json"))
	require.NoError(t, err)
	require.Equal(t, "../../blobs/"+hubtest.GitBlobSHA1(st.Files[2].Data), link)
	p, err := Lookup(cfg, Ref{Repo: st.ID})
	require.NoError(t, err)
	require.Equal(t, res.Path, p)
}

// TestRenamedRepo follows the Hub's relative redirect from a repo's former name.
func TestRenamedRepo(t *testing.T) {
	repo, _, q4 := ggufRepo()
	repo.OldID = "vireo-test/Old-Name"
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	res, err := Pull(context.Background(), cfg, Ref{Repo: "vireo-test/Old-Name", Quant: "Q4_K_M"})
	require.NoError(t, err)
	got, err := os.ReadFile(res.Path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(q4, got))
}

// TestRetryOn503: a busy CDN is retried.
func TestRetryOn503(t *testing.T) {
	repo, _, q4 := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	srv.Fail503(2)
	res, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q4_K_M"})
	require.NoError(t, err)
	require.EqualValues(t, len(q4), res.Downloaded)
	require.Len(t, cdnGets(srv), 3)

	cfg.CacheDir = t.TempDir()
	cfg.Retries = 2
	srv.Fail503(100)
	_, err = Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.ErrorIs(t, err, ErrServer)
	require.ErrorContains(t, err, "failed after 3 attempts (HTTP 503)")
	srv.Fail503(0)
}

// TestConcurrentPulls: two pulls of one model at once download its blob once (the
// blob lock), and both succeed.
func TestConcurrentPulls(t *testing.T) {
	repo, _, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Len(t, cdnGets(srv), 1)
}

func TestList(t *testing.T) {
	gg, q8, q4 := ggufRepo()
	st := stRepo()
	srv := hubtest.New(t, gg, st)
	var logs syncBuffer
	cfg := testConfig(t, srv, &logs)
	pythonCache(t, cfg.CacheDir, st)
	_, err := Pull(context.Background(), cfg, Ref{Repo: gg.ID, Quant: "Q4_K_M"})
	require.NoError(t, err)
	_, err = Pull(context.Background(), cfg, Ref{Repo: gg.ID, Quant: "Q8_0"})
	require.NoError(t, err)
	ms, err := List(cfg.CacheDir)
	require.NoError(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.Name+" "+m.Format+" "+m.Revision+" "+itoa(m.Size))
	}
	stSize := int64(0)
	for _, f := range st.Files {
		switch f.Path {
		case "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors.index.json",
			"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors":
			stSize += int64(len(f.Data))
		}
	}
	require.Equal(t, []string{
		"vireo-test/Tiny-GGUF:Q4_K_M gguf main " + itoa(int64(len(q4))),
		"vireo-test/Tiny-GGUF:Q8_0 gguf main " + itoa(int64(len(q8))),
		"vireo-test/Tiny-HF safetensors main " + itoa(stSize),
	}, got)
	for _, m := range ms {
		p, err := Resolve(context.Background(), m.Name, Config{CacheDir: cfg.CacheDir, Offline: true})
		require.NoError(t, err, m.Name)
		require.Equal(t, m.Path, p, "a listed name resolves to the listed path")
	}
	empty, err := List(filepath.Join(t.TempDir(), "none"))
	require.NoError(t, err)
	require.Empty(t, empty)
}

func TestChoose(t *testing.T) {
	sizes := func(names ...string) map[string]int64 {
		m := map[string]int64{}
		for _, n := range names {
			m[n] = 10
		}
		return m
	}
	pick := func(ref Ref, files map[string]int64) string {
		c, err := choose(ref, files)
		if err != nil {
			return "error: " + err.Error()
		}
		return c.kind + " " + strings.Join(c.files, ",")
	}
	r := Ref{Repo: "o/n"}
	require.Equal(t, "gguf x.gguf", pick(r, sizes("x.gguf", "mmproj-x-f16.gguf", "README.md")), "one GGUF; vision projectors left out")
	require.Equal(t, "gguf m-Q4_K_M.gguf", pick(r, sizes("m-Q8_0.gguf", "m-Q4_K_M.gguf", "m-Q4_K_S.gguf")), "llama.cpp's default first")
	require.Equal(t, "gguf m.Q8_0.gguf", pick(r, sizes("m.Q8_0.gguf", "m.Q2_K.gguf")))
	require.Contains(t, pick(r, sizes("m-Q2_K.gguf", "m-Q3_K_S.gguf")), "none is a default choice")
	require.Equal(t, "gguf m-UD-Q4_K_XL.gguf", pick(Ref{Repo: "o/n", Quant: "q4_k_xl"}, sizes("m-UD-Q4_K_XL.gguf", "m-Q4_K_M.gguf")))
	require.Equal(t, "gguf m-Q4_K_M.gguf", pick(Ref{Repo: "o/n", Quant: "Q4_K_M"}, sizes("m-Q4_K_M.gguf", "m-Q4_K_S.gguf")))
	require.Contains(t, pick(Ref{Repo: "o/n", Quant: "Q4_K"}, sizes("m-Q4_K_M.gguf", "m-Q4_K_S.gguf")), "2 GGUF files match Q4_K")
	require.Contains(t, pick(Ref{Repo: "o/n", Quant: "Q4_K_M"}, sizes("Q4_K_M/m-Q4_K_M-00001-of-00002.gguf", "Q4_K_M/m-Q4_K_M-00002-of-00002.gguf")),
		"split into 2 files")
	require.Equal(t, "safetensors config.json,tokenizer.json,model.safetensors",
		pick(r, sizes("config.json", "tokenizer.json", "model.safetensors", "m-Q8_0.gguf", "pytorch_model.bin")), "safetensors first, as vLLM")
	require.Equal(t, "gguf m-Q8_0.gguf", pick(Ref{Repo: "o/n", Quant: "Q8_0"}, sizes("config.json", "model.safetensors", "m-Q8_0.gguf")))
	require.Equal(t, "llama2c s/stories260K.bin,s/tok512.bin",
		pick(Ref{Repo: "o/n", File: "s/stories260K.bin"}, sizes("s/stories260K.bin", "s/tok512.bin", "other/tok4096.bin", "s/model.pt")))
	require.Contains(t, pick(r, sizes("pytorch_model.bin", "config.json")), "nothing Vireo can load")
	require.Contains(t, pick(Ref{Repo: "o/n", Quant: "Q8_0"}, sizes("config.json", "model.safetensors")), "no GGUF files")
}

func TestProgressBar(t *testing.T) {
	repo, q8, _ := ggufRepo()
	srv := hubtest.New(t, repo)
	var logs, term syncBuffer
	cfg := testConfig(t, srv, &logs)
	cfg.Progress = &term
	_, err := Pull(context.Background(), cfg, Ref{Repo: repo.ID, Quant: "Q8_0"})
	require.NoError(t, err)
	out := term.String()
	require.Contains(t, out, "\r\033[Kpulling vireo-test/Tiny-GGUF:Q8_0 ")
	require.Contains(t, out, "100% "+humanBytes(int64(len(q8)))+"/"+humanBytes(int64(len(q8))))
	require.True(t, strings.HasSuffix(out, "\n"))
	require.NotContains(t, logs.String(), "file downloaded and verified", "the bar replaces per-file lines on a terminal")
	require.False(t, IsTerminal(&term))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
