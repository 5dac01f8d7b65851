package hub

import "errors"

// Error kinds, for errors.Is. Every error this package returns names the repo, the
// cause and the fix in its message; these let callers and tests tell them apart.
var (
	ErrRepoNotFound     = errors.New("repository not found")
	ErrRevisionNotFound = errors.New("revision not found")
	ErrFileNotFound     = errors.New("file not found in the repository")
	ErrGated            = errors.New("gated repository")
	ErrUnauthorized     = errors.New("the token was refused")
	ErrNoQuant          = errors.New("no GGUF file matches the quantization")
	ErrNoModel          = errors.New("no model files Vireo can load")
	ErrNoNetwork        = errors.New("the Hub cannot be reached")
	ErrOffline          = errors.New("offline mode and not in the cache")
	ErrDiskFull         = errors.New("not enough disk space")
	ErrCorrupt          = errors.New("corrupted download")
	ErrServer           = errors.New("the Hub answered with an error")
)

// hubError carries a kind for errors.Is and the full message.
type hubError struct {
	kind error
	msg  string
	err  error // the underlying error, if any
}

func (e *hubError) Error() string { return e.msg }

func (e *hubError) Is(target error) bool { return target == e.kind }

func (e *hubError) Unwrap() error { return e.err }

func newErr(kind error, msg string, cause error) error {
	return &hubError{kind: kind, msg: msg, err: cause}
}
