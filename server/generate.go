package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/profiling"
)

// reqLog is what the one log line per request says.
type reqLog struct {
	id               string
	path             string
	status           int
	model            string
	stream           bool
	n                int
	promptTokens     int
	completionTokens int
	start            time.Time
	ttft             time.Duration
	finish           []string
	err              string
}

func (s *Server) logRequest(l *reqLog) {
	fields := []zap.Field{
		zap.String("id", l.id), zap.String("path", l.path), zap.Int("status", l.status),
		zap.Int("prompt_tokens", l.promptTokens), zap.Int("completion_tokens", l.completionTokens),
		zap.Float64("ttft_s", l.ttft.Seconds()), zap.Float64("duration_s", time.Since(l.start).Seconds()),
	}
	if l.model != "" {
		fields = append(fields, zap.String("model", l.model), zap.Bool("stream", l.stream), zap.Int("n", l.n))
	}
	if len(l.finish) > 0 {
		fields = append(fields, zap.Strings("finish_reason", l.finish))
	}
	if l.err != "" {
		fields = append(fields, zap.String("error", l.err))
	}
	s.log.Info("request", fields...)
}

// fail answers a request that did not reach the engine.
func (s *Server) fail(w http.ResponseWriter, l *reqLog, e *apiError, reason string) {
	l.status, l.err = e.Status, clipMessage(e.Message)
	if e.Status == 499 { // nobody to answer
		return
	}
	s.metrics.rejected.WithLabelValues(reason).Inc()
	if l.id != "" {
		w.Header().Set("X-Request-Id", l.id)
	}
	writeError(w, e)
}

// The request classes of op profiles (engine.Request.Class).
const (
	classChat       = "chat"
	classCompletion = "completion"
)

