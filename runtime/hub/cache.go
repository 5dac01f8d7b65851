package hub

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// RepoFolder is a model repo's folder name in the cache: models--org--name.
func RepoFolder(repo string) string { return "models--" + strings.ReplaceAll(repo, "/", "--") }

// repoFromFolder is the inverse of RepoFolder ("" when the name is not a model folder).
func repoFromFolder(name string) string {
	rest, ok := strings.CutPrefix(name, "models--")
	if !ok || rest == "" {
		return ""
	}
	return strings.ReplaceAll(rest, "--", "/")
}

func (c *Config) repoDir(repo string) string { return filepath.Join(c.CacheDir, RepoFolder(repo)) }

// cachedCommit resolves a revision to a commit from the cache alone: a commit hash is
// itself, a branch or tag is read from refs/.
func cachedCommit(repoDir, rev string) (string, error) {
	if commitRe.MatchString(rev) {
		return rev, nil
	}
	b, err := readSmall(filepath.Join(repoDir, "refs", filepath.FromSlash(rev)), 4096)
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(string(b))
	if !commitRe.MatchString(commit) {
		return "", fmt.Errorf("refs/%s holds %q, not a commit hash", rev, commit)
	}
	return commit, nil
}

func readSmall(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// snapshotFiles lists a snapshot's files (slash paths -> size), following symlinks;
// dangling links (a blob deleted from under them) are left out.
func snapshotFiles(dir string) (map[string]int64, error) {
	files := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(p) // follows the link to the blob
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)] = fi.Size()
		return nil
	})
	return files, err
}

// Lookup finds ref in the cache without any network request. It returns the path to
// give the loader, or "" and the reason it is not (completely) there.
func Lookup(cfg Config, ref Ref) (string, error) {
	dir := cfg.repoDir(ref.Repo)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%s is not in the cache %s", ref.Repo, cfg.CacheDir)
	}
	commit, err := cachedCommit(dir, ref.Rev())
	if err != nil {
		return "", fmt.Errorf("the cache has %s but not its revision %s (%v)", ref.Repo, ref.Rev(), err)
	}
	snap := filepath.Join(dir, "snapshots", commit)
	files, err := snapshotFiles(snap)
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("the cache has no files of %s at commit %s", ref.Repo, commit)
	}
	p, _, err := inSnapshot(snap, ref, files)
	if err != nil {
		return "", err
	}
	return p, nil
}

// inSnapshot chooses ref's files among a snapshot's and checks they are all there
// (a safetensors index's shards included). It returns the loader's path and the files.
func inSnapshot(snap string, ref Ref, files map[string]int64) (string, []string, error) {
	ch, err := choose(ref, files)
	if err != nil {
		return "", nil, fmt.Errorf("in the cache: %w", err)
	}
	need := ch.files
	if ch.index != "" {
		data, err := readSmall(filepath.Join(snap, ch.index), 64<<20)
		if err != nil {
			return "", nil, err
		}
		shards, err := shardsOf(data)
		if err != nil {
			return "", nil, fmt.Errorf("cached %s of %s: %w", ch.index, ref.Repo, err)
		}
		need = append(append([]string(nil), need...), shards...)
	}
	for _, f := range need {
		if _, ok := files[f]; !ok {
			return "", nil, fmt.Errorf("the cached snapshot %s of %s lacks %s", filepath.Base(snap), ref.Repo, f)
		}
	}
	if ch.main != "" {
		return filepath.Join(snap, filepath.FromSlash(ch.main)), need, nil
	}
	return snap, need, nil
}

// writeRef records that rev pointed at commit (refs/<rev>, no newline, as
// huggingface_hub writes it). Commit hashes need no ref.
func writeRef(repoDir, rev, commit string) error {
	if rev == commit {
		return nil
	}
	p := filepath.Join(repoDir, "refs", filepath.FromSlash(rev))
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeAtomic(p, []byte(commit))
}

