// Package hubtest is a local stand-in for the Hugging Face Hub, for tests: it speaks the
// part of the Hub's HTTP API that huggingface_hub (and package hub) use, on loopback.
//
//	GET  /api/models/{org}/{name}/revision/{rev}[?blobs=true]   commit and file list
//	HEAD /{org}/{name}/resolve/{rev}/{file}                     X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size
//	GET  /{org}/{name}/resolve/{rev}/{file}                     the bytes of a small (git) file
//
// LFS files answer the resolve route with a 302 to a second server, the "CDN", which
// serves blobs by sha256 with Range requests. Gated repos answer 401 (no token) or 403
// (a token without access) with X-Error-Code: GatedRepo, unknown repos 401/404 with
// RepoNotFound, as the Hub does. Faults can be injected: a connection cut in the middle
// of a blob, corrupt bytes, 503s. Every request is recorded.
package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// File is one file of a repo.
type File struct {
	Path string
	Data []byte
	LFS  bool // stored in LFS: served from the CDN by sha256, hashed with sha256
}

// Repo is a model repository at one commit.
type Repo struct {
	ID     string            // org/name
	Commit string            // 40 hex; default: derived from ID
	Refs   map[string]string // extra branch/tag -> commit (main -> Commit always)
	Files  []File
	Gated  bool   // files need Server.Token
	OldID  string // a former name that redirects (relative) here, as a renamed repo does
}

// Request is one recorded request.
type Request struct {
	Server string // "hub" or "cdn"
	Method string
	Path   string // escaped path and query
	Range  string
	Auth   string // the Authorization header as sent
}

// Server is the fake Hub and its CDN.
type Server struct {
	Hub, CDN *httptest.Server
	URL      string // the Hub's base URL, for HF_ENDPOINT

	Token         string // accepted for every repo, gated ones included
	NoAccessToken string // a valid token whose account was not granted gated repos

	mu       sync.Mutex
	repos    map[string]*Repo
	old      map[string]string
	blobs    map[string][]byte  // sha256 -> data
	sums     map[dataKey]string // a file's data -> its sha256, computed once
	requests []Request
	cuts     map[string]*cut // sha256 -> fault
	corrupt  map[string]bool
	fail503  int
}

type cut struct {
	at    int64
	times int
	stall bool // hang instead of closing the connection
}

// New starts a fake Hub holding repos; it stops when the test ends.
func New(t interface{ Cleanup(func()) }, repos ...*Repo) *Server {
	s := &Server{repos: map[string]*Repo{}, old: map[string]string{}, blobs: map[string][]byte{},
		cuts: map[string]*cut{}, corrupt: map[string]bool{}, sums: map[dataKey]string{}, Token: "hf_testtoken_AbCdEf0123456789", NoAccessToken: "hf_noaccess_ZyXw9876543210"}
	s.CDN = httptest.NewServer(http.HandlerFunc(s.serveCDN))
	s.Hub = httptest.NewServer(http.HandlerFunc(s.serveHub))
	// The CDN answers on "localhost", the Hub on 127.0.0.1: different hosts, as in
	// production, so a client must not send the token along a redirect.
	s.CDN.URL = strings.Replace(s.CDN.URL, "127.0.0.1", "localhost", 1)
	s.URL = s.Hub.URL
	for _, r := range repos {
		s.Add(r)
	}
	t.Cleanup(func() { s.Hub.Close(); s.CDN.Close() })
	return s
}

