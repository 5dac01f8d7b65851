package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// apiError is an error the client sees, in OpenAI's shape:
//
//	{"error": {"message": "...", "type": "invalid_request_error", "param": "temperature", "code": null}}
//
// Status is the HTTP status; 4xx for the client's mistakes, 5xx only for ours.
type apiError struct {
	Status     int
	Message    string
	Type       string // invalid_request_error, authentication_error, rate_limit_error, ...
	Param      string // the request field at fault, "" for none
	Code       string // a machine-readable code, "" for none
	RetryAfter int    // seconds, for 429
}

func (e *apiError) Error() string { return e.Message }

// Error types, as OpenAI names them where it has a name.
const (
	typeInvalid     = "invalid_request_error"
	typeAuth        = "authentication_error"
	typeNotFound    = "not_found_error"
	typeRateLimit   = "rate_limit_error"
	typeUnavailable = "service_unavailable_error"
	typeTimeout     = "timeout_error"
	typeServer      = "server_error"
)

// badParam is a 400 naming the field at fault.
func badParam(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: param, Message: fmt.Sprintf(format, args...)}
}

// unsupported is a 400 for a field this server does not implement: it is never
// silently ignored.
func unsupported(param, why string) *apiError {
	msg := fmt.Sprintf("%q is not supported by this server", param)
	if why != "" {
		msg += ": " + why
	}
	return &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: param, Code: "unsupported_parameter", Message: msg}
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) body() errorBody {
	d := errorDetail{Message: clipMessage(e.Message), Type: e.Type}
	if e.Param != "" {
		d.Param = &e.Param
	}
	if e.Code != "" {
		d.Code = &e.Code
	}
	return errorBody{Error: d}
}

// writeError answers with e as the whole response.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	b, _ := json.Marshal(e.body())
	w.Write(append(b, '\n'))
}
