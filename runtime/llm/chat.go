package llm

import (
	"fmt"
	"sync"

	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// chat holds the parsed chat template, built on first use.
type chat struct {
	once sync.Once
	tmpl *chattemplate.Template
	err  error
}

// ChatPrompt renders a conversation with the model's chat template (or, without one,
// chattemplate.Plain) and encodes it: special-token text the template writes (e.g.
// <|eot_id|>) becomes those tokens, and BOS is added only when the template did not
// write it. As with transformers' apply_chat_template followed by encoding, special-
// token text inside message content is encoded as that special token too.
func (l *Loaded) ChatPrompt(msgs []chattemplate.Message, addGenerationPrompt bool) ([]int32, string, error) {
	return l.ChatPromptLimit(msgs, addGenerationPrompt, 0)
}

// ChatPromptLimit is ChatPrompt for a caller that needs only to know whether the
// prompt has more than limit tokens (a server checking its context): the encoding
// stops once past the limit (tokenizer.EncodeLimit), and more than limit ids come
// back then. A limit <= 0 means none.
func (l *Loaded) ChatPromptLimit(msgs []chattemplate.Message, addGenerationPrompt bool, limit int) ([]int32, string, error) {
	return l.ChatPromptTools(msgs, nil, addGenerationPrompt, limit)
}

// ChatPromptTools is ChatPromptLimit with tool definitions
// (chattemplate.RenderChatTools: templates that read "tools" render them in their own
// format; others, and models without a template, get the documented fallback system
// message).
func (l *Loaded) ChatPromptTools(msgs []chattemplate.Message, tools []chattemplate.Tool, addGenerationPrompt bool, limit int) ([]int32, string, error) {
	l.chat.once.Do(func() {
		if l.ChatTemplate != "" {
			l.chat.tmpl, l.chat.err = chattemplate.Parse(l.ChatTemplate)
		}
	})
	if l.chat.err != nil {
		return nil, "", fmt.Errorf("chat template of %s: %w", l.Path, l.chat.err)
	}
	tok := l.Tokenizer
	special := map[string]string{}
	if id := tok.BOS(); id >= 0 {
		special["bos_token"] = tok.Spelling(id)
	}
	if id := tok.EOS(); id >= 0 {
		special["eos_token"] = tok.Spelling(id)
	}
	text, err := chattemplate.RenderChatTools(l.chat.tmpl, msgs, tools, addGenerationPrompt, special, nil)
	if err != nil {
		return nil, "", fmt.Errorf("chat template of %s: %w", l.Path, err)
	}
	opt := tok.DefaultOptions()
	opt.ParseSpecial = l.chat.tmpl != nil
	if limit > 0 {
		limit++ // room for the BOS dropped below
	}
	ids, _ := tok.EncodeLimit(text, opt, limit)
	if opt.AddBOS && len(ids) > 1 && ids[0] == tok.BOS() && ids[1] == tok.BOS() {
		ids = ids[1:] // the template wrote BOS itself
	}
	return ids, text, nil
}
