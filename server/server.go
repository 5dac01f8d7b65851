package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// Config is what the server needs beyond the engine. Zero fields take the defaults
// noted.
type Config struct {
	// ModelNames are the names clients may put in "model"; the first is the one
	// responses report and metrics label. Required.
	ModelNames []string
	// ModelAliases are more names accepted in "model", not listed by /v1/models
	// (responses report ModelNames[0]): the path a model was given by, which vLLM
	// would serve it under.
	ModelAliases []string
	// APIKeys, when any are set, are required as "Authorization: Bearer <key>" on
	// /v1/*. /health, /ready and /metrics stay open.
	APIKeys []string
	// MaxBodyBytes caps a request body (default 8 MiB); larger bodies get 413.
	MaxBodyBytes int64
	// RequestTimeout bounds a generation request from arrival to its last token,
	// queueing included (0: none). A request that runs out gets 504 (or an error
	// event on a stream).
	RequestTimeout time.Duration
	// HTTP server timeouts (NewHTTPServer). WriteTimeout bounds each write: streams
	// extend it per chunk, so a long stream is never cut by it.
	ReadHeaderTimeout time.Duration // default 10s
	ReadTimeout       time.Duration // whole request, body included (default 60s)
	WriteTimeout      time.Duration // each response write (default 60s)
	IdleTimeout       time.Duration // keep-alive (default 120s)
	// RetryAfter is the Retry-After a 429 (queue full) carries (default 1s).
	RetryAfter time.Duration
	// ChatPrompt renders a chat, generation prompt included, with the model's chat
	// template and encodes it, with the tools the request offers, stopping once past
	// limit tokens when limit > 0 (then it returns more than limit ids) so that an
	// over-long chat costs no more than the context (llm.Loaded.ChatPromptTools). Nil:
	// the plain "role: content" format (chattemplate.RenderChatTools with no
	// template).
	ChatPrompt func(msgs []chattemplate.Message, tools []chattemplate.Tool, limit int) ([]int32, error)
	// ChatEncode is ChatPrompt with the generation prompt optional, for /tokenize
	// (llm.Loaded.ChatPromptTools). Nil: ChatPrompt when the generation prompt is asked
	// for, else the plain format.
	ChatEncode func(msgs []chattemplate.Message, tools []chattemplate.Tool, addGenerationPrompt bool, limit int) ([]int32, error)
	// Version is what GET /version reports (default "unknown").
	Version string

	// What a request may cost (limits.go). Zero fields take the defaults.
	//
	// MaxConcurrentParsing bounds the requests whose bodies are parsed and prompts
	// tokenized at once (default 8); as many more wait for a turn, and beyond that
	// requests get 429.
	MaxConcurrentParsing int
	// MaxResponseTokens bounds what one request's response may hold: n × max tokens,
	// times 2 + top_logprobs when logprobs are asked for (default 262,144). Larger
	// requests get 400 naming the limit.
	MaxResponseTokens int64
	// MaxInflightResponseTokens bounds the sum of MaxResponseTokens' measure over the
	// requests in flight (default 4,194,304); a request that would go over gets 429
	// with Retry-After.
	MaxInflightResponseTokens int64
	// MaxLogprobs bounds logprobs (completions) and top_logprobs (chat) (default 20,
	// the engine's bound, which it may not exceed).
	MaxLogprobs int

	// Cache is what vllm:cache_config_info says beside the engine's own numbers.
	Cache CacheInfo

	// LoRA adapters are the engine's (engine.Options.LoRA): a request's "model" may name
	// one, /v1/models lists them with their parent, and vllm:lora_requests_info counts
	// them. AllowRuntimeLoRA turns on POST /v1/load_lora_adapter and
	// /v1/unload_lora_adapter (vLLM's VLLM_ALLOW_RUNTIME_LORA_UPDATING), behind the API
	// key, loading only from inside LoRADir: a lora_path outside it, through ".." or a
	// symbolic link, is refused.
	AllowRuntimeLoRA bool
	LoRADir          string
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = time.Second
	}
	if c.MaxConcurrentParsing <= 0 {
		c.MaxConcurrentParsing = DefaultMaxConcurrentParsing
	}
	if c.MaxResponseTokens <= 0 {
		c.MaxResponseTokens = DefaultMaxResponseTokens
	}
	if c.MaxInflightResponseTokens <= 0 {
		c.MaxInflightResponseTokens = max(DefaultMaxInflightResponseTokens, c.MaxResponseTokens)
	}
	if c.MaxLogprobs <= 0 {
		c.MaxLogprobs = DefaultMaxLogprobs
	}
}

