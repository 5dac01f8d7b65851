package hub

import (
	"cmp"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultEndpoint is the Hub's address when HF_ENDPOINT is not set.
const DefaultEndpoint = "https://huggingface.co"

// Config says where the cache is, how to reach the Hub and how to report progress.
// FromEnv fills it as huggingface_hub reads its environment; commands then apply their
// flags (--offline) and set the logger.
type Config struct {
	Endpoint string // the Hub's base URL (HF_ENDPOINT)
	CacheDir string // the hub cache folder (HF_HUB_CACHE, HF_HOME/hub, ...)
	Token    string // bearer token (HF_TOKEN, or the token file); never logged
	Offline  bool   // never touch the network (HF_HUB_OFFLINE)

	// TokenSource says where Token came from ("HF_TOKEN", a file path), for messages.
	TokenSource string

	Client   *http.Client // nil: a client with connect and header timeouts, proxies from the environment
	Workers  int          // files downloaded at once (0: 4)
	Retries  int          // attempts per file after the first when a transfer breaks (negative: none; 0: 5)
	Backoff  time.Duration
	Stall    time.Duration // abort and retry a transfer that sent nothing this long (0: 60s, or HF_HUB_DOWNLOAD_TIMEOUT)
	Logger   *zap.Logger   // log lines (nil: none)
	Progress io.Writer     // where a terminal progress bar is drawn (nil: log lines only)

	// FreeSpace reports the bytes free for the cache folder (nil: statfs). Tests stub it.
	FreeSpace func(dir string) (int64, error)
}

// FromEnv reads the environment as huggingface_hub does.
func FromEnv() Config {
	c := Config{
		Endpoint: strings.TrimRight(cmp.Or(os.Getenv("HF_ENDPOINT"), DefaultEndpoint), "/"),
		CacheDir: CacheDirFromEnv(),
		Offline:  isTrue(os.Getenv("HF_HUB_OFFLINE")) || isTrue(os.Getenv("TRANSFORMERS_OFFLINE")),
	}
	c.Token, c.TokenSource = tokenFromEnv()
	if s := os.Getenv("HF_HUB_DOWNLOAD_TIMEOUT"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v > 0 {
			c.Stall = time.Duration(v * float64(time.Second))
		}
	}
	return c
}

// HomeFromEnv is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func HomeFromEnv() string {
	if h := os.Getenv("HF_HOME"); h != "" {
		return expandHome(h)
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(expandHome(x), "huggingface")
	}
	return filepath.Join(expandHome("~"), ".cache", "huggingface")
}

// CacheDirFromEnv is $HF_HUB_CACHE, else the legacy $HUGGINGFACE_HUB_CACHE, else
// <HF home>/hub.
func CacheDirFromEnv() string {
	for _, v := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if d := os.Getenv(v); d != "" {
			return expandHome(d)
		}
	}
	return filepath.Join(HomeFromEnv(), "hub")
}

// tokenFromEnv is $HF_TOKEN (or the legacy $HUGGING_FACE_HUB_TOKEN), else the first
// line of $HF_TOKEN_PATH or <HF home>/token, where `huggingface-cli login` writes it.
func tokenFromEnv() (token, source string) {
	for _, v := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := strings.TrimSpace(os.Getenv(v)); t != "" {
			return t, "$" + v
		}
	}
	p := tokenFilePath()
	f, err := os.Open(p)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 64<<10))
	line, _, _ := strings.Cut(string(b), "\n")
	if t := strings.TrimSpace(line); t != "" {
		return t, p
	}
	return "", ""
}

// isTrue is huggingface_hub's _is_true: 1, ON, YES or TRUE in any case.
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[1:])
		}
	}
	return p
}

func (c *Config) workers() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return 4
}

func (c *Config) retries() int {
	switch {
	case c.Retries < 0:
		return 0
	case c.Retries == 0:
		return 5
	}
	return c.Retries
}

func (c *Config) backoff() time.Duration {
	if c.Backoff > 0 {
		return c.Backoff
	}
	return time.Second
}

func (c *Config) stall() time.Duration {
	if c.Stall > 0 {
		return c.Stall
	}
	return 60 * time.Second
}

func (c *Config) log() *zap.Logger { return cmp.Or(c.Logger, zap.NewNop()) }

func (c *Config) endpoint() string {
	return strings.TrimRight(cmp.Or(c.Endpoint, DefaultEndpoint), "/")
}

// defaultClient connects within 15 s and waits at most 60 s for response headers; a
// body may take as long as it keeps moving (the stall watchdog cuts a silent one).
var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	TLSHandshakeTimeout:   15 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	MaxIdleConnsPerHost:   16,
	IdleConnTimeout:       90 * time.Second,
	ForceAttemptHTTP2:     true,
}}

func (c *Config) client() *http.Client { return cmp.Or(c.Client, defaultClient) }
