package specdec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Methods (vLLM's names).
const (
	MethodNGram      = "ngram"       // prompt lookup
	MethodDraftModel = "draft_model" // a smaller model of the same vocabulary
)

// MaxSpeculativeTokens bounds num_speculative_tokens.
const MaxSpeculativeTokens = 16

// Config is vLLM's --speculative-config, the fields Vireo implements. The zero value
// is speculation off.
type Config struct {
	// Method is "ngram" or "draft_model" ("" with Model set: draft_model, as vLLM).
	Method string `json:"method,omitempty"`
	// Model is the draft model for draft_model: any path or name the target's --model
	// takes.
	Model string `json:"model,omitempty"`
	// NumSpeculativeTokens is k: the most tokens proposed per sequence and step.
	NumSpeculativeTokens int `json:"num_speculative_tokens,omitempty"`
	// PromptLookupMax and PromptLookupMin bound the n-gram length of prompt lookup
	// (vLLM's defaults: both 5 when neither is set, else the one set for both).
	PromptLookupMax int `json:"prompt_lookup_max,omitempty"`
	PromptLookupMin int `json:"prompt_lookup_min,omitempty"`
	// Quantization is the draft's weight format: "auto", "int8" or "f32" ("": the
	// target's), as --quantization. (vLLM names a quantization method here.)
	Quantization string `json:"quantization,omitempty"`
}

// Enabled reports whether speculation is configured.
func (c Config) Enabled() bool { return c.Method != "" || c.Model != "" }

var fields = []string{"method", "model", "num_speculative_tokens", "prompt_lookup_max", "prompt_lookup_min", "quantization"}

// Parse reads --speculative-config's JSON object and normalizes it. A field Vireo does
// not implement is refused by name.
func Parse(s string) (Config, error) {
	var c Config
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return c, fmt.Errorf("speculative config: field %s is not supported (supported: %s)", f, strings.Join(fields, ", "))
		}
		return c, fmt.Errorf("speculative config: %v (want a JSON object such as {\"method\": \"ngram\", \"num_speculative_tokens\": 3, \"prompt_lookup_max\": 4})", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return c, errors.New("speculative config: trailing data after the JSON object")
	}
	if bytes.Equal(bytes.TrimSpace([]byte(s)), []byte("null")) || !c.Enabled() && c == (Config{}) {
		return c, errors.New("speculative config: needs a method (ngram or draft_model)")
	}
	return c, c.Normalize()
}

// Normalize applies vLLM's defaults and checks the fields; the zero Config stays off.
func (c *Config) Normalize() error {
	if !c.Enabled() {
		if *c != (Config{}) {
			return errors.New("speculative config: fields set without a method (ngram or draft_model)")
		}
		return nil
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("speculative config: "+format, a...)
	}
	if c.Method == "" {
		c.Method = MethodDraftModel
		if c.Model == "ngram" || c.Model == "[ngram]" {
			c.Method, c.Model = MethodNGram, ""
		}
	}
	if c.Method == "[ngram]" {
		c.Method = MethodNGram
	}
	switch {
	case c.Method != MethodNGram && c.Method != MethodDraftModel:
		return bad("method %q is not supported (ngram or draft_model)", c.Method)
	case c.NumSpeculativeTokens < 1 || c.NumSpeculativeTokens > MaxSpeculativeTokens:
		return bad("num_speculative_tokens must be in [1, %d], got %d", MaxSpeculativeTokens, c.NumSpeculativeTokens)
	case c.PromptLookupMax < 0 || c.PromptLookupMin < 0:
		return bad("prompt_lookup_max %d and prompt_lookup_min %d must be positive", c.PromptLookupMax, c.PromptLookupMin)
	}
	if c.Method == MethodNGram {
		if c.Model != "" {
			return bad("method ngram takes no model (got %q)", c.Model)
		}
		if c.Quantization != "" {
			return bad("quantization applies to a draft model, not to method ngram")
		}
		switch {
		case c.PromptLookupMax == 0 && c.PromptLookupMin == 0:
			c.PromptLookupMax, c.PromptLookupMin = 5, 5
		case c.PromptLookupMin == 0:
			c.PromptLookupMin = c.PromptLookupMax
		case c.PromptLookupMax == 0:
			c.PromptLookupMax = c.PromptLookupMin
		}
		if c.PromptLookupMin > c.PromptLookupMax {
			return bad("prompt_lookup_min=%d must be <= prompt_lookup_max=%d", c.PromptLookupMin, c.PromptLookupMax)
		}
		return nil
	}
	switch {
	case c.Model == "":
		return bad("method draft_model needs a model")
	case c.PromptLookupMax != 0 || c.PromptLookupMin != 0:
		return bad("prompt_lookup_max and prompt_lookup_min apply to method ngram only")
	case c.Quantization != "" && c.Quantization != "auto" && c.Quantization != "int8" && c.Quantization != "f32":
		return bad("quantization %q: the draft's weights are auto, int8 or f32", c.Quantization)
	}
	return nil
}

// String is the configuration as --speculative-config JSON.
func (c Config) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}