// serveGenerate runs POST /v1/completions and /v1/chat/completions.
func (s *Server) serveGenerate(w http.ResponseWriter, r *http.Request, ep endpoint) {
	l := &reqLog{path: clip(r.URL.Path), start: time.Now()}
	defer s.logRequest(l)
	prefix := "cmpl-"
	if ep == epChat {
		prefix = "chatcmpl-"
	}
	l.id = newID(prefix)
	// Go CPU profiles (/debug/pprof/profile) attribute this goroutine's samples to the
	// request (labels request_id and phase "server"); a connection's goroutine serves
	// its next request after this one, so its labels are put back.
	pprof.SetGoroutineLabels(profiling.WithRequest(r.Context(), l.id))
	defer pprof.SetGoroutineLabels(r.Context())

	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	rc := http.NewResponseController(w)
	c, ok := s.begin(cancel, rc)
	if !ok {
		w.Header().Set("Connection", "close")
		s.fail(w, l, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "draining",
			Message: "the server is shutting down and takes no new requests"}, "draining")
		return
	}
	defer s.end(c)

	g, e, reason := s.parse(ctx, w, r, ep)
	if e != nil {
		s.fail(w, l, e, reason)
		return
	}
	g.eng.Class = classCompletion // the request class of op profiles
	if ep == epChat {
		g.eng.Class = classChat
	}
	s.fields.note(l.id, l.path, &g.ignored)
	l.model, l.stream, l.n = g.model, g.stream, g.eng.N
	l.promptTokens = len(g.eng.Prompt)
	cost, e := s.reserveResponse(g)
	if e != nil {
		reason := "invalid"
		if e.Status == http.StatusTooManyRequests {
			reason = "busy"
		}
		s.fail(w, l, e, reason)
		return
	}
	defer s.respBud.give(cost)

	// The body is read. Its read deadline must not outlive it: net/http's background
	// read (which notices a client hanging up) would take a timeout for a hang-up and
	// cancel the request. net/http lifts it at the body's EOF; say so explicitly. The
	// write deadline is set per write below, so a long generation is not cut by it.
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})

	if s.cfg.RequestTimeout > 0 {
		g.eng.Deadline = l.start.Add(s.cfg.RequestTimeout)
		// A backstop: the engine ends the request at its deadline; the context ends it
		// even if it never reaches the engine's loop (a long prefill, a full queue).
		var stop context.CancelFunc
		ctx, stop = context.WithDeadlineCause(ctx, g.eng.Deadline.Add(time.Second), errTimedOut)
		defer stop()
	}
	g.eng.ID = l.id
	events, err := s.eng.Submit(ctx, &g.eng)
	if err != nil {
		switch {
		case errors.Is(err, engine.ErrQueueFull):
			s.fail(w, l, &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "queue_full",
				RetryAfter: s.retryAfter(),
				Message:    "the server's waiting queue is full; retry after a moment"}, "queue_full")
		case errors.Is(err, engine.ErrNoAdapter): // unloaded since the model was resolved
			s.fail(w, l, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Param: "model", Code: "model_not_found",
				Message: fmt.Sprintf("the model %q does not exist (its LoRA adapter was just unloaded)", clip(g.eng.Adapter))}, "invalid")
		case errors.Is(err, engine.ErrInvalid):
			msg := strings.TrimPrefix(err.Error(), engine.ErrInvalid.Error()+": ")
			s.fail(w, l, &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: engineParam(msg), Message: msg}, "invalid")
		case errors.Is(err, engine.ErrClosed):
			s.fail(w, l, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "engine_closed",
				Message: "the engine is shut down"}, "engine_closed")
		case errors.Is(context.Cause(ctx), errShuttingDown):
			s.fail(w, l, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "aborted",
				Message: "the server is shutting down: the request was aborted before it was queued"}, "draining")
		case errors.Is(context.Cause(ctx), errTimedOut):
			s.fail(w, l, &apiError{Status: http.StatusGatewayTimeout, Type: typeTimeout, Code: "request_timeout",
				Message: "the request was not queued within the server's request timeout of " + s.cfg.RequestTimeout.String()}, "timeout")
		case ctx.Err() != nil:
			l.status, l.err = 499, "client went away before the request was queued"
		default:
			s.fail(w, l, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: err.Error()}, "internal")
		}
		return
	}
	s.metrics.promptTok.Add(float64(len(g.eng.Prompt)))
	run := &genRun{s: s, g: g, l: l, ctx: ctx, cancel: cancel, choices: make([]choice, g.eng.N), created: l.start.Unix()}
	if g.stream {
		run.stream(w, rc, events)
	} else {
		run.collect(w, rc, events)
	}
	s.metrics.e2e.Observe(time.Since(l.start).Seconds())
	s.metrics.paramN.Observe(float64(g.eng.N))
	s.metrics.paramMaxTokens.Observe(float64(g.eng.MaxTokens))
	most := 0
	for i := range run.choices {
		most = max(most, run.choices[i].tokens)
	}
	s.metrics.reqMaxGen.Observe(float64(most))
}

// parse reads the body and decodes and tokenizes the request, within the limit on
// requests in that stage at once. On failure it gives the error and the metrics'
// reason for it.
func (s *Server) parse(ctx context.Context, w http.ResponseWriter, r *http.Request, ep endpoint) (*genRequest, *apiError, string) {
	body, e := s.readBody(ctx, w, r)
	switch {
	case e == nil:
	case e.Status == http.StatusRequestTimeout:
		return nil, e, "timeout"
	case e.Status == http.StatusServiceUnavailable:
		return nil, e, "draining"
	default:
		return nil, e, "invalid"
	}
	ok, err := s.parsing.enter(ctx)
	if !ok {
		if err != nil {
			return nil, &apiError{Status: 499, Type: typeInvalid, Code: "client_closed_request", Message: "the client went away while its request waited to be parsed"}, "client_gone"
		}
		return nil, &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "server_busy",
			RetryAfter: s.retryAfter(),
			Message:    fmt.Sprintf("the server is parsing as many requests as it may at once (%d, max_concurrent_parsing) with as many waiting; retry after a moment", s.cfg.MaxConcurrentParsing)}, "busy"
	}
	defer s.parsing.leave()
	var g *genRequest
	if ep == epChat {
		g, e = s.dec.decodeChat(body)
	} else {
		g, e = s.dec.decodeCompletion(body)
	}
	if e != nil {
		return nil, contentTypeNote(e, r), "invalid"
	}
	if g.eng.Constraint != nil {
		// The constraint's tables for the vocabulary are built here, within the
		// parsing gate, so that what they cost is bounded like parsing (a no-op for a
		// cached grammar).
		v, err := s.eng.Vocab()
		if err != nil {
			return nil, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: "the vocabulary for constraints: " + err.Error()}, "internal"
		}
		g.eng.Constraint.Prepare(v)
	}
	return g, nil, ""
}

