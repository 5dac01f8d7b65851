// Package chattemplate renders chat templates: the Jinja templates that
// Hugging Face checkpoints ship as tokenizer_config.json "chat_template" and
// GGUF files as "tokenizer.chat_template", turning a list of messages into the
// prompt text a model was trained on. The Jinja language itself is
// internal/jinja.
//
// # API
//
//	t, err := chattemplate.Parse(src)          // *jinja.SyntaxError names line:col and what was expected
//	out, err := chattemplate.RenderChat(t, msgs, true,
//		map[string]string{"bos_token": "<s>", "eos_token": "</s>"},
//		map[string]any{"tools": tools, "date_string": "26 Jul 2024"})
//	out := chattemplate.Plain(msgs, true)      // for models without a template
//
// RenderChat does what transformers' apply_chat_template does: the template is
// compiled with trim_blocks and lstrip_blocks on (jinja.HFOptions) and rendered
// with messages, add_generation_prompt, the special tokens and the extra
// variables. Plain is the fallback for models without a template: one
// "role: content\n" line per message, then "assistant: " when a generation
// prompt is wanted. RenderChat with a nil template returns Plain.
//
// Messages carry string content. DecodeMessages reads an OpenAI-style JSON
// messages array and rejects list-of-parts content with an error naming the
// message. Richer values (tool calls, tools with JSON schemas) go in as extra
// values: jinja.DecodeJSON reads JSON into template values keeping object key
// order, which tojson output then follows; Go maps are read with sorted keys.
// A template that calls raise_exception fails with a *jinja.RaiseError; one
// that exceeds the render limits with a *jinja.LimitError.
//
// # Testing against the reference
//
// reference_test.go renders the fixture templates in testdata/templates (Llama
// 2, Llama 3, Llama 3.1 with tools, Mistral v0.1 and v0.3, Zephyr/TinyLlama,
// ChatML, Qwen 2, Qwen 2.5 with tools, Gemma) and synthetic feature templates
// with this package and with @huggingface/jinja (the engine transformers.js
// uses) and requires identical output. It is skipped unless the reference is
// installed:
//
//	npm ci --prefix runtime/tokenizer/chattemplate/testdata/node
package chattemplate