// Why a request's context was cancelled by the server (context.Cause).
var (
	errShuttingDown = errors.New("the server is shutting down")
	errTimedOut     = errors.New("request timeout")
	errClientGone   = errors.New("client went away")
)

// Server is the OpenAI-compatible HTTP front of one engine. It is an http.Handler;
// Drain stops intake and waits for in-flight requests.
type Server struct {
	cfg     Config
	eng     *engine.Engine
	log     *zap.Logger
	dec     decoder
	metrics *metrics
	promh   http.Handler
	keys    [][32]byte // SHA-256 of each API key
	created int64
	parsing *gate      // requests parsed and tokenized at once
	respBud *budget    // response tokens of the requests in flight
	loraMu  sync.Mutex // one runtime adapter load at a time
	fields  *fieldLog

	mu       sync.Mutex
	calls    map[*call]struct{}
	draining bool
	idle     chan struct{} // closed when draining and no call is left
	idleShut bool
}

// call is one in-flight request, cancellable by Drain.
type call struct {
	cancel context.CancelCauseFunc
	rc     *http.ResponseController // to unblock its reads and writes on abort
}

// New builds a server on a running engine and its tokenizer.
func New(cfg Config, eng *engine.Engine, tok *tokenizer.Tokenizer, log *zap.Logger) (*Server, error) {
	if len(cfg.ModelNames) == 0 || cfg.ModelNames[0] == "" {
		return nil, errors.New("server: Config.ModelNames needs at least one name")
	}
	if eng == nil || tok == nil {
		return nil, errors.New("server: nil engine or tokenizer")
	}
	if log == nil {
		log = zap.NewNop()
	}
	cfg.setDefaults()
	switch {
	case cfg.MaxLogprobs > engine.MaxTopLogprobs:
		return nil, fmt.Errorf("server: MaxLogprobs %d is above the engine's bound of %d", cfg.MaxLogprobs, engine.MaxTopLogprobs)
	case cfg.MaxInflightResponseTokens < cfg.MaxResponseTokens:
		return nil, fmt.Errorf("server: MaxInflightResponseTokens %d is below MaxResponseTokens %d: the largest request allowed could never run", cfg.MaxInflightResponseTokens, cfg.MaxResponseTokens)
	case cfg.AllowRuntimeLoRA && eng.Options().LoRA.MaxLoRAs == 0:
		return nil, errors.New("server: runtime LoRA updating needs an engine with LoRA enabled")
	case cfg.AllowRuntimeLoRA && cfg.LoRADir == "":
		return nil, errors.New("server: runtime LoRA updating needs LoRADir, the directory adapters are loaded from")
	}
	if cfg.AllowRuntimeLoRA {
		abs, err := filepath.Abs(cfg.LoRADir)
		if err != nil {
			return nil, fmt.Errorf("server: LoRA directory: %w", err)
		}
		r, err := os.OpenRoot(abs)
		if err != nil {
			return nil, fmt.Errorf("server: LoRA directory: %w", err)
		}
		r.Close()
		cfg.LoRADir = abs
	}
	s := &Server{cfg: cfg, eng: eng, log: log, calls: map[*call]struct{}{}, created: time.Now().Unix(),
		parsing: newGate(cfg.MaxConcurrentParsing), respBud: &budget{limit: cfg.MaxInflightResponseTokens}, fields: newFieldLog(log)}
	eo := eng.Options()
	s.dec = decoder{tok: tok, vocab: tok.VocabSize(), maxModelLen: eo.MaxModelLen, models: cfg.ModelNames, aliases: cfg.ModelAliases, chatPrompt: cfg.ChatPrompt, chatEncode: cfg.ChatEncode,
		maxWaiting: eo.MaxWaiting, maxLogprobs: cfg.MaxLogprobs, grammars: newGrammarCache(maxCachedGrammars), pythonTag: -1}
	if eo.LoRA.MaxLoRAs > 0 {
		s.dec.adapter = func(name string) bool { _, ok := eng.Adapter(name); return ok }
	}
	if id, ok := tok.TokenID("<|python_tag|>"); ok {
		s.dec.pythonTag = id
	}
	s.metrics = newMetrics(cfg.ModelNames[0], eng, cfg.Cache)
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vireo_inflight_response_tokens",
		Help: "Response tokens reserved by the requests in flight (see max_inflight_response_tokens).", ConstLabels: prometheus.Labels{"model_name": cfg.ModelNames[0]}},
		func() float64 { return float64(s.respBud.Used()) }))
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vireo_requests_in_flight",
		Help: "Generation requests being served, from the arrival of their headers to their last byte.", ConstLabels: prometheus.Labels{"model_name": cfg.ModelNames[0]}},
		func() float64 { return float64(s.InFlight()) }))
	s.promh = promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	for _, k := range cfg.APIKeys {
		if k == "" {
			return nil, errors.New("server: empty API key")
		}
		s.keys = append(s.keys, sha256.Sum256([]byte(k)))
	}
	return s, nil
}