// reserveResponse checks what the request's response may hold against the limit per
// request, and reserves it from the allowance of the requests in flight.
func (s *Server) reserveResponse(g *genRequest) (int64, *apiError) {
	cost := g.responseTokens()
	if cost > s.cfg.MaxResponseTokens {
		per := "1"
		if g.logprobs {
			per = fmt.Sprintf("(2 + %d top logprobs)", g.topLogprobs)
		}
		return 0, &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: g.maxParam, Code: "response_too_large",
			Message: fmt.Sprintf("the response could hold %d tokens (n=%d × %s=%d × %s per token), over this server's limit of %d per request (max_response_tokens): lower n, %s or the logprobs asked for",
				cost, g.eng.N, g.maxParam, g.eng.MaxTokens, per, s.cfg.MaxResponseTokens, g.maxParam)}
	}
	if !s.respBud.take(cost) {
		return 0, &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: "server_busy", RetryAfter: s.retryAfter(),
			Message: fmt.Sprintf("the requests in flight hold as much response as this server allows (%d tokens, max_inflight_response_tokens); this one may hold %d: retry after a moment", s.cfg.MaxInflightResponseTokens, cost)}
	}
	return cost, nil
}

func (s *Server) retryAfter() int {
	return max(1, int(s.cfg.RetryAfter.Round(time.Second)/time.Second))
}

// engineParam names the request field an engine validation message is about, for
// the sampling parameters it checks ("sampling: repetition_penalty must be ...").
func engineParam(msg string) string {
	rest, ok := strings.CutPrefix(msg, "sampling: ")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, " ")
	switch name {
	case "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty":
		return name
	}
	return ""
}

// choice is one of a request's N completions as it arrives.
type choice struct {
	text     strings.Builder
	tokens   int
	finish   engine.FinishReason
	first    time.Time // the first token
	last     time.Time // the previous token, for inter-token latency
	offset   int       // text offset, for completion logprobs
	lp       completionLogprobs
	chatLP   []chatTokenLogprob
	errEvent error
	// tool calls (chat with tools)
	started   bool       // a token has arrived
	pythonTag bool       // the first token was <|python_tag|>
	calls     callStream // forced calls, read as they stream
	decided   bool       // auto: whether the output is a candidate call is known
	buffering bool       // auto: holding the output back until it is known to be a call or not
	held      strings.Builder
}

// genRun is one admitted request's trip through the engine.
type genRun struct {
	s       *Server
	g       *genRequest
	l       *reqLog
	ctx     context.Context
	cancel  context.CancelCauseFunc
	choices []choice
	created int64
	gotTok  bool
	head    []byte // `data: {"id":...,"choices":`, the start of every chunk
	newToks int    // generated tokens not yet counted in the metrics
}

// observe updates the choice and the latency metrics for one event.
func (r *genRun) observe(ev *engine.Event) *choice {
	if ev.Index < 0 || ev.Index >= len(r.choices) {
		return nil
	}
	c := &r.choices[ev.Index]
	if ev.HasToken && !c.started {
		c.started = true
		c.pythonTag = r.s.dec.pythonTag >= 0 && ev.Token == r.s.dec.pythonTag
	}
	if ev.HasToken {
		c.tokens++
		r.newToks++
		r.l.completionTokens++
		if !r.gotTok {
			r.gotTok = true
			r.l.ttft = ev.Time.Sub(r.l.start)
			r.s.metrics.ttft.Observe(r.l.ttft.Seconds())
		}
		if c.last.IsZero() {
			c.first = ev.Time
		} else {
			gap := ev.Time.Sub(c.last).Seconds()
			r.s.metrics.itl.Observe(gap)
			r.s.metrics.tpot.Observe(gap) // vLLM's deprecated name, the same observations
		}
		c.last = ev.Time
	}
	if ev.Finish != "" {
		c.finish = ev.Finish
		c.errEvent = ev.Err
		r.s.metrics.completionTimes(ev.Timing, c.first, c.last, c.tokens)
		r.finished(c)
	}
	return c
}

