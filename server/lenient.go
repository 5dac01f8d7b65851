package server

import (
	"regexp"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Unknown request fields are ignored, as vLLM ignores them, and logged in a way no
// client can turn into a flood: each request's at debug level, and a warning the first
// time a field name is seen, at most warnBurst warnings at once and one more per
// warnEvery after that, for at most maxWarnedNames names in the server's life. Names
// are clipped to maxIgnoredName bytes and array indexes folded ("messages[3].x" is
// "messages[].x"), so a request cannot make a name unique by its index.
const (
	warnBurst      = 10
	warnEvery      = time.Minute
	maxWarnedNames = 1024
)

type fieldLog struct {
	log *zap.Logger
	now func() time.Time // tests replace it

	mu     sync.Mutex
	warned map[string]struct{}
	tokens float64
	last   time.Time
	full   bool // maxWarnedNames reached (and said)
}

func newFieldLog(log *zap.Logger) *fieldLog {
	return &fieldLog{log: log, now: time.Now, warned: map[string]struct{}{}, tokens: warnBurst}
}

var arrayIndex = regexp.MustCompile(`\[[0-9]+\]`)

// note logs one request's ignored fields.
func (f *fieldLog) note(id, path string, ig *ignored) {
	if len(ig.names) == 0 {
		return
	}
	if ce := f.log.Check(zap.DebugLevel, "request fields ignored"); ce != nil {
		ce.Write(zap.String("id", id), zap.String("path", path), zap.Strings("fields", ig.names), zap.Int("more", ig.more))
	}
	for _, name := range ig.names {
		key := arrayIndex.ReplaceAllString(name, "[]")
		if f.admit(key) {
			f.log.Warn("ignoring a request field this server does not know (as vLLM does); further requests with it are logged at debug level only",
				zap.String("field", key), zap.String("id", id), zap.String("path", path))
		}
	}
}

// admit says whether key gets its one warning now.
func (f *fieldLog) admit(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.warned[key]; ok || f.full {
		return false
	}
	if len(f.warned) >= maxWarnedNames {
		f.full = true
		f.log.Warn("unknown request fields: this many names have been warned about; from now on they are logged at debug level only", zap.Int("names", len(f.warned)))
		return false
	}
	now := f.now()
	if !f.last.IsZero() {
		f.tokens = min(warnBurst, f.tokens+float64(now.Sub(f.last))/float64(warnEvery))
	}
	f.last = now
	if f.tokens < 1 {
		return false // not marked: its warning may come once the rate allows
	}
	f.tokens--
	f.warned[key] = struct{}{}
	return true
}