// Add publishes a repo.
func (s *Server) Add(r *Repo) {
	sums := map[int]string{}
	for i, f := range r.Files {
		if f.LFS {
			sums[i] = s.sha(f.Data)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Commit == "" {
		r.Commit = SHA1Hex([]byte("commit of " + r.ID))
	}
	s.repos[r.ID] = r
	if r.OldID != "" {
		s.old[r.OldID] = r.ID
	}
	for i, f := range r.Files {
		if f.LFS {
			s.blobs[sums[i]] = f.Data
		}
	}
}

// dataKey identifies a byte slice by where it starts and its length.
type dataKey struct {
	p *byte
	n int
}

// sha is data's sha256, cached so that large files are hashed once.
func (s *Server) sha(data []byte) string {
	if len(data) == 0 {
		return SHA256Hex(data)
	}
	k := dataKey{&data[0], len(data)}
	s.mu.Lock()
	sum, ok := s.sums[k]
	s.mu.Unlock()
	if !ok {
		sum = SHA256Hex(data)
		s.mu.Lock()
		s.sums[k] = sum
		s.mu.Unlock()
	}
	return sum
}

// CutAfter makes the next `times` transfers of the LFS blob of data stop after byte
// `at` of the file (the connection is closed mid-body).
func (s *Server) CutAfter(data []byte, at int64, times int) {
	sum := s.sha(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts[sum] = &cut{at: at, times: times}
}

// StallAfter makes the next `times` transfers of the LFS blob of data send the file up
// to byte `at` and then nothing more, holding the connection open until the client
// gives up.
func (s *Server) StallAfter(data []byte, at int64, times int) {
	sum := s.sha(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cuts[sum] = &cut{at: at, times: times, stall: true}
}

// Corrupt makes the CDN serve the blob of data with one byte flipped.
func (s *Server) Corrupt(data []byte, on bool) {
	sum := s.sha(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.corrupt[sum] = on
}

// Fail503 makes the next n CDN requests answer 503 with Retry-After: 0.
func (s *Server) Fail503(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail503 = n
}

// Requests returns every request so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count is the number of requests so far, to either server.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Reset forgets the recorded requests.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func (s *Server) record(server string, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Server: server, Method: r.Method, Path: r.URL.RequestURI(), Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
}

// SHA256Hex is the hex sha256 of data (an LFS file's etag).
func SHA256Hex(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// SHA1Hex is the hex sha1 of data.
func SHA1Hex(data []byte) string {
	h := sha1.Sum(data)
	return hex.EncodeToString(h[:])
}

// GitBlobSHA1 is git's object id of a file: sha1("blob <size>\0" + data), a git
// file's etag on the Hub.
func GitBlobSHA1(data []byte) string {
	return SHA1Hex(append([]byte(fmt.Sprintf("blob %d\x00", len(data))), data...))
}

// lfsPointer is the text git stores for an LFS file.
func lfsPointer(sum string, size int) []byte {
	return []byte(fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n", sum, size))
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// auth sorts a request's token: "" none, "ok" full access, "noaccess", "invalid".
func (s *Server) auth(r *http.Request) string {
	h := r.Header.Get("Authorization")
	switch h {
	case "":
		return ""
	case "Bearer " + s.Token:
		return "ok"
	case "Bearer " + s.NoAccessToken:
		return "noaccess"
	}
	return "invalid"
}

func (s *Server) serveHub(w http.ResponseWriter, r *http.Request) {
	s.record("hub", r)
	p := r.URL.EscapedPath()
	auth := s.auth(r)
	if auth == "invalid" {
		hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return
	}
	if rest, ok := strings.CutPrefix(p, "/api/models/"); ok && r.Method == http.MethodGet {
		segs := strings.SplitN(rest, "/", 4) // org, name, "revision", rev
		if len(segs) != 4 || segs[2] != "revision" {
			hubError(w, http.StatusNotFound, "", "Sorry, we can't find the page you are looking for.")
			return
		}
		id := unescape(segs[0]) + "/" + unescape(segs[1])
		if newID, ok := s.renamed(id); ok {
			w.Header().Set("Location", "/api/models/"+newID+"/revision/"+segs[3]+"?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusTemporaryRedirect)
			return
		}
		repo := s.repo(id)
		if repo == nil {
			s.notFound(w, auth)
			return
		}
		commit, ok := s.commitOf(repo, unescape(segs[3]))
		if !ok {
			hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+unescape(segs[3]))
			return
		}
		blobs := r.URL.Query().Get("blobs") == "true"
		var sibs []map[string]any
		for _, f := range repo.Files {
			sib := map[string]any{"rfilename": f.Path}
			if blobs {
				if f.LFS {
					sum := s.sha(f.Data)
					ptr := lfsPointer(sum, len(f.Data))
					sib["size"] = len(f.Data)
					sib["blobId"] = GitBlobSHA1(ptr)
					sib["lfs"] = map[string]any{"sha256": sum, "size": len(f.Data), "pointerSize": len(ptr)}
				} else {
					sib["size"] = len(f.Data)
					sib["blobId"] = GitBlobSHA1(f.Data)
				}
			}
			sibs = append(sibs, sib)
		}
		gated := any(false)
		if repo.Gated {
			gated = "manual"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": repo.ID, "modelId": repo.ID, "sha": commit, "private": false,
			"gated": gated, "siblings": sibs})
		return
	}
	// /{org}/{name}/resolve/{rev}/{path...}
	segs := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 5)
	if len(segs) != 5 || segs[2] != "resolve" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		hubError(w, http.StatusNotFound, "", "Sorry, we can't find the page you are looking for.")
		return
	}
	id := unescape(segs[0]) + "/" + unescape(segs[1])
	if newID, ok := s.renamed(id); ok {
		w.Header().Set("Location", "/"+newID+"/resolve/"+segs[3]+"/"+segs[4])
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	repo := s.repo(id)
	if repo == nil {
		s.notFound(w, auth)
		return
	}
	commit, ok := s.commitOf(repo, unescape(segs[3]))
	if !ok {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+unescape(segs[3]))
		return
	}
	if repo.Gated && auth != "ok" {
		if auth == "" {
			hubError(w, http.StatusUnauthorized, "GatedRepo", fmt.Sprintf("Access to model %s is restricted. You must have access to it and be authenticated to access it. Please log in.", repo.ID))
		} else {
			hubError(w, http.StatusForbidden, "GatedRepo", fmt.Sprintf("Access to model %s is restricted and you are not in the authorized list. Visit %s/%s to ask for access.", repo.ID, s.URL, repo.ID))
		}
		return
	}
	file := unescape(segs[4])
	var f *File
	for i := range repo.Files {
		if repo.Files[i].Path == file {
			f = &repo.Files[i]
		}
	}
	if f == nil {
		hubError(w, http.StatusNotFound, "EntryNotFound", fmt.Sprintf("%s does not exist on \"%s\"", file, unescape(segs[3])))
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if f.LFS {
		sum := s.sha(f.Data)
		ptr := lfsPointer(sum, len(f.Data))
		w.Header().Set("ETag", `"`+GitBlobSHA1(ptr)+`"`)
		w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.Data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(ptr)))
		w.Header().Set("Location", s.CDN.URL+"/blobs/"+sum+"?X-Amz-Expires=3600&X-Amz-Signature=fake")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+GitBlobSHA1(f.Data)+`"`)
	serveBytes(w, r, f.Data, nil)
}

func (s *Server) notFound(w http.ResponseWriter, auth string) {
	// The Hub answers 401 to an anonymous request for a repo it will not show (missing
	// or private), and 404 to an authenticated one.
	if auth == "" {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
		return
	}
	hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.record("cdn", r)
	s.mu.Lock()
	if s.fail503 > 0 {
		s.fail503--
		s.mu.Unlock()
		w.Header().Set("Retry-After", "0")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	sum := strings.TrimPrefix(r.URL.Path, "/blobs/")
	data, ok := s.blobs[sum]
	var c *cut
	if k := s.cuts[sum]; k != nil && k.times > 0 && r.Method == http.MethodGet {
		k.times--
		c = k
	}
	if s.corrupt[sum] && ok {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	s.mu.Unlock()
	if !ok {
		http.Error(w, "NoSuchKey", http.StatusNotFound)
		return
	}
	serveBytes(w, r, data, c)
}

// serveBytes answers GET/HEAD with Range support (bytes=N- and bytes=N-M); a cut
// closes the connection once byte c.at has been sent.
func serveBytes(w http.ResponseWriter, r *http.Request, data []byte, c *cut) {
	start, end := int64(0), int64(len(data))
	status := http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		spec, ok := strings.CutPrefix(rg, "bytes=")
		a, b, _ := strings.Cut(spec, "-")
		s, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil || s < 0 {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if s >= int64(len(data)) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		if b != "" {
			e, err := strconv.ParseInt(b, 10, 64)
			if err != nil || e < s {
				http.Error(w, "bad range", http.StatusBadRequest)
				return
			}
			end = min(e+1, int64(len(data)))
		}
		start, status = s, http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(data)))
	}
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.FormatInt(end-start, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if c != nil && c.at > start && c.at < end {
		w.Write(data[start:c.at])
		w.(http.Flusher).Flush()
		if c.stall {
			<-r.Context().Done()
		}
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	w.Write(data[start:end])
}

func (s *Server) repo(id string) *Repo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.repos[id]
}

func (s *Server) renamed(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.old[id]
	return n, ok
}

func (s *Server) commitOf(r *Repo, rev string) (string, bool) {
	switch {
	case rev == "main" || rev == r.Commit:
		return r.Commit, true
	case r.Refs[rev] != "":
		return r.Refs[rev], true
	}
	return "", false
}

func unescape(s string) string {
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}
