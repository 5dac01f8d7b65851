package hub

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// DefaultRevision is the branch a repo id without @revision names.
const DefaultRevision = "main"

// Ref is a parsed model name: a repo and what to take from it.
type Ref struct {
	Repo     string // "org/name"
	Revision string // branch, tag or commit; "" means main
	Quant    string // GGUF quantization tag (org/name:Q4_K_M), or ""
	File     string // one file of the repo (org/name/dir/file.gguf), or ""
}

// Rev returns the revision, main when none was given.
func (r Ref) Rev() string {
	if r.Revision == "" {
		return DefaultRevision
	}
	return r.Revision
}

// String renders the ref in the syntax ParseRef reads.
func (r Ref) String() string {
	s := r.Repo
	if r.File != "" {
		s += "/" + r.File
	}
	if r.Quant != "" {
		s += ":" + r.Quant
	}
	if r.Revision != "" {
		s += "@" + r.Revision
	}
	return s
}

// repoPart follows huggingface_hub's validate_repo_id: letters, digits, '-', '_' and
// '.', not starting or ending with '-' or '.', and no '--' or '..' anywhere.
var repoPart = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$`)

// quantTag is what may follow ':': Q4_K_M, IQ4_XS, Q8_0, F16, BF16, UD-Q4_K_XL…
var quantTag = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// revisionRe admits git branch and tag names (refs/pr/1 included) and commit hashes.
var revisionRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./+-]{0,254}$`)

// commitRe is a full commit hash.
var commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ParseRef reads a repo id: org/name, then optionally /path/to/file, :QUANT and
// @revision (in either order). It does not look at the disk.
func ParseRef(s string) (Ref, error) {
	orig := s
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%q is not a Hub model name (%s); the forms are org/name, org/name@revision, org/name:QUANT and org/name/file.gguf", orig, why)
	}
	if s == "" {
		return bad("empty")
	}
	var r Ref
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s, r.Revision = s[:i], s[i+1:]
		// org/name@rev:QUANT: git refs cannot contain ':', so a colon after '@' starts the quant.
		if j := strings.IndexByte(r.Revision, ':'); j >= 0 {
			r.Revision, r.Quant = r.Revision[:j], r.Revision[j+1:]
			if r.Quant == "" {
				return bad("empty quantization after ':'")
			}
		}
		if r.Revision == "" {
			return bad("empty revision after '@'")
		}
		if !revisionRe.MatchString(r.Revision) || strings.Contains(r.Revision, "..") || strings.HasSuffix(r.Revision, "/") || strings.Contains(r.Revision, "//") {
			return bad(fmt.Sprintf("revision %q is not a branch, tag or commit", r.Revision))
		}
	}
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if r.Quant != "" {
			return bad("two quantizations")
		}
		s, r.Quant = s[:i], s[i+1:]
		if r.Quant == "" {
			return bad("empty quantization after ':'")
		}
	}
	if r.Quant != "" && !quantTag.MatchString(r.Quant) {
		return bad(fmt.Sprintf("quantization %q", r.Quant))
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 {
		return bad("a Hub repo id has an owner: org/name")
	}
	for _, p := range parts[:2] {
		if len(p) > 96 || !repoPart.MatchString(p) || strings.Contains(p, "--") || strings.Contains(p, "..") {
			return bad(fmt.Sprintf("%q is not a valid owner or repo name", p))
		}
	}
	r.Repo = parts[0] + "/" + parts[1]
	if len(parts) > 2 {
		r.File = strings.Join(parts[2:], "/")
		if err := checkRepoPath(r.File); err != nil {
			return bad(err.Error())
		}
		if ext := strings.ToLower(path.Ext(r.File)); ext != ".gguf" && ext != ".bin" {
			return bad(fmt.Sprintf("a file named in the repo must be a .gguf or a llama2.c .bin, not %q", r.File))
		}
		if r.Quant != "" {
			return bad("give either a file or a :QUANT, not both")
		}
	}
	return r, nil
}

// checkRepoPath refuses paths that would leave a snapshot folder: absolute, with '..',
// empty or '.' segments, backslashes or control characters.
func checkRepoPath(p string) error {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") {
		return fmt.Errorf("file path %q is not a relative repo path", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("file path %q has an empty, '.' or '..' segment", p)
		}
		for _, c := range seg {
			if c < 0x20 || c == 0x7f {
				return fmt.Errorf("file path %q has a control character", p)
			}
		}
	}
	return nil
}

// looksLikePath reports whether a missing model argument was meant as a local path
// rather than a repo id: it starts like a path, or it is owner/file with a model-file
// extension (models/x.gguf: a mistyped path, not a repo called x.gguf).
func looksLikePath(s string) bool {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "~") ||
		s == "." || s == ".." || strings.Contains(s, "\\") {
		return true
	}
	if strings.Count(s, "/") == 1 && !strings.ContainsAny(s, ":@") {
		switch strings.ToLower(path.Ext(s)) {
		case ".gguf", ".bin", ".safetensors", ".json", ".pth", ".pt":
			return true
		}
	}
	return false
}
