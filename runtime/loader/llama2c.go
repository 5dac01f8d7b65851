package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"strings"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// llama2cHeaderSize is the legacy header: seven int32.
const llama2cHeaderSize = 7 * 4

// llama2cHeader is the legacy llama2.c checkpoint header.
type llama2cHeader struct {
	Dim, HiddenDim, Layers, Heads, KVHeads, VocabSize, SeqLen int32
}

// config checks the header and returns the Config it describes.
func (h llama2cHeader) config() (Config, error) {
	for _, f := range []struct {
		name string
		v    int32
	}{{"dim", h.Dim}, {"hidden_dim", h.HiddenDim}, {"n_layers", h.Layers}, {"n_heads", h.Heads},
		{"n_kv_heads", h.KVHeads}, {"seq_len", h.SeqLen}} {
		if f.v <= 0 {
			return Config{}, fmt.Errorf("llama2c: implausible header: %s is %d (must be positive)", f.name, f.v)
		}
	}
	if h.VocabSize == 0 || h.VocabSize == math.MinInt32 {
		return Config{}, fmt.Errorf("llama2c: implausible header: vocab_size is %d", h.VocabSize)
	}
	if h.Dim%h.Heads != 0 {
		return Config{}, fmt.Errorf("llama2c: implausible header: n_heads %d does not divide dim %d", h.Heads, h.Dim)
	}
	if h.KVHeads > h.Heads || h.Heads%h.KVHeads != 0 {
		return Config{}, fmt.Errorf("llama2c: implausible header: n_kv_heads %d does not divide n_heads %d", h.KVHeads, h.Heads)
	}
	if (h.Dim/h.Heads)%2 != 0 {
		return Config{}, fmt.Errorf("llama2c: implausible header: head size %d (dim %d / n_heads %d) is odd", h.Dim/h.Heads, h.Dim, h.Heads)
	}
	vocab := int(h.VocabSize)
	if vocab < 0 {
		vocab = -vocab
	}
	c := Config{
		Arch:           "llama",
		Dim:            int(h.Dim),
		HiddenDim:      int(h.HiddenDim),
		Layers:         int(h.Layers),
		Heads:          int(h.Heads),
		KVHeads:        int(h.KVHeads),
		HeadDim:        int(h.Dim / h.Heads),
		VocabSize:      vocab,
		MaxSeqLen:      int(h.SeqLen),
		RopeTheta:      10000,
		RopeStyle:      RopePairs,
		NormEps:        1e-5,
		TiedEmbeddings: h.VocabSize > 0,
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("llama2c: %w", err)
	}
	return c, nil
}

// errOverflow marks a size computation that does not fit in 64 bits.
var errOverflow = errors.New("size overflows")

func mulChecked(xs ...int) (uint64, error) {
	p := uint64(1)
	for _, x := range xs {
		hi, lo := bits.Mul64(p, uint64(x))
		if hi != 0 || lo > math.MaxInt64/8 {
			return 0, errOverflow
		}
		p = lo
	}
	return p, nil
}