// NewHTTPServer returns an http.Server for h with the configured timeouts.
func (s *Server) NewHTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if (strings.HasPrefix(path, "/v1/") || path == "/tokenize" || path == "/detokenize") && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vireo"`)
		s.metrics.rejected.WithLabelValues("unauthorized").Inc()
		writeError(w, &apiError{Status: http.StatusUnauthorized, Type: typeAuth, Code: "invalid_api_key",
			Message: "missing or invalid API key: send \"Authorization: Bearer <key>\""})
		return
	}
	switch path {
	case "/v1/completions":
		if s.method(w, r, http.MethodPost) {
			s.serveGenerate(w, r, epCompletion)
		}
	case "/v1/chat/completions":
		if s.method(w, r, http.MethodPost) {
			s.serveGenerate(w, r, epChat)
		}
	case "/v1/models":
		if s.method(w, r, http.MethodGet) {
			s.serveModels(w, "")
		}
	case "/v1/load_lora_adapter", "/v1/unload_lora_adapter":
		if s.method(w, r, http.MethodPost) {
			s.serveLoRAUpdate(w, r, path == "/v1/load_lora_adapter")
		}
	case "/tokenize", "/detokenize":
		if s.method(w, r, http.MethodPost) {
			s.serveTokenizer(w, r, path == "/detokenize")
		}
	case "/version":
		if s.method(w, r, http.MethodGet) {
			v := s.cfg.Version
			if v == "" {
				v = "unknown"
			}
			writeJSON(w, http.StatusOK, map[string]string{"version": v})
		}
	case "/health":
		if s.method(w, r, http.MethodGet) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
	case "/ready":
		if s.method(w, r, http.MethodGet) {
			s.serveReady(w)
		}
	case "/metrics":
		if s.method(w, r, http.MethodGet) {
			s.promh.ServeHTTP(w, r)
		}
	default:
		if name, ok := strings.CutPrefix(path, "/v1/models/"); ok && name != "" {
			if s.method(w, r, http.MethodGet) {
				s.serveModels(w, name)
			}
			return
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "unknown_url",
			Message: fmt.Sprintf("no route for %s %s; the API is POST /v1/completions, POST /v1/chat/completions, GET /v1/models, POST /tokenize, POST /detokenize, GET /version", clip(r.Method), clip(path))})
	}
}

