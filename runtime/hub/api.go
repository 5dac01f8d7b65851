package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// userAgent identifies Vireo to the Hub.
const userAgent = "vireo (Go; huggingface_hub-compatible)"

// modelInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true used here.
type modelInfo struct {
	ID       string    `json:"id"`
	SHA      string    `json:"sha"`
	Siblings []sibling `json:"siblings"`
}

type sibling struct {
	RFilename string `json:"rfilename"`
	Size      *int64 `json:"size"`
	BlobID    string `json:"blobId"`
	LFS       *struct {
		SHA256      string `json:"sha256"`
		Size        int64  `json:"size"`
		PointerSize int64  `json:"pointerSize"`
	} `json:"lfs"`
}

// size is the file's real size (the LFS object's, not the pointer's), -1 when unknown.
func (s sibling) size() int64 {
	if s.LFS != nil && s.LFS.Size > 0 {
		return s.LFS.Size
	}
	if s.Size != nil {
		return *s.Size
	}
	return -1
}

// etag is the name the file's blob gets in the cache, as the resolve endpoint reports
// it: the sha256 for LFS files, the git blob sha1 otherwise ("" when not listed).
func (s sibling) etag() string {
	if s.LFS != nil && s.LFS.SHA256 != "" {
		return strings.ToLower(s.LFS.SHA256)
	}
	return strings.ToLower(s.BlobID)
}

// escapePath escapes each segment of a slash path for a URL.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (c *Config) infoURL(repo, rev string) string {
	return fmt.Sprintf("%s/api/models/%s/revision/%s?blobs=true", c.endpoint(), escapePath(repo), url.PathEscape(rev))
}

func (c *Config) resolveURL(repo, rev, file string) string {
	return fmt.Sprintf("%s/%s/resolve/%s/%s", c.endpoint(), escapePath(repo), url.PathEscape(rev), escapePath(file))
}

// sameHost reports whether u is on the endpoint's host: only those requests carry the
// token (a CDN a download redirects to never sees it).
func (c *Config) sameHost(u *url.URL) bool {
	e, err := url.Parse(c.endpoint())
	return err == nil && strings.EqualFold(e.Host, u.Host) && e.Scheme == u.Scheme
}