// finished counts a choice's end in the metrics and the log.
func (r *genRun) finished(c *choice) {
	m := r.s.metrics
	m.finished(c.finish)
	m.reqPrompt.Observe(float64(len(r.g.eng.Prompt)))
	m.reqGen.Observe(float64(c.tokens))
	r.l.finish = append(r.l.finish, string(c.finish))
}

// settle runs once the event channel has closed: a choice with no final event was cut
// off by a cancelled context (the engine's last events are dropped then), so it is
// recorded as aborted.
func (r *genRun) settle() {
	r.countTokens()
	for i := range r.choices {
		if r.choices[i].finish == "" {
			r.choices[i].finish = engine.FinishAbort
			r.finished(&r.choices[i])
		}
	}
}

func (r *genRun) countTokens() {
	if r.newToks > 0 {
		r.s.metrics.genTok.Add(float64(r.newToks))
		r.newToks = 0
	}
}

// outcome says how the request ended once its event channel has closed: nil when
// every choice ended with stop or length, else the error to report.
func (r *genRun) outcome() *apiError {
	var worst engine.FinishReason
	for i := range r.choices {
		f := r.choices[i].finish
		if f == engine.FinishStop || f == engine.FinishLength {
			continue
		}
		if worst == "" || f == engine.FinishError {
			worst = f
		}
		if f == engine.FinishError && r.choices[i].errEvent != nil {
			return &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: "engine_error",
				Message: "generation failed: " + r.choices[i].errEvent.Error()}
		}
	}
	switch cause := context.Cause(r.ctx); {
	case worst == "":
		return nil
	case worst == engine.FinishDeadline || errors.Is(cause, errTimedOut):
		return &apiError{Status: http.StatusGatewayTimeout, Type: typeTimeout, Code: "request_timeout",
			Message: "the request did not finish within the server's request timeout of " + r.s.cfg.RequestTimeout.String()}
	case errors.Is(cause, errClientGone) || (cause != nil && r.ctx.Err() != nil && !errors.Is(cause, errShuttingDown)):
		return &apiError{Status: 499, Type: typeInvalid, Code: "client_closed_request", Message: "the client went away"}
	case worst == engine.FinishError:
		return &apiError{Status: http.StatusInternalServerError, Type: typeServer, Code: "engine_error", Message: "generation failed"}
	}
	return &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "aborted",
		Message: "the server is shutting down: the request was aborted before it finished"}
}

