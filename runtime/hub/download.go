package hub

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Result says what Pull did.
type Result struct {
	Ref        Ref
	Commit     string
	Path       string   // what to give the loader: a GGUF or .bin file, or the snapshot folder
	Files      []string // the repo files the model uses
	Downloaded int64    // bytes transferred in this call
	Verified   int      // blobs already in the cache whose hash was checked
	Repaired   []string // files whose cached blob was corrupt, deleted and fetched again
}

// Pull brings ref's files into the cache: it asks the Hub which commit the revision is
// at and which files that commit has, chooses the files the model needs, checks that the
// disk holds what is missing, downloads the missing blobs (several files at once, each
// resumable) and verifies every blob of the model, cached ones included, against the
// Hub's hashes. A corrupt cached blob is deleted and fetched again, and said so.
func Pull(ctx context.Context, cfg Config, ref Ref) (*Result, error) {
	if cfg.Offline {
		return nil, newErr(ErrOffline, fmt.Sprintf("cannot download %s: offline mode (--offline or HF_HUB_OFFLINE=1) forbids network access", ref), nil)
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("hub: no cache folder configured")
	}
	log := cfg.log().With(zap.String("repo", ref.Repo))
	info, err := cfg.fetchInfo(ctx, ref)
	if err != nil {
		return nil, err
	}
	commit := info.SHA
	files := map[string]int64{}
	sibs := map[string]sibling{}
	for _, s := range info.Siblings {
		if checkRepoPath(s.RFilename) != nil {
			continue // never write outside the snapshot, whatever the server lists
		}
		files[s.RFilename] = s.size()
		sibs[s.RFilename] = s
	}
	ch, err := choose(ref, files)
	if err != nil {
		return nil, err
	}
	d := &downloader{cfg: &cfg, ref: ref, commit: commit, repoDir: cfg.repoDir(ref.Repo), sibs: sibs, log: log}
	for _, sub := range []string{"blobs", filepath.Join("snapshots", commit)} {
		if err := os.MkdirAll(filepath.Join(d.repoDir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("hub: cache folder: %w", err)
		}
	}
	res := &Result{Ref: ref, Commit: commit}
	want := ch.files
	if ch.index != "" {
		// The index is small and names the shards: fetch it first.
		if err := d.fetch(ctx, ch.index, res, nil); err != nil {
			return nil, err
		}
		data, err := readSmall(filepath.Join(d.repoDir, "snapshots", commit, ch.index), 64<<20)
		if err != nil {
			return nil, err
		}
		shards, err := shardsOf(data)
		if err != nil {
			return nil, newErr(ErrNoModel, fmt.Sprintf("%s: %v", ref, err), err)
		}
		for _, s := range shards {
			if _, ok := files[s]; !ok {
				return nil, newErr(ErrNoModel, fmt.Sprintf("%s: %s names shard %s, which the repo does not have at %s", ref, ch.index, s, commit), nil)
			}
		}
		want = append(append([]string(nil), want...), shards...)
	}
	res.Files = want

	// What is missing, and does the disk hold it?
	var todo []string
	var need, resumeFrom int64
	for _, f := range want {
		if f == ch.index {
			continue
		}
		todo = append(todo, f)
		etag := sibs[f].etag()
		if etag != "" && etagRe.MatchString(etag) {
			if fi, err := os.Stat(filepath.Join(d.repoDir, "blobs", etag)); err == nil && fi.Size() == files[f] {
				continue
			}
			if fi, err := os.Stat(filepath.Join(d.repoDir, "blobs", etag+".incomplete")); err == nil && files[f] > 0 && fi.Size() <= files[f] {
				resumeFrom += fi.Size()
				need -= fi.Size()
			}
		}
		if files[f] > 0 {
			need += files[f]
		}
	}
	if need > 0 {
		free, err := cfg.freeSpace(filepath.Join(d.repoDir, "blobs"))
		if err == nil && free < need {
			return nil, newErr(ErrDiskFull, fmt.Sprintf("not enough disk space for %s: %s to download, %s free in %s. Free some space (`vireo list` shows what the cache holds), or point HF_HUB_CACHE (or HF_HOME) at a larger disk",
				ref, humanBytes(need), humanBytes(free), cfg.CacheDir), nil)
		}
	}
	prog := newProgress(&cfg, ref.String(), need, log)
	if need > 0 {
		log.Info("downloading", zap.String("model", ref.String()), zap.String("commit", commit), zap.Int("files", len(todo)),
			zap.Int64("bytes", need), zap.Int64("resuming_from_bytes", resumeFrom), zap.String("endpoint", cfg.endpoint()))
	}
	prog.start()
	err = d.fetchAll(ctx, todo, res, prog)
	prog.finish(err == nil)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("download of %s interrupted (%w); what arrived is kept in %s and the next run resumes it",
			ref, context.Cause(ctx), filepath.Join(d.repoDir, "blobs"))
	}
	if err != nil {
		return nil, err
	}
	if err := writeRef(d.repoDir, ref.Rev(), commit); err != nil {
		return nil, fmt.Errorf("hub: writing refs/%s: %w", ref.Rev(), err)
	}
	snap := filepath.Join(d.repoDir, "snapshots", commit)
	res.Path = snap
	if ch.main != "" {
		res.Path = filepath.Join(snap, filepath.FromSlash(ch.main))
	}
	sort.Strings(res.Repaired)
	if need > 0 || len(res.Repaired) > 0 {
		log.Info("downloaded", zap.String("model", ref.String()), zap.String("path", res.Path), zap.Int64("bytes", res.Downloaded),
			zap.Duration("took", prog.elapsed()))
	}
	return res, nil
}