// parseLlama2C parses a legacy llama2.c checkpoint held in data; tensor Data slices
// alias data.
func parseLlama2C(data []byte) (Config, map[string]*Tensor, error) {
	if len(data) < llama2cHeaderSize {
		return Config{}, nil, fmt.Errorf("llama2c: truncated: %d bytes, the header needs %d", len(data), llama2cHeaderSize)
	}
	if string(data[:4]) == "24ka" { // 0x616b3432 little-endian: llama2.c export.py version >= 1
		return Config{}, nil, fmt.Errorf("llama2c: versioned llama2.c export (magic \"ak42\", version %d) is not supported; only the legacy format", binary.LittleEndian.Uint32(data[4:]))
	}
	var hv [7]int32
	for i := range hv {
		hv[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	h := llama2cHeader{hv[0], hv[1], hv[2], hv[3], hv[4], hv[5], hv[6]}
	c, err := h.config()
	if err != nil {
		return Config{}, nil, err
	}
	hs := c.HeadDim
	kvDim := c.KVHeads * hs
	type arr struct {
		name   string
		layers int // 0: not per layer
		shape  []int
	}
	L := c.Layers
	arrays := []arr{
		{"token_embd.weight", 0, []int{c.VocabSize, c.Dim}},
		{"attn_norm.weight", L, []int{c.Dim}},
		{"attn_q.weight", L, []int{c.Heads * hs, c.Dim}},
		{"attn_k.weight", L, []int{kvDim, c.Dim}},
		{"attn_v.weight", L, []int{kvDim, c.Dim}},
		{"attn_output.weight", L, []int{c.Dim, c.Heads * hs}},
		{"ffn_norm.weight", L, []int{c.Dim}},
		{"ffn_gate.weight", L, []int{c.HiddenDim, c.Dim}}, // w1
		{"ffn_down.weight", L, []int{c.Dim, c.HiddenDim}}, // w2
		{"ffn_up.weight", L, []int{c.HiddenDim, c.Dim}},   // w3
		{"output_norm.weight", 0, []int{c.Dim}},
		{"", 0, []int{c.MaxSeqLen, hs / 2}}, // freq_cis_real (unused)
		{"", 0, []int{c.MaxSeqLen, hs / 2}}, // freq_cis_imag (unused)
	}
	if !c.TiedEmbeddings {
		arrays = append(arrays, arr{"output.weight", 0, []int{c.VocabSize, c.Dim}})
	}
	// Sizes first, with overflow checks, so the file length can be checked up front.
	var total uint64
	sizes := make([]uint64, len(arrays))
	for i, a := range arrays {
		n, err := mulChecked(a.shape...)
		if err == nil && a.layers > 0 {
			n, err = mulChecked(int(n), a.layers)
		}
		if err != nil || total+n*4 > math.MaxInt64/2 {
			return Config{}, nil, fmt.Errorf("llama2c: implausible header %+v: weight sizes overflow", h)
		}
		sizes[i] = n * 4
		total += n * 4
	}
	want := uint64(llama2cHeaderSize) + total
	if uint64(len(data)) < want {
		return Config{}, nil, fmt.Errorf("llama2c: file is %d bytes but its header %+v implies %d: truncated or not a llama2.c checkpoint", len(data), h, want)
	}
	if uint64(len(data)) > want {
		return Config{}, nil, fmt.Errorf("llama2c: file is %d bytes but its header %+v implies %d: %d unexpected trailing bytes", len(data), h, want, uint64(len(data))-want)
	}
	tensors := map[string]*Tensor{}
	off := llama2cHeaderSize
	for i, a := range arrays {
		size := int(sizes[i])
		if a.name != "" {
			if a.layers == 0 {
				tensors[a.name] = &Tensor{Name: a.name, Type: F32, Shape: a.shape, Data: data[off : off+size : off+size]}
			} else {
				per := size / a.layers
				for l := 0; l < a.layers; l++ {
					name := fmt.Sprintf("blk.%d.%s", l, a.name)
					s := off + l*per
					tensors[name] = &Tensor{Name: name, Type: F32, Shape: append([]int(nil), a.shape...), Data: data[s : s+per : s+per]}
				}
			}
		}
		off += size
	}
	if err := checkTensors(c, tensors); err != nil { // guards this function's own layout
		return Config{}, nil, fmt.Errorf("llama2c: %w", err)
	}
	return c, tensors, nil
}

// LoadLlama2C builds a Checkpoint from a legacy llama2.c checkpoint and its tokenizer.bin,
// both held in memory; tensor Data aliases model.
func LoadLlama2C(model, tokenizerBin []byte) (*Checkpoint, error) {
	c, tensors, err := parseLlama2C(model)
	if err != nil {
		return nil, err
	}
	v, err := parseLlama2CVocab(tokenizerBin, c.VocabSize)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Format: "llama2c", Config: c, Tensors: tensors, Vocab: v}, nil
}

// findTokenizer resolves the tokenizer.bin of a llama2.c checkpoint.
func findTokenizer(modelPath, explicit string, vocab int) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", &NoTokenizerError{Path: explicit, Err: withoutPath(err, explicit)}
		}
		return explicit, nil
	}
	dir := filepath.Dir(modelPath)
	cands := []string{filepath.Join(dir, fmt.Sprintf("tok%d.bin", vocab)), filepath.Join(dir, "tokenizer.bin")}
	for _, p := range cands {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("tokenizer %s: %w", p, withoutPath(err, p))
		}
	}
	return "", &NoTokenizerError{Tried: []string{filepath.Base(cands[0]), filepath.Base(cands[1])}}
}

// NoTokenizerError is Open's error for a llama2.c checkpoint without its tokenizer:
// the file Options.TokenizerPath names is missing (Path, Err), or none of the names
// looked for beside the model exists (Tried). It matches ErrNoTokenizer. Commands
// rewrite it to name their own flag (Hint).
type NoTokenizerError struct {
	Path  string
	Err   error
	Tried []string
}

func (e *NoTokenizerError) Error() string { return e.Hint("Options.TokenizerPath") }

// Hint is the error's text with the way to give a tokenizer named as the caller's
// user knows it (a flag such as -tokenizer).
func (e *NoTokenizerError) Hint(how string) string {
	if e.Path != "" {
		return fmt.Sprintf("%s: %s %s: %v", ErrNoTokenizer, how, e.Path, e.Err)
	}
	return fmt.Sprintf("%s for this llama2.c checkpoint: put %s beside the model, or give its path with %s",
		ErrNoTokenizer, strings.Join(e.Tried, " or "), how)
}

func (e *NoTokenizerError) Is(target error) bool { return target == ErrNoTokenizer }
func (e *NoTokenizerError) Unwrap() error        { return e.Err }

// readLlama2CVocab reads a llama2.c tokenizer.bin (small: read, not mapped).
func readLlama2CVocab(path string, vocab int) (*tokenizer.Vocab, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	v, err := parseLlama2CVocab(data, vocab)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return v, nil
}

// parseLlama2CVocab parses a llama2.c tokenizer.bin with tokenizer.ParseLlama2C. The
// file does not store its token count, so the entries (float32 score, int32 length,
// bytes, after an int32 max_token_length) are counted first and the count compared
// with the model's vocabulary size, which names a mismatch as such.
func parseLlama2CVocab(data []byte, want int) (*tokenizer.Vocab, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("tokenizer.bin truncated: %d bytes", len(data))
	}
	n, off := 0, 4
	for off < len(data) {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("tokenizer.bin truncated in token %d at byte %d", n, off)
		}
		l := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if l < 0 {
			return nil, fmt.Errorf("tokenizer.bin: token %d has negative length %d", n, l)
		}
		if int64(l) > int64(len(data)-off) {
			return nil, fmt.Errorf("tokenizer.bin truncated: token %d has length %d but %d bytes remain", n, l, len(data)-off)
		}
		off += int(l)
		n++
	}
	if n != want {
		return nil, fmt.Errorf("vocabulary has %d tokens but the model expects %d", n, want)
	}
	return tokenizer.ParseLlama2C(data, want)
}