func (c *Config) newRequest(ctx context.Context, method, rawURL string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if c.Token != "" && c.sameHost(req.URL) {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// fetchInfo asks the Hub for the repo's commit at rev and its files with sizes and hashes.
func (c *Config) fetchInfo(ctx context.Context, ref Ref) (*modelInfo, error) {
	req, err := c.newRequest(ctx, http.MethodGet, c.infoURL(ref.Repo, ref.Rev()))
	if err != nil {
		return nil, err
	}
	resp, err := c.client().Do(req)
	if err != nil {
		return nil, c.netError(ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(ref, "", resp)
	}
	var info modelInfo
	body := io.LimitReader(resp.Body, 64<<20)
	if err := json.NewDecoder(body).Decode(&info); err != nil {
		return nil, newErr(ErrServer, fmt.Sprintf("%s: the Hub's file list (%s) is not valid JSON: %v", ref.Repo, req.URL.Path, err), err)
	}
	if !commitRe.MatchString(info.SHA) {
		return nil, newErr(ErrServer, fmt.Sprintf("%s: the Hub's answer for revision %s has no commit hash (sha %q)", ref.Repo, ref.Rev(), info.SHA), nil)
	}
	return &info, nil
}

// fileMeta is what a HEAD on the resolve endpoint says about one file.
type fileMeta struct {
	commit   string // X-Repo-Commit
	etag     string // X-Linked-Etag, else ETag, normalized
	size     int64  // X-Linked-Size, else Content-Length; -1 when unknown
	location string // where to GET the bytes (a CDN for LFS files)
}

// etagRe keeps etags usable as file names.
var etagRe = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// normalizeETag strips a weak prefix and the quotes (W/"abc" -> abc).
func normalizeETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// headFile gets a file's metadata without following redirects to other hosts (the
// Hub's own answer carries X-Linked-Etag); relative redirects (a renamed repo) are
// followed, as huggingface_hub does.
func (c *Config) headFile(ctx context.Context, ref Ref, commit, file string) (*fileMeta, error) {
	hc := *c.client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := c.resolveURL(ref.Repo, commit, file)
	for hop := 0; ; hop++ {
		req, err := c.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := hc.Do(req)
		if err != nil {
			return nil, c.netError(ref, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return nil, c.statusError(ref, file, resp)
		}
		loc := resp.Header.Get("Location")
		redirect := resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != ""
		var target *url.URL
		if redirect {
			if target, err = req.URL.Parse(loc); err != nil {
				return nil, newErr(ErrServer, fmt.Sprintf("%s: %s redirects to a bad address: %v", ref.Repo, file, err), err)
			}
			if target.Host == req.URL.Host && !strings.HasPrefix(loc, "http") {
				if hop >= 5 {
					return nil, newErr(ErrServer, fmt.Sprintf("%s: %s: too many redirects within the Hub", ref.Repo, file), nil)
				}
				u = target.String()
				continue
			}
		}
		m := &fileMeta{commit: resp.Header.Get("X-Repo-Commit"), size: -1, location: req.URL.String()}
		m.etag = normalizeETag(resp.Header.Get("X-Linked-Etag"))
		if m.etag == "" {
			m.etag = normalizeETag(resp.Header.Get("ETag"))
		}
		for _, h := range []string{"X-Linked-Size", "Content-Length"} {
			if v := resp.Header.Get(h); v != "" {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
					m.size = n
					break
				}
			}
		}
		if redirect {
			m.location = target.String()
		}
		if m.etag == "" {
			return nil, newErr(ErrServer, fmt.Sprintf("%s: the Hub gave no ETag for %s, so its blob cannot be named (is HF_ENDPOINT=%s a Hub or a mirror of one?)", ref.Repo, file, c.endpoint()), nil)
		}
		if !etagRe.MatchString(m.etag) {
			return nil, newErr(ErrServer, fmt.Sprintf("%s: the Hub's ETag for %s (%q) is not a hash", ref.Repo, file, m.etag), nil)
		}
		return m, nil
	}
}

// netError explains a request that got no answer.
func (c *Config) netError(ref Ref, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var ne net.Error
	var oe *net.OpError
	var de *net.DNSError
	if errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ne) {
		return newErr(ErrNoNetwork, fmt.Sprintf("cannot reach the Hub at %s for %s: %v. Check the network and any proxy (HTTPS_PROXY), point HF_ENDPOINT at a reachable mirror, or run offline (--offline or HF_HUB_OFFLINE=1) with a model already in the cache %s",
			c.endpoint(), ref.Repo, err, c.CacheDir), err)
	}
	return newErr(ErrNoNetwork, fmt.Sprintf("request to the Hub at %s for %s failed: %v", c.endpoint(), ref.Repo, err), err)
}

// statusError turns an error status into a message with the cause and the fix,
// following the Hub's X-Error-Code header as huggingface_hub's hf_raise_for_status does.
func (c *Config) statusError(ref Ref, file string, resp *http.Response) error {
	code := resp.Header.Get("X-Error-Code")
	msg := cleanMessage(resp.Header.Get("X-Error-Message"))
	if msg == "" {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		msg = cleanMessage(bodyMessage(b))
	}
	st := resp.StatusCode
	detail := fmt.Sprintf("HTTP %d", st)
	if code != "" {
		detail += " " + code
	}
	if msg != "" {
		detail += ": " + msg
	}
	tokenNote := "no token was sent"
	if c.Token != "" {
		tokenNote = "a token from " + c.TokenSource + " was sent"
	}
	page := c.endpoint() + "/" + ref.Repo
	switch {
	case code == "GatedRepo" && c.Token == "":
		return newErr(ErrGated, fmt.Sprintf("%s is a gated model and no token was sent (%s). Accept its terms at %s while logged in, then give Vireo a token of that account: set HF_TOKEN or run `huggingface-cli login` (it writes %s)",
			ref.Repo, detail, page, tokenFilePath()), nil)
	case code == "GatedRepo":
		return newErr(ErrGated, fmt.Sprintf("%s is a gated model and the token from %s has no access to it (%s). Request access at %s and wait for approval, or use a token of an account that has it",
			ref.Repo, c.TokenSource, detail, page), nil)
	case st == http.StatusUnauthorized && msg == "Invalid credentials in Authorization header":
		return newErr(ErrUnauthorized, fmt.Sprintf("the Hub refused the token from %s (%s). Create a new token at %s/settings/tokens and set HF_TOKEN", c.TokenSource, detail, c.endpoint()), nil)
	case code == "RevisionNotFound":
		return newErr(ErrRevisionNotFound, fmt.Sprintf("%s has no revision %q (%s). Use a branch, tag or commit of the repo (default %s)", ref.Repo, ref.Rev(), detail, DefaultRevision), nil)
	case code == "EntryNotFound" || (file != "" && st == http.StatusNotFound && code != "RepoNotFound"):
		return newErr(ErrFileNotFound, fmt.Sprintf("%s has no file %s at %s (%s)", ref.Repo, file, ref.Rev(), detail), nil)
	case code == "RepoNotFound" || st == http.StatusNotFound || st == http.StatusUnauthorized:
		// The Hub answers 401 for a repo that does not exist as well as for a private one.
		return newErr(ErrRepoNotFound, fmt.Sprintf("%s: no such model repository at %s (%s; %s). Check the name (org/name, as on %s/models); a private repo also needs HF_TOKEN set to a token with access",
			ref.Repo, c.endpoint(), detail, tokenNote, c.endpoint()), nil)
	case st == http.StatusForbidden:
		return newErr(ErrUnauthorized, fmt.Sprintf("the Hub denied access to %s (%s; %s). Check that the token's account may read this repo", ref.Repo, detail, tokenNote), nil)
	}
	return newErr(ErrServer, fmt.Sprintf("the Hub at %s answered %s for %s %s", c.endpoint(), detail, ref.Repo, file), nil)
}

// bodyMessage pulls {"error": "..."} out of a JSON error body, else the text.
func bodyMessage(b []byte) string {
	var v struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &v) == nil {
		return cmp.Or(v.Error, v.Message)
	}
	return string(b)
}

// cleanMessage keeps a server's message printable and short.
func cleanMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// tokenFilePath is where `huggingface-cli login` keeps the token: $HF_TOKEN_PATH, else
// <HF home>/token.
func tokenFilePath() string {
	return cmp.Or(expandHome(os.Getenv("HF_TOKEN_PATH")), filepath.Join(HomeFromEnv(), "token"))
}

// retryableStatus reports statuses worth another try.
func retryableStatus(st int) bool {
	return st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500
}