func writeAtomic(p string, data []byte) error {
	tmp := p + ".tmp-" + randSuffix()
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func randSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// linkSnapshot points snapshots/<commit>/<file> at blobs/<etag> with a relative symlink
// (../../blobs/<etag>, one more ../ per folder in file), replacing what was there
// atomically. Where symlinks are refused (some Windows set-ups) it copies the blob, as
// huggingface_hub's degraded mode does.
func linkSnapshot(repoDir, commit, file, etag string) error {
	dst := filepath.Join(repoDir, "snapshots", commit, filepath.FromSlash(file))
	blob := filepath.Join(repoDir, "blobs", etag)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return err
	}
	if cur, err := os.Readlink(dst); err == nil && cur == rel {
		return nil
	}
	tmp := dst + ".tmp-" + randSuffix()
	if err := os.Symlink(rel, tmp); err != nil {
		return copyFile(blob, dst)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp-" + randSuffix()
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// CachedModel is one loadable model in the cache, as `vireo list` shows it.
type CachedModel struct {
	Name       string    `json:"name"`     // what to pass as the model argument
	Repo       string    `json:"repo"`     // org/name
	Revision   string    `json:"revision"` // the refs pointing at the commit, or the short commit
	Commit     string    `json:"commit"`
	Format     string    `json:"format"` // gguf, safetensors, llama2c, "other" (nothing Vireo loads), "partial" (only an interrupted download)
	Path       string    `json:"path"`   // what Resolve would return
	Size       int64     `json:"size"`   // bytes of the files the model uses
	Modified   time.Time `json:"modified"`
	Incomplete int64     `json:"incomplete_bytes,omitempty"` // bytes of interrupted downloads in the repo
}

// List returns the cache's models, one entry per loadable model (each GGUF of a repo
// separately), sorted by name.
func List(cacheDir string) ([]CachedModel, error) {
	ents, err := os.ReadDir(cacheDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CachedModel
	for _, e := range ents {
		repo := repoFromFolder(e.Name())
		if repo == "" || !e.IsDir() {
			continue
		}
		out = append(out, listRepo(filepath.Join(cacheDir, e.Name()), repo)...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Modified.After(out[j].Modified)
	})
	return out, nil
}

func listRepo(dir, repo string) (out []CachedModel) {
	refs := map[string][]string{} // commit -> ref names
	refsDir := filepath.Join(dir, "refs")
	filepath.WalkDir(refsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := readSmall(p, 4096)
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(refsDir, p)
		c := strings.TrimSpace(string(b))
		refs[c] = append(refs[c], filepath.ToSlash(rel))
		return nil
	})
	var incomplete int64
	var incMod time.Time
	if blobs, err := os.ReadDir(filepath.Join(dir, "blobs")); err == nil {
		for _, b := range blobs {
			if strings.HasSuffix(b.Name(), ".incomplete") {
				if fi, err := b.Info(); err == nil {
					incomplete += fi.Size()
					if fi.ModTime().After(incMod) {
						incMod = fi.ModTime()
					}
				}
			}
		}
	}
	snaps, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	defer func() {
		if len(out) == 0 && incomplete > 0 {
			// Only an interrupted download: show it, so that it can be resumed or deleted.
			out = append(out, CachedModel{Name: repo, Repo: repo, Revision: "-", Format: "partial", Path: filepath.Join(dir, "blobs"),
				Modified: incMod, Incomplete: incomplete, Size: incomplete})
		}
	}()
	for _, s := range snaps {
		if !s.IsDir() {
			continue
		}
		commit := s.Name()
		snap := filepath.Join(dir, "snapshots", commit)
		files, err := snapshotFiles(snap)
		if err != nil || len(files) == 0 {
			continue
		}
		var mod time.Time
		if fi, err := s.Info(); err == nil {
			mod = fi.ModTime()
		}
		rs := refs[commit]
		sort.Strings(rs)
		rev := strings.Join(rs, ",")
		suffix := ""
		if len(rs) == 0 {
			rev = commit
			if len(rev) > 12 {
				rev = rev[:12]
			}
			suffix = "@" + commit
		} else if !slices.Contains(rs, DefaultRevision) {
			suffix = "@" + rs[0]
		}
		base := CachedModel{Repo: repo, Revision: rev, Commit: commit, Modified: mod, Incomplete: incomplete}
		found := false
		if p, need, err := inSnapshot(snap, Ref{Repo: repo, Revision: commit}, files); err == nil && p == snap {
			m := base
			m.Name, m.Format, m.Path, m.Size = repo+suffix, kindSafetensors, p, sizeOf(files, need)
			out = append(out, m)
			found = true
		}
		quants := map[string]int{}
		cands := ggufCandidates(files)
		for _, f := range cands {
			quants[quantOf(f)]++
		}
		for _, f := range cands {
			if m := splitGGUF.FindStringSubmatch(f); m != nil && m[1] != "00001" {
				continue
			}
			m := base
			q := quantOf(f)
			if q != "" && quants[q] == 1 {
				m.Name = repo + ":" + q + suffix
			} else if def, err := choose(Ref{Repo: repo}, files); err == nil && def.main == f {
				m.Name = repo + suffix // the repo's default choice: the plain name
			} else {
				m.Name = repo + "/" + f + suffix
			}
			m.Format, m.Path, m.Size = kindGGUF, filepath.Join(snap, filepath.FromSlash(f)), files[f]
			out = append(out, m)
			found = true
		}
		for f, n := range files {
			b := path.Base(f)
			if strings.EqualFold(path.Ext(f), ".bin") && b != "tokenizer.bin" && !llama2cTok.MatchString(b) &&
				!strings.HasPrefix(b, "pytorch_model") && b != "training_args.bin" {
				m := base
				m.Name, m.Format, m.Path, m.Size = repo+"/"+f+suffix, kindLlama2C, filepath.Join(snap, filepath.FromSlash(f)), n
				out = append(out, m)
				found = true
			}
		}
		if !found {
			m := base
			m.Name, m.Format, m.Path, m.Size = repo+suffix, "other", snap, sizeOf(files, nil)
			out = append(out, m)
		}
	}
	return out
}

// sizeOf sums the sizes of names (all files when names is nil).
func sizeOf(files map[string]int64, names []string) int64 {
	var n int64
	if names == nil {
		for _, s := range files {
			n += s
		}
		return n
	}
	for _, f := range names {
		n += max(files[f], 0)
	}
	return n
}