// method answers 405 unless r uses want (GET also admits HEAD).
func (s *Server) method(w http.ResponseWriter, r *http.Request, want string) bool {
	if r.Method == want || (want == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	w.Header().Set("Allow", want)
	writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalid, Code: "method_not_allowed",
		Message: fmt.Sprintf("%s %s is not allowed; use %s", clip(r.Method), clip(r.URL.Path), want)})
	return false
}

// authorized checks the Bearer key in constant time against every configured key. The
// scheme name is case-insensitive (RFC 9110, section 11.1).
func (s *Server) authorized(r *http.Request) bool {
	if len(s.keys) == 0 {
		return true
	}
	scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	match := 0
	for i := range s.keys {
		match |= subtle.ConstantTimeCompare(sum[:], s.keys[i][:])
	}
	return match == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apiError{Status: 500, Type: typeServer, Message: "encoding the response failed"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// modelCard is an entry of /v1/models, as vLLM writes it: an adapter's root is where
// it was loaded from and its parent the base model; a base model's parent is null.
type modelCard struct {
	ID          string  `json:"id"`
	Object      string  `json:"object"`
	Created     int64   `json:"created"`
	OwnedBy     string  `json:"owned_by"`
	Root        string  `json:"root"`
	Parent      *string `json:"parent"`
	MaxModelLen int     `json:"max_model_len"`
}

func (s *Server) serveModels(w http.ResponseWriter, one string) {
	var cards []modelCard
	for _, n := range s.cfg.ModelNames {
		if one == "" || one == n {
			cards = append(cards, modelCard{ID: n, Object: "model", Created: s.created, OwnedBy: "vireo",
				Root: s.cfg.ModelNames[0], MaxModelLen: s.dec.maxModelLen})
		}
	}
	for _, a := range s.eng.Adapters() {
		if one == "" || one == a.Name {
			parent := s.cfg.ModelNames[0]
			cards = append(cards, modelCard{ID: a.Name, Object: "model", Created: a.Loaded.Unix(), OwnedBy: "vireo",
				Root: s.adapterRoot(a.Path), Parent: &parent, MaxModelLen: s.dec.maxModelLen})
		}
	}
	if one != "" {
		if len(cards) == 0 {
			_, _, e := s.dec.resolveModel(&one)
			if e == nil { // unloaded meanwhile
				e = &apiError{Status: 404, Type: typeNotFound, Param: "model", Code: "model_not_found", Message: fmt.Sprintf("the model %q does not exist", clip(one))}
			}
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, cards[0])
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": cards})
}

func (s *Server) serveReady(w http.ResponseWriter) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		w.Header().Set("Connection", "close")
		writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "draining",
			Message: "the server is draining: it finishes in-flight requests and takes no new ones"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "model": s.cfg.ModelNames[0]})
}

// begin registers an in-flight request; false while draining.
func (s *Server) begin(cancel context.CancelCauseFunc, rc *http.ResponseController) (*call, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, false
	}
	c := &call{cancel: cancel, rc: rc}
	s.calls[c] = struct{}{}
	return c, true
}

func (s *Server) end(c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.calls, c)
	s.signalIdle()
}

// signalIdle closes idle once draining has started and nothing is in flight (mu held).
func (s *Server) signalIdle() {
	if s.idle != nil && !s.idleShut && len(s.calls) == 0 {
		close(s.idle)
		s.idleShut = true
	}
}