// downloader fetches one commit's files into the cache.
type downloader struct {
	cfg     *Config
	ref     Ref
	commit  string
	repoDir string
	sibs    map[string]sibling
	log     *zap.Logger
	mu      sync.Mutex // guards the Result
}

// fetchAll fetches files with cfg.Workers at a time, largest first; the first error
// cancels the rest.
func (d *downloader) fetchAll(ctx context.Context, files []string, res *Result, prog *progress) error {
	sort.SliceStable(files, func(i, j int) bool { return d.sibs[files[i]].size() > d.sibs[files[j]].size() })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan string)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < min(d.cfg.workers(), len(files)); w++ {
		wg.Go(func() {
			for f := range jobs {
				if err := d.fetch(ctx, f, res, prog); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
	for _, f := range files {
		select {
		case jobs <- f:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// fetch makes snapshots/<commit>/<file> point at a verified blob, downloading it if needed.
func (d *downloader) fetch(ctx context.Context, file string, res *Result, prog *progress) error {
	sib := d.sibs[file]
	blobs := filepath.Join(d.repoDir, "blobs")
	// A blob the listing already names: verify it and link it, with no request.
	if etag := sib.etag(); etag != "" && etagRe.MatchString(etag) {
		if ok, err := d.checkCached(file, etag, sib, res); err != nil || ok {
			return err
		}
	}
	meta, err := d.cfg.headFile(ctx, d.ref, d.commit, file)
	if err != nil {
		return err
	}
	if meta.commit != "" && meta.commit != d.commit {
		return newErr(ErrServer, fmt.Sprintf("%s: the Hub served %s from commit %s while listing commit %s; run again", d.ref, file, meta.commit, d.commit), nil)
	}
	size := sib.size()
	if size < 0 {
		size = meta.size
	}
	if meta.etag != sib.etag() {
		if ok, err := d.checkCached(file, meta.etag, sib, res); err != nil || ok {
			return err
		}
	}
	unlock, err := lockBlob(filepath.Join(d.cfg.CacheDir, ".locks", RepoFolder(d.ref.Repo)), meta.etag)
	if err != nil {
		return fmt.Errorf("hub: lock for %s: %w", file, err)
	}
	defer unlock()
	blob := filepath.Join(blobs, meta.etag)
	if _, err := os.Stat(blob); err == nil { // another process finished it meanwhile
		return linkSnapshot(d.repoDir, d.commit, file, meta.etag)
	}
	inc := blob + ".incomplete"
	n, err := d.transfer(ctx, file, meta.location, inc, size, prog)
	d.mu.Lock()
	res.Downloaded += n
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if err := verifyFile(inc, size, sib, meta.etag); err != nil {
		os.Remove(inc)
		return newErr(ErrCorrupt, fmt.Sprintf("%s: the download of %s is corrupt (%v); the partial file was deleted, run again to download it afresh", d.ref, file, err), err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return err
	}
	if prog != nil {
		prog.fileDone(file, size)
	}
	return linkSnapshot(d.repoDir, d.commit, file, meta.etag)
}

// checkCached verifies blobs/<etag> when it exists and links the snapshot to it. A blob
// that fails its hash is deleted (and said so), and the caller downloads it again.
func (d *downloader) checkCached(file, etag string, sib sibling, res *Result) (bool, error) {
	blob := filepath.Join(d.repoDir, "blobs", etag)
	if _, err := os.Stat(blob); err != nil {
		return false, nil
	}
	if err := verifyFile(blob, sib.size(), sib, etag); err != nil {
		d.log.Warn("corrupted blob in the cache: deleted, downloading it again", zap.String("file", file), zap.String("blob", blob), zap.String("why", err.Error()))
		if rmErr := os.Remove(blob); rmErr != nil {
			return false, fmt.Errorf("hub: %s: cached blob %s is corrupt (%v) and could not be deleted: %w", d.ref, blob, err, rmErr)
		}
		d.mu.Lock()
		res.Repaired = append(res.Repaired, file)
		d.mu.Unlock()
		return false, nil
	}
	d.mu.Lock()
	res.Verified++
	d.mu.Unlock()
	return true, linkSnapshot(d.repoDir, d.commit, file, etag)
}

// transfer downloads url into inc, resuming from what inc holds, retrying a broken or
// stalled transfer from where it stopped. It returns the bytes transferred.
func (d *downloader) transfer(ctx context.Context, file, url, inc string, size int64, prog *progress) (int64, error) {
	var total int64
	for attempt := 0; ; attempt++ {
		n, err := d.once(ctx, url, inc, size, prog)
		total += n
		if err == nil {
			return total, nil
		}
		var re *retryErr
		if !errors.As(err, &re) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, err
		}
		if attempt >= d.cfg.retries() {
			have := int64(0)
			if fi, serr := os.Stat(inc); serr == nil {
				have = fi.Size()
			}
			kind := ErrNoNetwork
			if re.status != 0 {
				kind = ErrServer
			}
			return total, newErr(kind, fmt.Sprintf("%s: downloading %s failed after %d attempts (%v); %s of it are kept in %s and the next run resumes from there",
				d.ref, file, attempt+1, re.err, humanBytes(have), inc), re.err)
		}
		wait := re.after
		if wait == 0 {
			wait = min(d.cfg.backoff()<<attempt, 30*time.Second)
		}
		d.log.Warn("transfer interrupted: resuming", zap.String("file", file), zap.Int("attempt", attempt+1), zap.String("why", re.err.Error()), zap.Duration("wait", wait))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return total, ctx.Err()
		}
	}
}

// retryErr marks a failure worth another attempt (after: the server's Retry-After).
type retryErr struct {
	err    error
	after  time.Duration
	status int // the HTTP status, when the server answered one
}

func (e *retryErr) Error() string { return e.err.Error() }
func (e *retryErr) Unwrap() error { return e.err }

var contentRangeRe = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+|\*)$`)

// once makes one GET, appending to inc from its current length (Range: bytes=N-).
func (d *downloader) once(parent context.Context, url, inc string, size int64, prog *progress) (int64, error) {
	f, err := os.OpenFile(inc, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	have := fi.Size()
	if size >= 0 && have > size {
		have = 0 // longer than the file: not ours to trust
	}
	if size >= 0 && have == size {
		return 0, nil
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	req, err := d.cfg.newRequest(ctx, http.MethodGet, url)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := d.cfg.client().Do(req)
	if err != nil {
		if parent.Err() != nil {
			return 0, parent.Err()
		}
		return 0, &retryErr{err: err}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		m := contentRangeRe.FindStringSubmatch(resp.Header.Get("Content-Range"))
		if m == nil || m[1] != strconv.FormatInt(have, 10) {
			return 0, &retryErr{err: fmt.Errorf("the server answered Range bytes=%d- with Content-Range %q", have, resp.Header.Get("Content-Range"))}
		}
	case resp.StatusCode == http.StatusOK:
		have = 0 // no range support: start over
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		f.Truncate(0)
		return 0, &retryErr{err: fmt.Errorf("the server refused to resume at byte %d (HTTP 416)", have)}
	case retryableStatus(resp.StatusCode):
		return 0, &retryErr{err: fmt.Errorf("HTTP %d", resp.StatusCode), after: retryAfter(resp.Header.Get("Retry-After")), status: resp.StatusCode}
	default:
		return 0, d.cfg.statusError(d.ref, "", resp)
	}
	if err := f.Truncate(have); err != nil {
		return 0, err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	// A watchdog cancels the request when no byte arrives for Stall.
	stall := d.cfg.stall()
	timer := time.AfterFunc(stall, func() { cancel(fmt.Errorf("no data for %s", stall)) })
	defer timer.Stop()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			timer.Reset(stall)
			if _, werr := f.Write(buf[:k]); werr != nil {
				if errors.Is(werr, syscall.ENOSPC) {
					return n, newErr(ErrDiskFull, fmt.Sprintf("%s: the disk filled up while downloading into %s (%v); free space or point HF_HUB_CACHE at a larger disk, then run again to resume", d.ref, inc, werr), werr)
				}
				return n, werr
			}
			n += int64(k)
			if prog != nil {
				prog.add(int64(k))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if parent.Err() != nil {
				return n, parent.Err()
			}
			if c := context.Cause(ctx); c != nil {
				rerr = c // the stall watchdog
			}
			return n, &retryErr{err: fmt.Errorf("connection lost at byte %d: %w", have+n, rerr)}
		}
	}
	if size >= 0 && have+n != size {
		return n, &retryErr{err: fmt.Errorf("the transfer ended at byte %d of %d", have+n, size)}
	}
	return n, nil
}

func retryAfter(v string) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, time.Minute)
	}
	return 0
}

var (
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	sha1Re   = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// verifyFile checks a file's size and hash against what the Hub lists: the LFS sha256,
// or for files kept in git their git blob sha1 (sha1 of "blob <size>\0" + content).
// With neither listed, a 64-hex etag is taken as a sha256 and a 40-hex one as a git sha1.
func verifyFile(p string, size int64, sib sibling, etag string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if size >= 0 && fi.Size() != size {
		return fmt.Errorf("%d bytes, the Hub lists %d", fi.Size(), size)
	}
	var h hash.Hash
	var want, what string
	switch {
	case sib.LFS != nil && sha256Re.MatchString(strings.ToLower(sib.LFS.SHA256)):
		h, want, what = sha256.New(), strings.ToLower(sib.LFS.SHA256), "sha256"
	case sib.LFS == nil && sha1Re.MatchString(strings.ToLower(sib.BlobID)):
		h, want, what = sha1.New(), strings.ToLower(sib.BlobID), "git sha1"
	case sha256Re.MatchString(etag):
		h, want, what = sha256.New(), etag, "sha256"
	case sha1Re.MatchString(etag):
		h, want, what = sha1.New(), etag, "git sha1"
	default:
		return nil // nothing to check against but the size
	}
	if what == "git sha1" {
		fmt.Fprintf(h, "blob %d\x00", fi.Size())
	}
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s %s, the Hub lists %s", what, got, want)
	}
	return nil
}

func (c *Config) freeSpace(dir string) (int64, error) {
	if c.FreeSpace != nil {
		return c.FreeSpace(dir)
	}
	return diskFree(dir)
}
