package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
)

// GenRequest is what a Target is asked to generate.
type GenRequest struct {
	Prompt      Prompt
	MaxTokens   int
	MinTokens   int  // 0: none
	IgnoreEOS   bool // keep generating past EOS
	Temperature float64
	Seed        uint64
}

// Usage is what the server says a request consumed (0: not reported).
type Usage struct {
	PromptTokens, CompletionTokens int
}

// Target runs one streamed generation. It calls onTokens as soon as n new tokens
// arrive (a streamed chunk), so the caller can time them, and returns the usage the
// server reported. Errors should be classifiable by ErrorKind.
type Target interface {
	Generate(ctx context.Context, r GenRequest, onTokens func(n int)) (Usage, error)
}

// Error kinds counted in a load run.
const (
	KindRefused   = "connection_refused" // nothing listens at the address
	KindConnect   = "connection_error"   // DNS, reset, TLS, ... before or during the response
	KindTimeout   = "timeout"            // --timeout passed (the server was too slow)
	KindHTTP      = "http_"              // prefix: "http_500", "http_429", ...
	KindStream    = "stream_error"       // an error event or a broken SSE stream
	KindTruncated = "truncated"          // the stream ended without [DONE] / a finish
	KindQueueFull = "queue_full"         // the in-process engine's queue was full
	KindEngine    = "engine_error"       // the in-process engine failed the request
	KindCanceled  = "canceled"           // the run was interrupted
	KindOther     = "other"
)

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Status  int
	Message string // the OpenAI error message when the body has one
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Message) }

// StreamError is a failure reported inside, or detected in, the SSE stream.
type StreamError struct {
	Kind, Message string
}

func (e *StreamError) Error() string { return e.Message }

// ErrorKind classifies err for the error counts of a run.
func ErrorKind(err error) string {
	var he *HTTPError
	var se *StreamError
	var ne net.Error
	var ue *url.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		return fmt.Sprintf("%s%d", KindHTTP, he.Status)
	case errors.As(err, &se):
		return se.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindCanceled
	case errors.Is(err, syscall.ECONNREFUSED):
		return KindRefused
	case errors.As(err, &ne) && ne.Timeout():
		return KindTimeout
	case errors.As(err, &ue), errors.As(err, &ne):
		return KindConnect
	}
	return KindOther
}
