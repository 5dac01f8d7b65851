package server

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// What a request may cost the server before and while it runs, and the checks that
// keep it there. Every bound is here; request.go applies them.

// Defaults of the Config limits.
const (
	DefaultMaxConcurrentParsing      = 8
	DefaultMaxResponseTokens         = 1 << 18 // 262,144
	DefaultMaxInflightResponseTokens = 1 << 22 // 4,194,304
	DefaultMaxLogprobs               = 20      // vLLM's --max-logprobs default, and the engine's bound
)

// maxEcho is the most bytes of a client's value that an error message or a log line
// repeats.
const maxEcho = 256

// clip bounds a client-supplied value before it is echoed: the first maxEcho bytes
// (cut at a character boundary) and a marker saying how long it was.
func clip(s string) string { return clipTo(s, maxEcho) }

// clipTo is clip with a limit of n bytes.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...[truncated: " + strconv.Itoa(len(s)) + " bytes]"
}

// maxMessage bounds a whole error message (each echoed value in it is clipped already;
// this is the backstop).
const maxMessage = 4096

func clipMessage(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "...[truncated]"
}

// gate lets at most n requests parse and tokenize at once, and at most n more wait
// for a turn; the rest are refused at once (429). The stage is CPU-bound and its
// memory grows with the body, so it is bounded whatever the number of connections.
type gate struct {
	slots   chan struct{}
	mu      sync.Mutex
	waiting int
}

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// enter takes a slot: false when the slots and the waiting room are full, or when
// ctx ends while waiting (then err is set).
func (g *gate) enter(ctx context.Context) (bool, error) {
	select {
	case g.slots <- struct{}{}:
		return true, nil
	default:
	}
	g.mu.Lock()
	if g.waiting >= cap(g.slots) {
		g.mu.Unlock()
		return false, nil
	}
	g.waiting++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}()
	select {
	case g.slots <- struct{}{}:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (g *gate) leave() { <-g.slots }

// budget is a shared allowance (the response tokens of the requests in flight).
type budget struct {
	mu          sync.Mutex
	used, limit int64
}

// take reserves n, or reports false when that would go over the limit.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// Used is the allowance in use.
func (b *budget) Used() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// responseTokens is what a request's response may hold, in tokens: each of the n
// completions' max tokens, and per token its logprob and top alternatives when asked
// for. The server keeps a non-streaming response until it is complete, and a stream's
// events wait in memory while its client reads slowly, so this bounds both.
func (g *genRequest) responseTokens() int64 {
	per := int64(1)
	if g.logprobs {
		per += 1 + int64(g.topLogprobs)
	}
	return int64(g.eng.N) * int64(g.eng.MaxTokens) * per
}

// promptTooLong is the 400 for a prompt that does not fit the context; n is its
// length, or a lower bound on it when atLeast.
func (d *decoder) promptTooLong(param string, n int, atLeast bool, why string) *apiError {
	is := "is"
	if atLeast {
		is = "is at least"
	}
	return badParam(param, "the prompt %s %d tokens%s, but this model's maximum context length is %d tokens (at least one must be left for the completion)", is, n, why, d.maxModelLen)
}

// encodeBounded encodes a prompt text, refusing it as soon as it is known not to fit
// the context: at once when its bytes alone prove it (each token spans at most
// maxTokenBytes bytes of text), else when the encoding passes the limit, which stops
// the encoding there.
func (d *decoder) encodeBounded(param, text string, opt tokenizer.EncodeOptions) ([]int32, *apiError) {
	limit := d.maxModelLen - 1
	if mb := d.tok.MaxTokenBytes(opt); mb > 0 && len(text) > limit*mb {
		return nil, d.promptTooLong(param, (len(text)+mb-1)/mb, true,
			" ("+strconv.Itoa(len(text))+" bytes of text; a token here spans at most "+strconv.Itoa(mb)+")")
	}
	ids, ok := d.tok.EncodeLimit(text, opt, limit)
	if !ok {
		return nil, d.promptTooLong(param, len(ids), true, " (counting stopped there)")
	}
	return ids, nil
}

// checkChatBytes refuses a conversation whose message text alone proves that the
// rendered prompt cannot fit the context, before the chat template renders it and the
// tokenizer encodes it. Templates copy each message's content into the prompt (leading
// and trailing whitespace aside, which some trim), so the prompt has at least as many
// tokens as that text needs.
func (d *decoder) checkChatBytes(contents []string) *apiError {
	mb := d.tok.MaxTokenBytes(tokenizer.EncodeOptions{ParseSpecial: true})
	if mb <= 0 {
		return nil
	}
	n := 0
	for _, c := range contents {
		n += len(strings.TrimSpace(c))
	}
	if limit := d.maxModelLen - 1; n > limit*mb {
		return d.promptTooLong("messages", (n+mb-1)/mb, true,
			" ("+strconv.Itoa(n)+" bytes of message text; a token here spans at most "+strconv.Itoa(mb)+")")
	}
	return nil
}

// parseIDs reads a token-id prompt without building more than the context can hold:
// it checks and counts every id but keeps at most maxModelLen-1.
func (d *decoder) parseIDs(b []byte) (promptInput, *apiError) {
	const notInts = "a token-id prompt must be an array of integers"
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return promptInput{}, badParam("prompt", notInts)
	}
	limit := d.maxModelLen - 1
	var out []int32
	n := 0
	for i = skipWS(b, i+1); i < len(b) && b[i] != ']'; n++ {
		j := i
		if b[j] == '-' {
			j++
		}
		start := j
		var v int64
		for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
			if v <= int64(d.vocab) { // past the vocabulary, the value no longer matters
				v = v*10 + int64(b[j]-'0')
			}
		}
		if j == start || (j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '"')) || (j < len(b) && !strings.ContainsRune(",] \t\n\r", rune(b[j]))) {
			return promptInput{}, badParam("prompt", notInts)
		}
		if (b[i] == '-' && v != 0) || v >= int64(d.vocab) {
			return promptInput{}, badParam("prompt", "prompt token id %s at position %d is outside the vocabulary of %d tokens", clip(string(b[i:j])), n, d.vocab)
		}
		if n < limit {
			if out == nil {
				out = make([]int32, 0, min(limit, len(b)/2+1))
			}
			out = append(out, int32(v))
		}
		if i = skipWS(b, j); i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	switch {
	case n == 0:
		return promptInput{}, badParam("prompt", "\"prompt\" is an empty array of token ids")
	case n > limit:
		return promptInput{}, d.promptTooLong("prompt", n, false, "")
	}
	return promptInput{ids: out, isIDs: true}, nil
}
