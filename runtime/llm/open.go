package llm

import (
	"fmt"
	"slices"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// Loaded is a model with its tokenizer and the checkpoint it reads from.
type Loaded struct {
	*model.Model
	Tokenizer *tokenizer.Tokenizer
	Path      string
	Synthetic bool
	// ChatTemplate is the checkpoint's Jinja chat template ("" when it has none).
	ChatTemplate string
	// EOSIDs are the tokens that end generation: the tokenizer's, plus any the
	// checkpoint's generation config adds (Llama 3's <|eot_id|>).
	EOSIDs []int32
	// Defaults are the checkpoint's default sampling settings (nil fields: unset).
	Defaults loader.GenerationDefaults
	ck       *loader.Checkpoint
	chat     chat
}

// Close releases the checkpoint's memory mapping; the model is unusable afterwards.
func (l *Loaded) Close() error {
	if l.ck == nil {
		return nil
	}
	return l.ck.Close()
}

// Open loads a model by path — a GGUF file, a llama2.c .bin (tokenizer beside it or at
// tokenizerPath), a Hugging Face model directory, or "synthetic:<shape>" — onto a backend.
func Open(path, tokenizerPath string, be backend.Backend, opt model.Options) (*Loaded, error) {
	l, err := OpenTokenizer(path, tokenizerPath)
	if err != nil {
		return nil, err
	}
	if l.Synthetic {
		l.Model, err = model.Synthetic(path, be, opt)
	} else {
		l.Model, err = model.Load(l.ck, be, opt)
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// OpenTokenizer opens what Open opens except the weights: the tokenizer, chat template,
// end-of-sequence ids and generation defaults, for tokenizing without loading a model
// (the file is mapped, not read). Its Model is nil; Close releases the mapping.
func OpenTokenizer(path, tokenizerPath string) (*Loaded, error) {
	if model.IsSynthetic(path) {
		c, err := model.SyntheticConfig(path)
		if err != nil {
			return nil, err
		}
		return syntheticTokenizer(path, c.VocabSize)
	}
	ck, err := loader.Open(path, loader.Options{TokenizerPath: tokenizerPath})
	if err != nil {
		return nil, err
	}
	tok := ck.Tokenizer // formats such as HF directories come with a ready tokenizer
	if tok == nil {
		if ck.Vocab == nil {
			ck.Close()
			return nil, fmt.Errorf("%s: the checkpoint has no vocabulary", path)
		}
		if tok, err = tokenizer.New(ck.Vocab); err != nil {
			ck.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	if tok.VocabSize() != ck.Config.VocabSize {
		ck.Close()
		return nil, fmt.Errorf("%s: vocabulary has %d tokens but the model expects %d", path, tok.VocabSize(), ck.Config.VocabSize)
	}
	eos := append([]int32(nil), tok.EOSIDs()...)
	for _, id := range ck.EOSIDs {
		if !slices.Contains(eos, id) && id >= 0 && int(id) < ck.Config.VocabSize {
			eos = append(eos, id)
		}
	}
	return &Loaded{Tokenizer: tok, Path: path, ck: ck, ChatTemplate: ck.ChatTemplate, EOSIDs: eos, Defaults: ck.GenerationDefaults}, nil
}

func syntheticTokenizer(path string, vocab int) (*Loaded, error) {
	tok, err := tokenizer.New(tokenizer.SyntheticVocab(vocab))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Loaded{Tokenizer: tok, Path: path, Synthetic: true, EOSIDs: tok.EOSIDs()}, nil
}
