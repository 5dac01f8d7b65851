// Package enginetest holds stand-ins for what the engine runs. Fake is a model whose
// forward pass computes nothing, so benchmarks and tests of the serving stack
// (server, engine, scheduler) measure only their own cost.
package enginetest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// Fake is a model of a synthetic shape whose forward pass takes a fixed delay and
// computes nothing: the logits favour token (position*7+3) mod vocab, never EOS (2).
// It holds no weights; only workspaces and the KV cache take memory. It implements
// the engine's model interface (engine.Model).
type Fake struct {
	config model.Config
	be     backend.Backend
	delay  time.Duration
	mu     sync.Mutex
	rows   map[*model.Workspace]*fakeRows
}

// fakeRows is one workspace's logits, kept by the fake itself.
type fakeRows struct {
	logits []float32 // [MaxLogitRows][vocab]
	hot    []int32   // per row: the index last set, or -1 (row not clean)
}

// NewFake returns a fake of a synthetic shape ("synthetic:tiny", ...) on be, and the
// tokenizer of its vocabulary (tokenizer.SyntheticVocab).
func NewFake(shape string, be backend.Backend, stepDelay time.Duration) (*Fake, *tokenizer.Tokenizer, error) {
	c, err := model.SyntheticConfig(shape)
	if err != nil {
		return nil, nil, err
	}
	tok, err := tokenizer.New(tokenizer.SyntheticVocab(c.VocabSize))
	if err != nil {
		return nil, nil, err
	}
	return &Fake{config: c, be: be, delay: stepDelay, rows: map[*model.Workspace]*fakeRows{}}, tok, nil
}

// Spec is the fake's configuration.
func (f *Fake) Spec() *model.Config { return &f.config }

// Backend is the backend the fake allocates on.
func (f *Fake) Backend() backend.Backend { return f.be }

// NewWorkspace allocates a real workspace (the engine records events on its stream).
func (f *Fake) NewWorkspace(maxTokens, maxLogitRows int) (*model.Workspace, error) {
	return model.NewWorkspace(f.be, &f.config, maxTokens, maxLogitRows)
}

// NewKVCache allocates a real cache.
func (f *Fake) NewKVCache(blocks, blockSize int) (*backend.KVCache, error) {
	return f.be.AllocKV(f.config.Layers, blocks, blockSize, f.config.KVHeads, f.config.HeadDim)
}

// CaptureDecode refuses: the fake has no decode step to capture.
func (f *Fake) CaptureDecode(*model.Workspace, *backend.KVCache, int, int) (*model.DecodeGraph, error) {
	return nil, errors.New("decode graph: the fake model has no decode step to capture")
}

// Forward sleeps for the step delay and returns the logits rows the sequences ask
// for, as model.Model.Forward does.
func (f *Fake) Forward(ws *model.Workspace, _ *backend.KVCache, seqs []model.Seq) ([]float32, error) {
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	V := f.config.VocabSize
	rows := 0
	for _, s := range seqs {
		switch s.Logits {
		case model.LogitsLast:
			rows++
		case model.LogitsAll:
			rows += len(s.Tokens)
		}
	}
	if rows > ws.MaxLogitRows {
		return nil, fmt.Errorf("forward: %d logit rows for a workspace of %d", rows, ws.MaxLogitRows)
	}
	// Rows are cleared once; afterwards only the entry set last time is reset, so the
	// fake costs O(1) per row rather than a pass over the vocabulary. (A sampler that
	// masks entries to -Inf leaves them so; the fake never picks those.)
	f.mu.Lock()
	fr := f.rows[ws]
	if fr == nil {
		fr = &fakeRows{logits: make([]float32, ws.MaxLogitRows*V), hot: make([]int32, ws.MaxLogitRows)}
		for i := range fr.hot {
			fr.hot[i] = -1
		}
		f.rows[ws] = fr
	}
	f.mu.Unlock()
	out, hot := fr.logits[:rows*V], fr.hot
	r := 0
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
	for _, s := range seqs {
		switch s.Logits {
		case model.LogitsLast:
			emit(s.Pos + len(s.Tokens))
		case model.LogitsAll:
			for j := range s.Tokens {
				emit(s.Pos + j + 1)
			}
		}
	}
	return out, nil
}