// InFlight is the number of requests being served.
func (s *Server) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// Drain stops intake — new requests and /ready get 503 from now on — and waits for
// the requests in flight to finish. When ctx ends first, it aborts the remaining
// requests and returns at once with an error saying how many it aborted: each ends
// with an error saying the server is shutting down (its KV blocks are freed), and a
// handler waiting for a slow body stops waiting. WaitIdle waits for the handlers to
// return; one blocked writing to a client that does not read returns when its write
// deadline passes or its connection is closed (http.Server.Close). Drain does not
// close the engine or any listener.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	if !s.draining {
		s.draining = true
		s.idle = make(chan struct{})
		s.signalIdle()
		s.log.Info("draining: refusing new requests", zap.Int("in_flight", len(s.calls)))
	}
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.calls)
	now := time.Now()
	for c := range s.calls {
		c.cancel(errShuttingDown)
		if c.rc != nil {
			c.rc.SetReadDeadline(now) // a body still arriving: stop waiting for it
		}
	}
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	s.log.Warn("drain timed out: aborting the requests still in flight", zap.Int("aborted", n))
	return fmt.Errorf("server: drain: aborted %d in-flight requests: %w", n, ctx.Err())
}

// WaitIdle waits until no request handler is running (after Drain), or ctx ends: then
// it says how many are left.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	if idle == nil {
		return errors.New("server: WaitIdle before Drain")
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("server: %d request handlers still running: %w", s.InFlight(), ctx.Err())
	}
}

// readBody reads the request body within the size limit: a declared length over it
// is refused before anything is read, and a body that stops arriving within the read
// timeout gets 408.
func (s *Server) readBody(ctx context.Context, w http.ResponseWriter, r *http.Request) ([]byte, *apiError) {
	if notJSON(r.Header.Get("Content-Type")) {
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Type: typeInvalid, Code: "unsupported_media_type",
			Message: fmt.Sprintf("the body must be a JSON object (Content-Type application/json), got Content-Type %q", clip(r.Header.Get("Content-Type")))}
	}
	tooLarge := &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalid, Code: "request_too_large",
		Message: fmt.Sprintf("the request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes)}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		w.Header().Set("Connection", "close") // the body is not read
		return nil, tooLarge
	}
	// A declared length gets its buffer in one allocation, not io.ReadAll's doublings,
	// but only once its first 64 KiB have arrived: a client that declares a large body
	// and sends little is not given memory for it.
	var buf bytes.Buffer
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	const first = 64 << 10
	buf.Grow(int(min(max(r.ContentLength, 0), first)) + bytes.MinRead)
	_, err := io.CopyN(&buf, body, first)
	if err == nil {
		if r.ContentLength > first {
			buf.Grow(int(r.ContentLength) - buf.Len() + bytes.MinRead)
		}
		_, err = buf.ReadFrom(body)
	} else if err == io.EOF {
		err = nil
	}
	if err != nil {
		var mb *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mb):
			return nil, tooLarge
		case errors.Is(context.Cause(ctx), errShuttingDown):
			w.Header().Set("Connection", "close")
			return nil, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "draining",
				Message: "the server is shutting down: the request body was still being read"}
		case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			w.Header().Set("Connection", "close")
			return nil, &apiError{Status: http.StatusRequestTimeout, Type: typeTimeout, Code: "request_body_timeout",
				Message: fmt.Sprintf("the request body did not arrive within the server's read timeout of %v", s.cfg.ReadTimeout)}
		}
		return nil, &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Message: fmt.Sprintf("reading the request body: %s", clip(err.Error()))}
	}
	return buf.Bytes(), nil
}

// notJSON says whether a Content-Type names a format that is clearly not JSON: a
// multipart body. Any other type, or none, is read as JSON, as clients that omit the
// header or send curl's default (application/x-www-form-urlencoded) mean JSON; a body
// that does not parse is a 400 saying so.
func notJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	return strings.HasPrefix(mt, "multipart/")
}

// contentTypeNote adds to an error about a body that is not JSON (no field at fault)
// the Content-Type it came with, when that was not JSON's.
func contentTypeNote(e *apiError, r *http.Request) *apiError {
	if ct := r.Header.Get("Content-Type"); e.Param == "" && !isJSONType(ct) {
		e.Message += fmt.Sprintf(" (the body is read as JSON whatever its Content-Type; this one was %q)", clip(ct))
	}
	return e
}

// isJSONType says whether a Content-Type is JSON's (or none was sent).
func isJSONType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// newID returns prefix plus 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
