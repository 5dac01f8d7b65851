package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// HTTPTarget streams completions from an OpenAI-compatible server's /v1/completions
// (stream: true, SSE chunks ending with "data: [DONE]"), using vLLM's ignore_eos and
// min_tokens extensions for fixed output lengths.
type HTTPTarget struct {
	BaseURL string // e.g. http://localhost:8000 (a trailing /v1 is accepted)
	Model   string
	APIKey  string       // sent as a Bearer token when set
	Client  *http.Client // nil: a client that keeps a connection per request in flight

	once   sync.Once
	client *http.Client
}

// httpClient keeps idle connections for every concurrent request: the default
// transport keeps 2 per host, so at concurrency 16 most requests would pay a new
// TCP handshake and skew TTFT.
func (t *HTTPTarget) httpClient() *http.Client {
	t.once.Do(func() {
		t.client = t.Client
		if t.client == nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 4096, 4096
			t.client = &http.Client{Transport: tr}
		}
	})
	return t.client
}

type completionRequest struct {
	Model         string         `json:"model,omitempty"`
	Prompt        any            `json:"prompt"`
	MaxTokens     int            `json:"max_tokens"`
	MinTokens     int            `json:"min_tokens,omitempty"`
	IgnoreEOS     bool           `json:"ignore_eos,omitempty"`
	Temperature   float64        `json:"temperature"`
	Seed          *uint64        `json:"seed,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions map[string]any `json:"stream_options,omitempty"`
}

type completionChunk struct {
	Choices []struct {
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func (t *HTTPTarget) endpoint() string {
	u := strings.TrimRight(t.BaseURL, "/")
	u = strings.TrimSuffix(u, "/v1")
	return u + "/v1/completions"
}

// Generate implements Target.
func (t *HTTPTarget) Generate(ctx context.Context, r GenRequest, onTokens func(n int)) (Usage, error) {
	body := completionRequest{Model: t.Model, MaxTokens: r.MaxTokens, MinTokens: r.MinTokens, IgnoreEOS: r.IgnoreEOS,
		Temperature: r.Temperature, Stream: true, StreamOptions: map[string]any{"include_usage": true}}
	if r.Prompt.IDs != nil {
		body.Prompt = r.Prompt.IDs
	} else {
		body.Prompt = r.Prompt.Text
	}
	if r.Temperature > 0 {
		seed := r.Seed
		body.Seed = &seed
	}
	data, err := json.Marshal(body)
	if err != nil {
		return Usage{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint(), bytes.NewReader(data))
	if err != nil {
		return Usage{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	// A kept-alive connection the server has just closed fails a POST before the
	// server saw it ("server closed idle connection"); marking the request retryable
	// lets the transport resend it on a fresh connection in exactly that case (a nil
	// value sends no header). llama-server closes idle connections this way.
	req.Header["X-Idempotency-Key"] = nil
	if t.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+t.APIKey)
	}
	resp, err := t.httpClient().Do(req)
	if err != nil {
		return Usage{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return Usage{}, httpError(resp)
	}
	return readSSE(ctx, resp.Body, onTokens)
}

// ServedModel asks the server's GET /v1/models for the first model it serves, for
// runs that do not name one.
func (t *HTTPTarget) ServedModel(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(strings.TrimRight(t.BaseURL, "/"), "/v1") + "/v1/models"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	if t.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+t.APIKey)
	}
	resp, err := t.httpClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", httpError(resp)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	if len(list.Data) == 0 || list.Data[0].ID == "" {
		return "", fmt.Errorf("GET %s lists no model", u)
	}
	return list.Data[0].ID, nil
}

func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e completionChunk
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &HTTPError{Status: resp.StatusCode, Message: msg}
}

// readSSE reads the completion stream. A chunk with a choice whose text is non-empty is
// a token arrival, as vLLM's benchmark (benchmarks/backend_request_func.py) counts
// them: TTFT is the time to the first visible text, so a server that streams an empty
// chunk at once (a role or keep-alive chunk, or text held back for a partial UTF-8
// character or a stop string) gets no credit for it. The final usage chunk gives the
// exact token counts.
func readSSE(ctx context.Context, body io.Reader, onTokens func(n int)) (Usage, error) {
	var u Usage
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	finished, done := false, false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data:") {
			continue // comments, event names, blank separators
		}
		payload := strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		if payload == "[DONE]" {
			done = true
			break
		}
		var c completionChunk
		if err := json.Unmarshal([]byte(payload), &c); err != nil {
			return u, &StreamError{Kind: KindStream, Message: fmt.Sprintf("malformed SSE chunk %.120q: %v", payload, err)}
		}
		if c.Error != nil {
			return u, &StreamError{Kind: KindStream, Message: "server error in stream: " + c.Error.Message}
		}
		if c.Usage != nil {
			u = Usage{PromptTokens: c.Usage.PromptTokens, CompletionTokens: c.Usage.CompletionTokens}
		}
		for _, ch := range c.Choices {
			if ch.Text != "" {
				onTokens(1)
			}
			if ch.FinishReason != nil {
				finished = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return u, ctx.Err()
		}
		return u, err
	}
	if ctx.Err() != nil {
		return u, ctx.Err()
	}
	if !done && !finished {
		return u, &StreamError{Kind: KindTruncated, Message: "the stream ended before a finish reason or [DONE]"}
	}
	return u, nil
}
