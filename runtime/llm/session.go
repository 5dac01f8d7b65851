package llm

import (
	"fmt"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/model"
)

// Session runs a single sequence with a private KV cache: the one-shot CLI and tests use
// it; serving goes through the engine, which shares one cache among many sequences.
type Session struct {
	m      *model.Model
	ws     *model.Workspace
	kv     *backend.KVCache
	blocks []int32
	pos    int
	chunk  int
	lora   int // Seq.LoRA of its passes: 1 + the adapter slot, 0 for none
}

// NewSession prepares a sequence of up to maxLen tokens (0: the model's context),
// prefilling prompts in chunks of up to chunk tokens.
func NewSession(m *model.Model, maxLen, chunk int) (*Session, error) {
	if maxLen <= 0 || maxLen > m.Config.MaxSeqLen {
		maxLen = m.Config.MaxSeqLen
	}
	if chunk <= 0 {
		chunk = 512
	}
	chunk = min(chunk, maxLen)
	nb := (maxLen + model.DefaultBlockSize - 1) / model.DefaultBlockSize
	kv, err := m.NewKVCache(nb, model.DefaultBlockSize)
	if err != nil {
		return nil, err
	}
	ws, err := m.NewWorkspace(chunk, 1)
	if err != nil {
		return nil, err
	}
	s := &Session{m: m, ws: ws, kv: kv, chunk: chunk, blocks: make([]int32, nb)}
	for i := range s.blocks {
		s.blocks[i] = int32(i)
	}
	return s, nil
}

// Pos is the number of tokens in the cache.
func (s *Session) Pos() int { return s.pos }

// Capacity is the most tokens the session holds.
func (s *Session) Capacity() int { return len(s.blocks) * model.DefaultBlockSize }

// Feed appends prompt tokens to the sequence (model.Seq.Prompt: on a device, int8
// matmuls quantize their activations, W8A8) and returns the logits after the last one
// (valid until the next call).
func (s *Session) Feed(tokens []int32) ([]float32, error) { return s.feed(tokens, true) }

// FeedGenerated is Feed for tokens the model generated (sampled, or accepted drafts):
// they run with the numerics of a decode row (W8A16 on a device), as the engine runs
// them.
func (s *Session) FeedGenerated(tokens []int32) ([]float32, error) { return s.feed(tokens, false) }

func (s *Session) feed(tokens []int32, prompt bool) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("session: nothing to feed")
	}
	if s.pos+len(tokens) > s.Capacity() {
		return nil, fmt.Errorf("session: %d tokens after %d exceed the context of %d", len(tokens), s.pos, s.Capacity())
	}
	var logits []float32
	for i := 0; i < len(tokens); i += s.chunk {
		part := tokens[i:min(i+s.chunk, len(tokens))]
		mode := model.LogitsNone
		if i+len(part) == len(tokens) {
			mode = model.LogitsLast
		}
		out, err := s.m.Forward(s.ws, s.kv, []model.Seq{{Tokens: part, Pos: s.pos, Blocks: s.blocks, Logits: mode, LoRA: s.lora, Prompt: prompt}})
		if err != nil {
			return nil, err
		}
		s.pos += len(part)
		logits = out
	}
	return logits, nil
}

// SetLoRA applies the adapter in slot of set (model.LoRASet) to the session's passes
// from now on; a nil set removes it. Tokens already in the cache keep the KV they got.
func (s *Session) SetLoRA(set *model.LoRASet, slot int) {
	s.ws.SetLoRA(set)
	s.lora = 0
	if set != nil {
		s.lora = slot + 1
	}
}

// Reset empties the sequence.
func (s *Session) Reset() { s.pos = 0 }

// Truncate keeps the first n tokens of the sequence (n >= Pos keeps all): the next
// Feed continues from there, as when a chat is re-rendered and only its first n
// tokens are unchanged. The cache entries past n are overwritten, never read.
func (s *Session) Truncate(n int) { s.pos = max(0, min(s.pos, n)) }