func (r *genRun) usage() usage {
	u := usage{PromptTokens: len(r.g.eng.Prompt)}
	for i := range r.choices {
		u.CompletionTokens += r.choices[i].tokens
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// addLogprobs records a token's log-probabilities on its choice (non-streaming).
func (r *genRun) addLogprobs(c *choice, ev *engine.Event) {
	if !r.g.logprobs || !ev.HasToken {
		return
	}
	tok := r.s.dec.tok
	piece := tok.Piece(ev.Token)
	if r.g.ep == epCompletion {
		c.lp.Tokens = append(c.lp.Tokens, piece)
		c.lp.TokenLogprobs = append(c.lp.TokenLogprobs, lpFloat(ev.Logprob))
		c.lp.TextOffset = append(c.lp.TextOffset, c.offset)
		c.offset += len(piece)
		if r.g.topLogprobs > 0 {
			top := make(map[string]lpFloat, len(ev.TopLogprobs))
			for _, t := range ev.TopLogprobs {
				top[tok.Piece(t.Token)] = lpFloat(t.Logprob)
			}
			c.lp.TopLogprobs = append(c.lp.TopLogprobs, top)
		} else {
			c.lp.TopLogprobs = append(c.lp.TopLogprobs, nil)
		}
		return
	}
	c.chatLP = append(c.chatLP, r.chatLogprob(ev))
}

func (r *genRun) chatLogprob(ev *engine.Event) chatTokenLogprob {
	tok := r.s.dec.tok
	piece := tok.Piece(ev.Token)
	e := chatTokenLogprob{Token: piece, Logprob: lpFloat(ev.Logprob), Bytes: byteList(piece), TopLogprobs: []chatTopLogprob{}}
	for _, t := range ev.TopLogprobs {
		p := tok.Piece(t.Token)
		e.TopLogprobs = append(e.TopLogprobs, chatTopLogprob{Token: p, Logprob: lpFloat(t.Logprob), Bytes: byteList(p)})
	}
	return e
}

func byteList(s string) []int {
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}

// collect answers a non-streaming request with one JSON body.
func (r *genRun) collect(w http.ResponseWriter, rc *http.ResponseController, events <-chan engine.Event) {
	for ev := range events {
		c := r.observe(&ev)
		if c == nil {
			continue
		}
		c.text.WriteString(ev.Text)
		r.addLogprobs(c, &ev)
	}
	r.settle()
	w.Header().Set("X-Request-Id", r.l.id)
	if e := r.outcome(); e != nil {
		r.l.status, r.l.err = e.Status, e.Message
		if e.Status != 499 {
			rc.SetWriteDeadline(time.Now().Add(r.s.cfg.WriteTimeout))
			writeError(w, e)
		}
		return
	}
	var body any
	if r.g.ep == epCompletion {
		resp := completionResponse{ID: r.l.id, Object: "text_completion", Created: r.created, Model: r.g.model, Usage: r.usage()}
		for i := range r.choices {
			c := &r.choices[i]
			ch := completionChoice{Index: i, Text: c.text.String(), FinishReason: string(c.finish)}
			if r.g.logprobs {
				ch.Logprobs = &c.lp
			}
			resp.Choices = append(resp.Choices, ch)
		}
		body = resp
	} else {
		resp := chatResponse{ID: r.l.id, Object: "chat.completion", Created: r.created, Model: r.g.model, Usage: r.usage()}
		for i := range r.choices {
			c := &r.choices[i]
			text := c.text.String()
			ch := chatChoice{Index: i, Message: chatMessageOut{Role: "assistant", Content: &text}, FinishReason: string(c.finish)}
			if r.g.tools.active() && c.finish == engine.FinishStop {
				if calls := r.g.tools.parseCalls(text, c.pythonTag); calls != nil {
					ch.Message.Content, ch.Message.ToolCalls, ch.FinishReason = nil, calls, "tool_calls"
				}
			}
			if r.g.logprobs {
				ch.Logprobs = &chatLogprobs{Content: c.chatLP}
				if ch.Logprobs.Content == nil {
					ch.Logprobs.Content = []chatTokenLogprob{}
				}
			}
			resp.Choices = append(resp.Choices, ch)
		}
		body = resp
	}
	r.l.status = http.StatusOK
	rc.SetWriteDeadline(time.Now().Add(r.s.cfg.WriteTimeout))
	writeJSON(w, http.StatusOK, body)
}

// stream answers with server-sent events: one chunk per token, a final chunk per
// choice with its finish reason, an optional usage chunk, then "data: [DONE]".
func (r *genRun) stream(w http.ResponseWriter, rc *http.ResponseController, events <-chan engine.Event) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Request-Id", r.l.id)
	w.WriteHeader(http.StatusOK)
	r.l.status = http.StatusOK
	sw := &sseWriter{w: w, rc: rc, timeout: r.s.cfg.WriteTimeout}
	r.chunkPrefix(sw)
	if r.g.ep == epChat {
		for i := range r.choices {
			sw.buf = r.appendChatRole(sw.buf, i)
		}
	}
	sw.flush()

	open := true
	for open {
		ev, ok := <-events
		if !ok {
			break
		}
		r.streamEvent(sw, &ev)
	more: // take whatever else is ready, then write it with one syscall
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					open = false
					break more
				}
				r.streamEvent(sw, &ev)
			default:
				break more
			}
		}
		r.countTokens()
		if sw.flush() != nil && !sw.dead {
			sw.dead = true
			r.cancel(errClientGone) // aborts the request; the channel closes soon
		}
	}
	r.settle()
	if sw.dead {
		r.l.status, r.l.err = 499, "client went away mid-stream"
		return
	}
	if e := r.outcome(); e != nil {
		r.l.err = e.Message
		if e.Status == 499 {
			r.l.status = 499
			return
		}
		b, _ := json.Marshal(e.body())
		sw.buf = append(sw.buf, "data: "...)
		sw.buf = append(sw.buf, b...)
		sw.buf = append(sw.buf, "\n\n"...)
	} else if r.g.includeUsage {
		u := r.usage()
		sw.buf = append(sw.buf, r.head...)
		sw.buf = append(sw.buf, `[],"usage":{"prompt_tokens":`...)
		sw.buf = strconv.AppendInt(sw.buf, int64(u.PromptTokens), 10)
		sw.buf = append(sw.buf, `,"completion_tokens":`...)
		sw.buf = strconv.AppendInt(sw.buf, int64(u.CompletionTokens), 10)
		sw.buf = append(sw.buf, `,"total_tokens":`...)
		sw.buf = strconv.AppendInt(sw.buf, int64(u.TotalTokens), 10)
		sw.buf = append(sw.buf, "}}\n\n"...)
	}
	sw.buf = append(sw.buf, "data: [DONE]\n\n"...)
	if sw.flush() != nil {
		r.l.status, r.l.err = 499, "client went away before the end of the stream"
	}
}

