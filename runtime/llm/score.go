package llm

import (
	"fmt"
	"math"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
)

// Window is BOS followed by a slice of a token stream, scored teacher-forced; the
// predictions from ScoreFrom on count (earlier ones belong to the previous window,
// which saw them with more context).
type Window struct {
	IDs       []int32
	ScoreFrom int
}

// StridedWindows covers toks with windows of at most ctx ids (BOS included) starting
// every stride tokens, so that every token is predicted exactly once: the first from
// BOS alone, later ones with at least ctx-1-stride tokens of context.
func StridedWindows(bos int32, toks []int32, ctx, stride int) []Window {
	var ws []Window
	for s := 0; ; s += stride {
		end := min(s+ctx-1, len(toks))
		w := Window{IDs: append([]int32{bos}, toks[s:end]...)}
		if s > 0 {
			w.ScoreFrom = (ctx - 1) - stride
		}
		ws = append(ws, w)
		if end == len(toks) {
			return ws
		}
	}
}

// Scorer runs sequences of up to its context teacher-forced, with a private cache.
type Scorer struct {
	m      *model.Model
	ws     *model.Workspace
	kv     *backend.KVCache
	blocks []int32
}

// NewScorer prepares teacher-forced scoring of sequences of up to ctx tokens.
func NewScorer(m *model.Model, ctx int) (*Scorer, error) {
	if ctx <= 0 || ctx > m.Config.MaxSeqLen {
		return nil, fmt.Errorf("scorer: context %d outside 1..%d", ctx, m.Config.MaxSeqLen)
	}
	ws, err := m.NewWorkspace(ctx, ctx)
	if err != nil {
		return nil, err
	}
	nb := (ctx + model.DefaultBlockSize - 1) / model.DefaultBlockSize
	kv, err := m.NewKVCache(nb, model.DefaultBlockSize)
	if err != nil {
		return nil, err
	}
	s := &Scorer{m: m, ws: ws, kv: kv, blocks: make([]int32, nb)}
	for i := range s.blocks {
		s.blocks[i] = int32(i)
	}
	return s, nil
}

// Score returns, for every position i < len(ids)-1, the negative log-likelihood
// (natural log, computed in float64) of ids[i+1] and the argmax prediction.
func (s *Scorer) Score(ids []int32) (nll []float64, pred []int32, err error) {
	logits, err := s.m.Forward(s.ws, s.kv, []model.Seq{{Tokens: ids, Blocks: s.blocks, Logits: model.LogitsAll, Prompt: true}})
	if err != nil {
		return nil, nil, err
	}
	V := s.m.Config.VocabSize
	for i := 0; i+1 < len(ids); i++ {
		n, p := NLLArgmax(logits[i*V:(i+1)*V], ids[i+1])
		nll = append(nll, n)
		pred = append(pred, p)
	}
	return nll, pred, nil
}

// NLLArgmax is -log softmax(row)[target] in float64, and the row's argmax (lowest
// index on ties).
func NLLArgmax(row []float32, target int32) (float64, int32) {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	mx := float64(row[best])
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - mx)
	}
	return -(float64(row[target]) - mx - math.Log(sum)), int32(best)
}
