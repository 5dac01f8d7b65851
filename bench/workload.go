package bench

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
)

// Prompt is one request of a workload: token ids (random workloads) or text (a prompts
// file), and the number of tokens to generate.
type Prompt struct {
	IDs       []int32 `json:"-"`
	Text      string  `json:"-"`
	InputLen  int     `json:"input_len"` // tokens when known (ids), else 0
	OutputLen int     `json:"output_len"`
}

// WorkloadConfig describes the prompts of a load run.
type WorkloadConfig struct {
	NumPrompts  int     `json:"num_prompts"`
	InputLen    int     `json:"input_len"`
	OutputLen   int     `json:"output_len"`
	RangeRatio  float64 `json:"range_ratio"`            // lengths uniform in [len*(1-r), len*(1+r)]
	PromptsFile string  `json:"prompts_file,omitempty"` // one prompt per line; empty: random token ids
	VocabSize   int     `json:"vocab_size"`             // random ids are drawn from [FirstID, VocabSize)
	FirstID     int     `json:"first_id"`
	BOS         int32   `json:"bos"` // prepended to random prompts; < 0: none
	Seed        uint64  `json:"seed"`
	// FixedOutput asks for exactly OutputLen tokens (ignore_eos, min_tokens = max_tokens)
	// instead of letting the model stop at EOS.
	FixedOutput bool `json:"fixed_output"`
}

// drawLen draws a length uniformly in [n*(1-r), n*(1+r)], at least 1 (vLLM's random
// dataset).
func drawLen(rng *rand.Rand, n int, r float64) int {
	if r <= 0 {
		return max(1, n)
	}
	lo := max(1, int(math.Floor(float64(n)*(1-r))))
	hi := max(lo, int(math.Ceil(float64(n)*(1+r))))
	return lo + rng.IntN(hi-lo+1)
}

// Prompts builds the workload: count prompts (n > NumPrompts lets warm-up requests come
// from the same distribution).
func (w WorkloadConfig) Prompts(n int) ([]Prompt, error) {
	if w.OutputLen <= 0 {
		return nil, fmt.Errorf("output length must be positive, got %d", w.OutputLen)
	}
	if w.RangeRatio < 0 || w.RangeRatio >= 1 {
		return nil, fmt.Errorf("range ratio must be in [0, 1), got %g", w.RangeRatio)
	}
	rng := rand.New(rand.NewPCG(w.Seed, 0x3c6ef372fe94f82b))
	var lines []string
	if w.PromptsFile != "" {
		var err error
		if lines, err = readLines(w.PromptsFile); err != nil {
			return nil, err
		}
	} else {
		if w.InputLen <= 0 {
			return nil, fmt.Errorf("input length must be positive, got %d", w.InputLen)
		}
		if w.VocabSize <= w.FirstID {
			return nil, fmt.Errorf("random prompts need a vocabulary above id %d, got size %d", w.FirstID, w.VocabSize)
		}
	}
	out := make([]Prompt, n)
	for i := range out {
		p := &out[i]
		p.OutputLen = drawLen(rng, w.OutputLen, w.RangeRatio)
		if lines != nil {
			p.Text = lines[i%len(lines)]
			continue
		}
		in := drawLen(rng, w.InputLen, w.RangeRatio)
		p.IDs = make([]int32, 0, in)
		if w.BOS >= 0 {
			p.IDs = append(p.IDs, w.BOS)
		}
		for len(p.IDs) < in {
			p.IDs = append(p.IDs, int32(w.FirstID+rng.IntN(w.VocabSize-w.FirstID)))
		}
		p.InputLen = len(p.IDs)
	}
	return out, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("prompts file: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("prompts file %s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("prompts file %s has no non-empty line", path)
	}
	return lines, nil
}