// sseWriter batches chunks and writes them with a per-write deadline, so a stream of
// any length is never cut by the server's WriteTimeout while a stuck client still is.
type sseWriter struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	timeout    time.Duration
	deadlineAt time.Time
	buf        []byte
	dead       bool
}

func (sw *sseWriter) flush() error {
	if sw.dead || len(sw.buf) == 0 {
		sw.buf = sw.buf[:0]
		return nil
	}
	if sw.timeout > 0 {
		// Moving a deadline costs a timer update; do it only when half is used up.
		if now := time.Now(); sw.deadlineAt.Sub(now) < sw.timeout/2 {
			sw.deadlineAt = now.Add(sw.timeout)
			sw.rc.SetWriteDeadline(sw.deadlineAt)
		}
	}
	_, err := sw.w.Write(sw.buf)
	sw.buf = sw.buf[:0]
	if err == nil {
		err = sw.rc.Flush()
	}
	return err
}

// chunkPrefix builds the bytes every chunk of this request starts with.
func (r *genRun) chunkPrefix(sw *sseWriter) {
	obj := "text_completion"
	if r.g.ep == epChat {
		obj = "chat.completion.chunk"
	}
	b := append([]byte(nil), `data: {"id":`...)
	b = appendJSONString(b, r.l.id)
	b = append(b, `,"object":"`...)
	b = append(b, obj...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, r.created, 10)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, r.g.model)
	b = append(b, `,"choices":`...)
	r.head = b
	sw.buf = make([]byte, 0, 4096)
}

func (r *genRun) appendChatRole(b []byte, i int) []byte {
	b = r.appendChoiceStart(b, i)
	b = append(b, `"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]`...)
	return r.appendChunkEnd(b)
}

// streamEvent appends the chunk(s) one event produces.
func (r *genRun) streamEvent(sw *sseWriter, ev *engine.Event) {
	c := r.observe(ev)
	if c == nil || sw.dead {
		return
	}
	if r.g.tools.active() {
		r.streamTools(sw, c, ev)
		return
	}
	fin := ev.Finish == engine.FinishStop || ev.Finish == engine.FinishLength
	if ev.Text == "" && !(r.g.logprobs && ev.HasToken) && !fin {
		return // held-back text, nothing to say yet
	}
	if ev.Finish != "" && !fin {
		// Aborted, timed out or failed: the stream ends with an error event instead.
		if ev.Text == "" {
			return
		}
		fin = false
	}
	b := r.appendChoiceStart(sw.buf, ev.Index)
	if r.g.ep == epChat {
		if ev.Text == "" {
			b = append(b, `"delta":{}`...)
		} else {
			b = append(b, `"delta":{"content":`...)
			b = appendJSONString(b, ev.Text)
			b = append(b, '}')
		}
	} else {
		b = append(b, `"text":`...)
		b = appendJSONString(b, ev.Text)
	}
	b = append(b, `,"logprobs":`...)
	if r.g.logprobs && ev.HasToken {
		b = r.appendStreamLogprobs(b, c, ev)
	} else {
		b = append(b, "null"...)
	}
	if fin {
		b = append(b, `,"finish_reason":"`...)
		b = append(b, ev.Finish...)
		b = append(b, `"}]`...)
	} else {
		b = append(b, `,"finish_reason":null}]`...)
	}
	sw.buf = r.appendChunkEnd(b)
}

