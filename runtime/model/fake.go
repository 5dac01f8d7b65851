package model

import (
	"fmt"
	"sync"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// fakeForward replaces the arithmetic of a forward pass with a fixed delay and cheap
// deterministic logits, so benchmarks of the serving stack (server, engine,
// scheduler) measure only their own cost.
type fakeForward struct {
	delay time.Duration
	mu    sync.Mutex
	hot   map[*Workspace][]int32 // per logits row: the index last set, or -1 (row not clean)
}

// Fake returns a model of a synthetic shape whose forward pass takes stepDelay and
// computes nothing: the logits favour token (position*7+3) mod vocab, never EOS.
// It allocates no weights; only workspaces and the KV cache take memory.
func Fake(shape string, be backend.Backend, stepDelay time.Duration) (*Loaded, error) {
	c, err := SyntheticConfig(shape)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.New(syntheticVocab(c.VocabSize))
	if err != nil {
		return nil, err
	}
	m := &Model{Config: c, be: be, rope: ropeFor(&c), fake: &fakeForward{delay: stepDelay, hot: map[*Workspace][]int32{}}}
	return &Loaded{Model: m, Tokenizer: tok, Path: "fake:" + shape, Synthetic: true}, nil
}

func (f *fakeForward) forward(m *Model, ws *Workspace, seqs []Seq) ([]float32, error) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	V := m.Config.VocabSize
	rows := 0
	for _, s := range seqs {
		switch s.Logits {
		case LogitsLast:
			rows++
		case LogitsAll:
			rows += len(s.Tokens)
		}
	}
	if rows > ws.MaxLogitRows {
		return nil, fmt.Errorf("forward: %d logit rows for a workspace of %d", rows, ws.MaxLogitRows)
	}
	out := ws.host[:rows*V]
	// Rows are cleared once; afterwards only the entry set last time is reset, so the
	// fake costs O(1) per row rather than a pass over the vocabulary. (A sampler that
	// masks entries to -Inf leaves them so; the fake never picks those.)
	f.mu.Lock()
	hot := f.hot[ws]
	if hot == nil {
		hot = make([]int32, ws.MaxLogitRows)
		for i := range hot {
			hot[i] = -1
		}
		f.hot[ws] = hot
	}
	f.mu.Unlock()
	r := 0
	for _, s := range seqs {
		emit := func(pos int) {
			row := out[r*V : (r+1)*V]
			if hot[r] < 0 {
				clear(row)
			} else {
				row[hot[r]] = 0
			}
			best := (pos*7 + 3) % V
			if best == 2 { // keep clear of EOS
				best = 3
			}
			row[best] = 10
			hot[r] = int32(best)
			r++
		}
		switch s.Logits {
		case LogitsLast:
			emit(s.Pos + len(s.Tokens))
		case LogitsAll:
			for j := range s.Tokens {
				emit(s.Pos + j + 1)
			}
		}
	}
	return out, nil
}
