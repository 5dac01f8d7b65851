package chattemplate

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/jinja"
)

func TestRaiseException(t *testing.T) {
	// The fixture templates raise through RenderChat.
	mt, err := Parse(loadFixtures(t)["mistral-v0.1"])
	require.NoError(t, err)
	_, err = RenderChat(mt, []Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, true, nil, nil)
	var re *jinja.RaiseError
	require.True(t, errors.As(err, &re))
	require.Equal(t, "Conversation roles must alternate user/assistant/user/assistant/...", re.Message)
}

func TestRenderChat(t *testing.T) {
	fx := loadFixtures(t)
	special := map[string]string{"bos_token": "<s>", "eos_token": "</s>"}
	msgs := []Message{{Role: "system", Content: "Be nice."}, {Role: "user", Content: "Hi"}, {Role: "assistant", Content: "Hello!"}, {Role: "user", Content: "Bye"}}
	tests := []struct{ name, want string }{
		{"llama2", "<s>[INST] <<SYS>>\nBe nice.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]"},
		{"llama3", "<s><|start_header_id|>system<|end_header_id|>\n\nBe nice.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama3.1", "<s><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe nice.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"mistral-v0.3", "<s> [INST] Be nice.\n\nHi [/INST] Hello!</s> [INST] Bye [/INST]"},
		{"zephyr", "<|system|>\nBe nice.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|user|>\nBye</s>\n<|assistant|>\n"},
		{"chatml", "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := Parse(fx[tc.name])
			require.NoError(t, err)
			got, err := RenderChat(tpl, msgs, true, special, nil)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}

	// Llama 2 keeps an empty system prompt (Python: '' != false); the
	// JavaScript reference drops it, see doc.go.
	tpl, err := Parse(fx["llama2"])
	require.NoError(t, err)
	got, err := RenderChat(tpl, []Message{{Role: "system", Content: ""}, {Role: "user", Content: "Hi"}}, false, special, nil)
	require.NoError(t, err)
	require.Equal(t, "<s>[INST] <<SYS>>\n\n<</SYS>>\n\nHi [/INST]", got)

	// extra variables override, and a nil template falls back to Plain.
	got, err = RenderChat(tpl, msgs[1:2], false, special, map[string]any{"bos_token": "<BOS>"})
	require.NoError(t, err)
	require.Equal(t, "<BOS>[INST] Hi [/INST]", got)
	got, err = RenderChat(nil, msgs[1:2], true, nil, nil)
	require.NoError(t, err)
	require.Equal(t, "user: Hi\nassistant: ", got)
}

func TestStrftimeNow(t *testing.T) {
	tpl, err := Parse(`{{ strftime_now("%d %b %Y") }}`)
	require.NoError(t, err)
	got, err := RenderChat(tpl, nil, false, nil, map[string]any{jinja.NowKey: "2025-02-03"})
	require.NoError(t, err)
	require.Equal(t, "03 Feb 2025", got)
}

func TestPlain(t *testing.T) {
	require.Equal(t, "", Plain(nil, false))
	require.Equal(t, "assistant: ", Plain(nil, true))
	require.Equal(t, "system: S\nuser: Hi\n", Plain([]Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Hi"}}, false))
	require.Equal(t, "user: Hi\nassistant: ", Plain([]Message{{Role: "user", Content: "Hi"}}, true))
}

func TestDecodeMessages(t *testing.T) {
	msgs, err := DecodeMessages([]byte(`[{"role":"user","content":"hi"},{"role":"assistant","content":null}]`))
	require.NoError(t, err)
	require.Equal(t, []Message{{Role: "user", Content: "hi"}, {Role: "assistant", Content: ""}}, msgs)
	_, err = DecodeMessages([]byte(`[{"role":"user","content":[{"type":"text","text":"hi"}]}]`))
	require.ErrorContains(t, err, "message 0 (user): content must be a string, got list (multi-part content is not supported)")
	_, err = DecodeMessages([]byte(`{"role":"user"}`))
	require.ErrorContains(t, err, "must be a JSON array")
	_, err = DecodeMessages([]byte(`[{"content":"x"}]`))
	require.ErrorContains(t, err, `no string "role"`)
}

// TestConcurrentRender renders one template from many goroutines (run with
// -race): Template must be safe for concurrent use, including the lazy HF
// re-parse in RenderChat.
func TestConcurrentRender(t *testing.T) {
	tpl, err := Parse(loadFixtures(t)["llama3.1"])
	require.NoError(t, err)
	msgs := []Message{{Role: "user", Content: "Hi"}}
	want, err := RenderChat(tpl, msgs, true, map[string]string{"bos_token": "<s>"}, nil)
	require.NoError(t, err)
	tpl2, err := Parse(loadFixtures(t)["llama3.1"])
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := RenderChat(tpl2, msgs, true, map[string]string{"bos_token": "<s>"}, nil)
			if err != nil || got != want {
				t.Errorf("concurrent render: %v %q", err, got)
			}
		}()
	}
	wg.Wait()
}