func (r *genRun) appendChoiceStart(b []byte, i int) []byte {
	b = append(b, r.head...)
	b = append(b, `[{"index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ',')
}

func (r *genRun) appendChunkEnd(b []byte) []byte {
	if r.g.includeUsage {
		b = append(b, `,"usage":null`...)
	}
	return append(b, "}\n\n"...)
}

func (r *genRun) appendStreamLogprobs(b []byte, c *choice, ev *engine.Event) []byte {
	var v any
	if r.g.ep == epChat {
		v = chatLogprobs{Content: []chatTokenLogprob{r.chatLogprob(ev)}}
	} else {
		tok := r.s.dec.tok
		piece := tok.Piece(ev.Token)
		lp := completionLogprobs{Tokens: []string{piece}, TokenLogprobs: []lpFloat{lpFloat(ev.Logprob)}, TextOffset: []int{c.offset}}
		c.offset += len(piece)
		var top map[string]lpFloat
		if r.g.topLogprobs > 0 {
			top = make(map[string]lpFloat, len(ev.TopLogprobs))
			for _, t := range ev.TopLogprobs {
				top[tok.Piece(t.Token)] = lpFloat(t.Logprob)
			}
		}
		lp.TopLogprobs = []map[string]lpFloat{top}
		v = lp
	}
	j, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, j...)
}

// Response bodies (non-streaming) and the logprob shapes both paths share.

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type completionResponse struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   usage              `json:"usage"`
}

type completionChoice struct {
	Index        int                 `json:"index"`
	Text         string              `json:"text"`
	Logprobs     *completionLogprobs `json:"logprobs"`
	FinishReason string              `json:"finish_reason"`
}

type completionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []lpFloat            `json:"token_logprobs"`
	TopLogprobs   []map[string]lpFloat `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usage        `json:"usage"`
}

type chatChoice struct {
	Index        int            `json:"index"`
	Message      chatMessageOut `json:"message"`
	Logprobs     *chatLogprobs  `json:"logprobs"`
	FinishReason string         `json:"finish_reason"`
}

type chatMessageOut struct {
	Role      string        `json:"role"`
	Content   *string       `json:"content"` // null when the turn is tool calls
	ToolCalls []toolCallOut `json:"tool_calls,omitempty"`
}

type chatLogprobs struct {
	Content []chatTokenLogprob `json:"content"`
}

type chatTokenLogprob struct {
	Token       string           `json:"token"`
	Logprob     lpFloat          `json:"logprob"`
	Bytes       []int            `json:"bytes"`
	TopLogprobs []chatTopLogprob `json:"top_logprobs"`
}

type chatTopLogprob struct {
	Token   string  `json:"token"`
	Logprob lpFloat `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// lpFloat is a log-probability; -inf (which JSON cannot hold) is written as -9999.0,
// as OpenAI does.
type lpFloat float32

func (f lpFloat) MarshalJSON() ([]byte, error) { return appendFloat(nil, float32(f)), nil }

// streamTools streams a chat whose output may be tool calls, as OpenAI does: a call's
// first chunk carries its index, id, type and name (and empty arguments), the next
// ones pieces of its arguments, and the last chunk finish_reason "tool_calls". Forced
// calls (tool_choice "required" or named) stream as they are generated; with "auto",
// output that starts like a call ("{" or <|python_tag|>) is held back until the end
// and sent as calls if it parses, else as content. Logprobs are not streamed with
// tools.
func (r *genRun) streamTools(sw *sseWriter, c *choice, ev *engine.Event) {
	fin := ev.Finish == engine.FinishStop || ev.Finish == engine.FinishLength
	if ev.Finish != "" && !fin {
		return // aborted, timed out or failed: the stream ends with an error event
	}
	c.text.WriteString(ev.Text)
	i := ev.Index
	finish := string(ev.Finish)
	if r.g.tools.forced() {
		for _, d := range c.calls.add(ev.Text) {
			r.appendToolDelta(sw, i, c, d)
		}
		if fin {
			if ev.Finish == engine.FinishStop && c.calls.calls > 0 {
				finish = "tool_calls"
			}
			r.appendFinishChunk(sw, i, finish)
		}
		return
	}
	switch {
	case !c.decided:
		c.held.WriteString(ev.Text)
		t := strings.TrimLeft(c.held.String(), " \t\r\n")
		switch {
		case c.pythonTag || strings.HasPrefix(t, "{"):
			c.decided, c.buffering = true, true
		case t != "":
			c.decided = true
			r.appendContentChunk(sw, i, c.held.String())
			c.held.Reset()
		}
	case c.buffering:
		c.held.WriteString(ev.Text)
	case ev.Text != "":
		r.appendContentChunk(sw, i, ev.Text)
	}
	if !fin {
		return
	}
	if c.held.Len() > 0 {
		held := c.held.String()
		c.held.Reset()
		var calls []toolCallOut
		if ev.Finish == engine.FinishStop {
			calls = r.g.tools.parseCalls(held, c.pythonTag)
		}
		if calls != nil {
			for k, call := range calls {
				r.appendCallChunk(sw, i, k, call)
			}
			finish = "tool_calls"
		} else {
			r.appendContentChunk(sw, i, held)
		}
	}
	r.appendFinishChunk(sw, i, finish)
}

// toolCallDelta is one entry of a chunk's delta.tool_calls.
type toolCallDelta struct {
	Index    int               `json:"index"`
	ID       string            `json:"id,omitempty"`
	Type     string            `json:"type,omitempty"`
	Function toolFunctionDelta `json:"function"`
}

type toolFunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

func (r *genRun) appendToolDelta(sw *sseWriter, i int, c *choice, d callDelta) {
	td := toolCallDelta{Index: d.index, Function: toolFunctionDelta{Arguments: d.args}}
	if d.name != "" {
		td.ID, td.Type, td.Function.Name = newCallID(), "function", d.name
	}
	r.appendDeltaChunk(sw, i, td)
}

func (r *genRun) appendCallChunk(sw *sseWriter, i, k int, call toolCallOut) {
	r.appendDeltaChunk(sw, i, toolCallDelta{Index: k, ID: call.ID, Type: call.Type,
		Function: toolFunctionDelta{Name: call.Function.Name, Arguments: call.Function.Arguments}})
}

func (r *genRun) appendDeltaChunk(sw *sseWriter, i int, td toolCallDelta) {
	j, err := json.Marshal([]toolCallDelta{td})
	if err != nil {
		return
	}
	b := r.appendChoiceStart(sw.buf, i)
	b = append(b, `"delta":{"tool_calls":`...)
	b = append(b, j...)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	sw.buf = r.appendChunkEnd(b)
}

func (r *genRun) appendContentChunk(sw *sseWriter, i int, text string) {
	if text == "" {
		return
	}
	b := r.appendChoiceStart(sw.buf, i)
	b = append(b, `"delta":{"content":`...)
	b = appendJSONString(b, text)
	b = append(b, `},"logprobs":null,"finish_reason":null}]`...)
	sw.buf = r.appendChunkEnd(b)
}

func (r *genRun) appendFinishChunk(sw *sseWriter, i int, finish string) {
	b := r.appendChoiceStart(sw.buf, i)
	b = append(b, `"delta":{},"logprobs":null,"finish_reason":`...)
	b = appendJSONString(b, finish)
	b = append(b, "}]"...)
	sw.buf = r.appendChunkEnd(b)
}
