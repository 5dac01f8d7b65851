package profiling

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Handler limits.
const (
	// DefaultSeconds is a profile's window when the request names none (as
	// /debug/pprof/profile's).
	DefaultSeconds = 30
	// MaxSeconds bounds a window.
	MaxSeconds = 3600
)

// Handler serves an op profile of a window recorded on request:
//
//	GET /debug/vireo/profile?seconds=N[&format=pprof|text|json][&top=K]
//
// It records for N seconds (default 30, at most 3600; fractions allowed) or until the
// client goes away, then answers the window as a gzipped pprof profile (the default,
// what `go tool pprof` fetches), as the text summary (the top K ops, default 20, and
// each series) or as JSON (the snapshot and its summary). One window at a time: a
// request while one is recorded gets 409. A client that goes away before the window
// ends gets nothing (the window is closed). Serve it beside /debug/pprof, on a listener
// that only operators reach: it has no authentication.
func Handler(p *Profiler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httpError(w, http.StatusMethodNotAllowed, "use GET")
			return
		}
		if p == nil {
			httpError(w, http.StatusNotFound, "no op profiler: this process runs no engine with profiling")
			return
		}
		q := r.URL.Query()
		secs := float64(DefaultSeconds)
		if s := q.Get("seconds"); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || !(v > 0 && v <= MaxSeconds) {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("seconds %.40q: want a number in (0, %d]", s, MaxSeconds))
				return
			}
			secs = v
		}
		format := q.Get("format")
		switch format {
		case "", "pprof", "proto", "text", "json":
		default:
			httpError(w, http.StatusBadRequest, fmt.Sprintf("format %.40q: want pprof, text or json", format))
			return
		}
		top := 20
		if s := q.Get("top"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 || v > 1000 {
				httpError(w, http.StatusBadRequest, fmt.Sprintf("top %.40q: want an integer in [0, 1000] (0: all)", s))
				return
			}
			top = v
		}
		d := time.Duration(secs * float64(time.Second))
		if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.WriteTimeout > 0 && d >= srv.WriteTimeout {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("seconds %g: the listener's write timeout is %s", secs, srv.WriteTimeout))
			return
		}
		snap, err := p.Collect(d, r.Context().Done())
		if errors.Is(err, ErrBusy) {
			httpError(w, http.StatusConflict, err.Error())
			return
		}
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if r.Context().Err() != nil {
			return // the client went away
		}
		switch format {
		case "text":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			snap.WriteText(w, top)
		case "json":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(struct {
				*Snapshot
				Summary Summary `json:"summary"`
			}{snap, snap.Summary()})
		default:
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Disposition", `attachment; filename="vireo-ops.pb.gz"`)
			snap.Write(w)
		}
	})
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
