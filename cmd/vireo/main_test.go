package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/cli"
	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/internal/testpty"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// golden is ../shared/golden/stories260K.json's cases.
type golden struct {
	Prompt     string  `json:"prompt"`
	PromptIDs  []int32 `json:"prompt_ids"`
	GreedyIDs  []int32 `json:"greedy_ids"`
	GreedyText string  `json:"greedy_text"`
}

func goldenCases(t *testing.T) []golden {
	data, err := os.ReadFile(shared.Path(t, "golden", "stories260K.json"))
	require.NoError(t, err)
	var g struct{ Cases []golden }
	require.NoError(t, json.Unmarshal(data, &g))
	require.NotEmpty(t, g.Cases)
	return g.Cases
}

func stories(t *testing.T) string { return shared.Path(t, "models", "stories260K", "stories260K.bin") }

// TestGreedyMatchesGolden: with the default weights (auto: stories260K is an F32
// checkpoint, so f32) every golden prompt's greedy continuation is the reference's,
// through vireo run and the old flags-only form alike. (The old int8 default changed
// most of them.)
func TestGreedyMatchesGolden(t *testing.T) {
	path := stories(t)
	for _, g := range goldenCases(t) {
		if g.Prompt == "" {
			continue // an empty prompt reads standard input in vireo run; the old form covers it below
		}
		n := fmt.Sprint(len(g.GreedyIDs))
		for _, args := range [][]string{
			{"run", path, g.Prompt, "-temperature", "0", "-max-tokens", n, "-quiet"},
			{"-model", path, "-prompt", g.Prompt, "-temperature", "0", "-max-tokens", n, "-quiet"},
		} {
			var out, errOut bytes.Buffer
			require.NoError(t, run(args, &out, &errOut), errOut.String())
			require.Equal(t, g.Prompt+g.GreedyText+"\n", out.String(), "%v", args)
			require.Contains(t, errOut.String(), fmt.Sprintf("generated %s tokens, stop: length (-max-tokens %s)", n, n))
		}
	}
}

// TestStopReasons: the closing line says why generation stopped — -max-tokens, the
// context filling up (the case: a 502-token prompt with -max-tokens 500 in a
// 512-token context gives 10 tokens), or end of sequence — and times prefill and
// decode separately.
func TestStopReasons(t *testing.T) {
	path := stories(t)
	speed := regexp.MustCompile(`^prefill: (\d+) tokens? in [\d.]+ ms \([\d.]+ tokens/s\) \| decode: (?:(\d+) tokens? in [\d.]+ m?s \([\d.]+ tokens/s\)|no steps) \| generated (\d+) tokens?, stop: (.*)\n$`)
	check := func(args []string, prompt, decode, generated int, stop string) {
		t.Helper()
		var out, errOut bytes.Buffer
		require.NoError(t, run(append(args, "-quiet"), &out, &errOut))
		m := speed.FindStringSubmatch(errOut.String())
		require.NotNil(t, m, "speed line: %q", errOut.String())
		require.Equal(t, fmt.Sprint(prompt), m[1])
		if decode > 0 {
			require.Equal(t, fmt.Sprint(decode), m[2])
		} else {
			require.Contains(t, errOut.String(), "decode: no steps")
		}
		require.Equal(t, fmt.Sprint(generated), m[3])
		require.Equal(t, stop, m[4])
	}
	check([]string{"run", path, "Once upon a time", "-max-tokens", "30"}, 5, 29, 30, "length (-max-tokens 30)")
	check([]string{"run", path, "Once upon a time", "-max-tokens", "1"}, 5, 0, 1, "length (-max-tokens 1)")
	check([]string{"run", path, "Once upon a time", "-max-tokens", "0"}, 5, 0, 0, "length (-max-tokens 0)")
	check([]string{"run", path, "Once upon a time", "-ctx-size", "12"}, 5, 6, 7, "context full (12 tokens)")

	// The case: 502 prompt tokens, -max-tokens 500, a 512-token context.
	l, err := llm.OpenTokenizer(path, "")
	require.NoError(t, err)
	defer l.Close()
	words := strings.Repeat("the cat sat on the mat. ", 200)
	var prompt string
	for _, w := range strings.Fields(words) {
		next := strings.TrimSpace(prompt + " " + w)
		if len(l.Tokenizer.Encode(next, l.Tokenizer.DefaultOptions())) > 502 {
			break
		}
		prompt = next
	}
	n := len(l.Tokenizer.Encode(prompt, l.Tokenizer.DefaultOptions()))
	require.InDelta(t, 502, n, 3)
	check([]string{"run", path, prompt, "-max-tokens", "500"}, n, 512-n-1, 512-n, "context full (512 tokens)")

	// End of sequence: a copy of stories260K whose end-of-sequence token is ","
	// (the first greedy token after "Once upon a time").
	check([]string{"run", chatModel(t, "", ","), "Once upon a time", "-chat=false", "-temperature", "0"}, 5, 0, 1, "stop (end of sequence)")

	var out, errOut bytes.Buffer
	err = run([]string{"run", path, strings.Repeat("the cat sat on the mat. ", 100), "-quiet"}, &out, &errOut)
	require.ErrorContains(t, err, "the context holds 512 (-ctx-size), prompt and output together")
}

// chatModel writes stories260K as a GGUF file with a chat template (none when tmpl is
// "") and, when eos is set, that token as end-of-sequence; it returns the path.
func chatModel(t *testing.T, tmpl, eos string) string {
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.gguf"), loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	v := *ck.Vocab
	if eos != "" {
		found := false
		for i, s := range v.Tokens {
			if s == eos {
				v.EOS, found = int32(i), true
			}
		}
		require.True(t, found, eos)
	}
	meta, err := loader.GGUFMetadata("stories260K-chat", ck.Config, &v, tmpl)
	require.NoError(t, err)
	names, _ := loader.Canonical(ck.Config)
	var ts []*loader.Tensor
	for _, n := range names {
		ts = append(ts, ck.Tensors[n])
	}
	p := filepath.Join(t.TempDir(), "stories260K-chat.gguf")
	f, err := os.Create(p)
	require.NoError(t, err)
	require.NoError(t, loader.WriteGGUF(f, meta, ts))
	require.NoError(t, f.Close())
	return p
}

// chatTemplate is a small Jinja chat template in the usual shape.
const chatTemplate = `{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}`

// TestRunChatTemplate: vireo run MODEL PROMPT sends the prompt through the model's chat
// template when it has one (and says so), does not echo it, and -chat=false sends raw
// text; the old form's -chat does it on request.
func TestRunChatTemplate(t *testing.T) {
	path := chatModel(t, chatTemplate, "")
	m, err := llm.OpenTokenizer(path, "")
	require.NoError(t, err)
	defer m.Close()
	ids, _, err := m.ChatPrompt([]chattemplate.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}}, true)
	require.NoError(t, err)

	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"run", path, "Hi", "-system", "Be brief.", "-max-tokens", "4", "-ignore-eos"}, &out, &errOut))
	require.NotContains(t, out.String(), "Hi")
	require.Contains(t, errOut.String(), "the prompt goes through the model's chat template")
	require.Contains(t, errOut.String(), fmt.Sprintf("prefill: %d tokens", len(ids)))

	out.Reset()
	errOut.Reset()
	require.NoError(t, run([]string{"run", path, "Hi", "-chat=false", "-max-tokens", "4", "-ignore-eos"}, &out, &errOut))
	require.True(t, strings.HasPrefix(out.String(), "Hi"))
	raw := m.Tokenizer.Encode("Hi", m.Tokenizer.DefaultOptions())
	require.Contains(t, errOut.String(), fmt.Sprintf("prefill: %d tokens", len(raw)))
	require.NotEqual(t, len(ids), len(raw))

	// stories260K.bin has no template: the old form's -chat uses the plain format.
	out.Reset()
	errOut.Reset()
	bin := stories(t)
	require.NoError(t, run([]string{"-model", bin, "-chat", "-prompt", "Hi", "-max-tokens", "4", "-quiet", "-ignore-eos"}, &out, &errOut))
	require.NotContains(t, out.String(), "Hi", "the chat prompt is not echoed")
	lb, err := llm.Open(bin, "", cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	defer lb.Close()
	plain, _, err := lb.ChatPrompt([]chattemplate.Message{{Role: "user", Content: "Hi"}}, true)
	require.NoError(t, err)
	require.Contains(t, errOut.String(), fmt.Sprintf("prefill: %d tokens", len(plain)))
}

// TestChatInteractive drives the chat through -interactive: each reply is the model's
// greedy answer to the whole conversation rendered by the template (checked against a
// fresh one-shot run of that conversation), later turns reuse the cached prefix,
// commands work, and /bye leaves.
func TestChatInteractive(t *testing.T) {
	path := chatModel(t, chatTemplate, "")
	input := "Hello\n/help\n/nope\n\"\"\"\nTell me\na story\n\"\"\"\n/bye\nnever read\n"
	var out, errOut bytes.Buffer
	err := runIn([]string{"run", path, "-interactive", "-temperature", "0", "-max-tokens", "12", "-ignore-eos", "-verbose", "-quiet"},
		strings.NewReader(input), &out, &errOut)
	require.NoError(t, err, errOut.String())
	transcript := out.String()
	require.Contains(t, transcript, "/bye           leave (Ctrl-D too)")
	require.Contains(t, transcript, "unknown command /nope (/help lists them)")
	require.Contains(t, transcript, "... ... ... ", "the multi-line message's continuation prompts")
	require.NotContains(t, transcript, "never read")
	turns := strings.Split(transcript, ">>> ")
	require.Len(t, turns, 6, "%q", transcript) // "", reply 1, help, unknown, reply 2, after /bye
	reply1 := strings.TrimSuffix(turns[1], "\n")
	reply2 := strings.TrimSuffix(strings.TrimPrefix(turns[4], "... ... ... "), "\n")

	// Each reply is what a fresh run gives on the conversation so far.
	l, err := llm.Open(path, "", cpu.New(cpu.Options{}), model.Options{})
	require.NoError(t, err)
	defer l.Close()
	conv := []chattemplate.Message{{Role: "user", Content: "Hello"}}
	want1 := greedyReply(t, l, conv, 12)
	require.Equal(t, want1, reply1)
	conv = append(conv, chattemplate.Message{Role: "assistant", Content: want1}, chattemplate.Message{Role: "user", Content: "Tell me\na story"})
	require.Equal(t, greedyReply(t, l, conv, 12), reply2)

	// The second turn prefilled only what the first left out of the cache.
	lines := regexp.MustCompile(`prefill: (\d+) tokens in [^|]*?(?:, (\d+) cached)? \|`).FindAllStringSubmatch(errOut.String(), -1)
	require.Len(t, lines, 2, errOut.String())
	ids2, _, err := l.ChatPrompt(conv, true)
	require.NoError(t, err)
	require.Equal(t, "", lines[0][2])
	require.NotEqual(t, "", lines[1][2], "the second turn reuses the cache")
	require.Equal(t, fmt.Sprint(len(ids2)), fmt.Sprint(atoi(t, lines[1][1])+atoi(t, lines[1][2])))

	// End of input leaves too.
	out.Reset()
	require.NoError(t, runIn([]string{"run", path, "-interactive", "-max-tokens", "2", "-quiet"}, strings.NewReader("Hi\n"), &out, &errOut))
	require.Equal(t, 3, strings.Count(out.String(), ">>> ")+1)
}

// TestChatContextFull: when the conversation outgrows -ctx-size the oldest exchange is
// forgotten and the chat says so; a message that cannot fit at all is refused and the
// chat goes on.
func TestChatContextFull(t *testing.T) {
	path := chatModel(t, chatTemplate, "")
	var out, errOut bytes.Buffer
	input := "Once upon a time\nThe cat sat on the\n" + strings.Repeat("very long ", 40) + "\nLily and Ben\n/bye\n"
	require.NoError(t, runIn([]string{"run", path, "-interactive", "-ctx-size", "64", "-max-tokens", "8", "-ignore-eos", "-quiet"},
		strings.NewReader(input), &out, &errOut))
	require.Contains(t, errOut.String(), "(context full (64 tokens): the oldest 2 messages of the conversation are forgotten)")
	require.Regexp(t, `the message is too long: with the template it takes \d+ tokens, and the context holds 64 \(-ctx-size\)`, out.String())
	require.Equal(t, 5, strings.Count(out.String(), ">>> "))
}

func atoi(t *testing.T, s string) int {
	var n int
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}

// greedyReply is the greedy reply of an independent session to a conversation.
func greedyReply(t *testing.T, l *llm.Loaded, conv []chattemplate.Message, n int) string {
	ids, _, err := l.ChatPrompt(conv, true)
	require.NoError(t, err)
	s, err := llm.NewSession(l.Model, 0, 512)
	require.NoError(t, err)
	logits, err := s.Feed(ids)
	require.NoError(t, err)
	var out []int32
	for len(out) < n {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		out = append(out, int32(best))
		if len(out) < n {
			logits, err = s.Feed([]int32{int32(best)})
			require.NoError(t, err)
		}
	}
	return l.Tokenizer.Decode(out)
}

// TestTerminalEscapes: on a terminal, bytes that are not UTF-8 and control characters
// in generated text are escaped; into a pipe the same run writes the bytes as they are.
// synthetic:tiny's byte-level vocabulary makes random bytes.
func TestTerminalEscapes(t *testing.T) {
	args := []string{"run", "synthetic:tiny", "Hello", "-temperature", "1", "-seed", "7", "-max-tokens", "200", "-ignore-eos", "-quiet"}
	var pipe, errOut bytes.Buffer
	require.NoError(t, run(args, &pipe, &errOut))
	raw := pipe.String()
	require.Regexp(t, `[^\x20-\x7e\n]`, raw, "the run makes bytes a terminal must not get raw")

	p := testpty.New(t)
	require.NoError(t, runIn(args, strings.NewReader(""), p.TTY, &errOut))
	shown := p.Output()
	require.Equal(t, cli.EscapeTerminal(raw), shown)
	require.NotContains(t, shown, "\x1b")
	require.Regexp(t, `\\x[0-9a-f]{2}`, shown)
}

// TestRunStartsChatOnTerminal: with no prompt, a terminal on standard input starts the
// chat, and a pipe gives the prompt.
func TestRunStartsChatOnTerminal(t *testing.T) {
	path := stories(t)
	p := testpty.New(t)
	_, err := p.Master.WriteString("/bye\n")
	require.NoError(t, err)
	var out, errOut bytes.Buffer
	require.NoError(t, runIn([]string{"run", path, "-quiet"}, p.TTY, &out, &errOut))
	require.Equal(t, ">>> ", out.String())
	require.Contains(t, errOut.String(), "Chatting with")

	out.Reset()
	errOut.Reset()
	require.NoError(t, runIn([]string{"run", path, "-temperature", "0", "-max-tokens", "8", "-quiet"}, strings.NewReader("Once upon a time\n"), &out, &errOut))
	require.True(t, strings.HasPrefix(out.String(), "Once upon a time, there was a little girl"), out.String())

	err = runIn([]string{"run", path}, strings.NewReader("  \n"), &out, &errOut)
	require.EqualError(t, err, "no prompt: give one after the model, pipe one in, or chat with -interactive")
}

func TestSyntheticDefault(t *testing.T) {
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"-max-tokens", "5", "-ignore-eos"}, &out, &errOut))
	require.Contains(t, errOut.String(), "synthetic model")
	require.Contains(t, errOut.String(), `"weight_types": "f32 ×29"`, "auto: a synthetic model counts as F32")
	require.Contains(t, errOut.String(), "generated 5 tokens, stop: length (-max-tokens 5)")

	// Loading logs what it does (not a terminal: lines, no bar).
	require.Contains(t, errOut.String(), "INFO\tloading model\t{\"model\": \"synthetic:tiny\"}")
	require.NotContains(t, errOut.String(), "█")
}

// TestErrorTexts: what a user reads for common mistakes — each path once, no doubled
// "vireo:" prefix (main adds the one), the flag to use named.
func TestErrorTexts(t *testing.T) {
	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	require.NoError(t, os.WriteFile(readme, []byte("# Vireo\n\nVireo is an LLM inference runtime and server written in Go.\n"), 0o644))
	data, err := os.ReadFile(stories(t))
	require.NoError(t, err)
	lonely := filepath.Join(dir, "lonely.bin")
	require.NoError(t, os.WriteFile(lonely, data, 0o644))
	missing := filepath.Join(dir, "missing.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-device", "cuda"}, "-device cuda: this binary was built without CUDA (build it with make cuda); only -device cpu is available"},
		{[]string{"run", "m.gguf", "-device", "tpu"}, `-device "tpu": unknown device; this binary has [cpu]`},
		{[]string{"run", readme, "hi"}, readme + ": not a model file (expected GGUF, llama2.c .bin or a Hugging Face directory)"},
		{[]string{"run", missing, "hi"}, missing + ": no such file or directory"},
		{[]string{"run", lonely, "hi"}, lonely + ": no tokenizer file for this llama2.c checkpoint: put tok512.bin or tokenizer.bin beside the model, or give its path with -tokenizer FILE"},
		{[]string{"run", lonely, "hi", "-tokenizer", missing}, lonely + ": no tokenizer file: -tokenizer FILE " + missing + ": no such file or directory"},
		{[]string{"tokenize", lonely, "hi"}, lonely + ": no tokenizer file for this llama2.c checkpoint: put tok512.bin or tokenizer.bin beside the model, or give its path with -tokenizer FILE"},
		{[]string{"-weights", "int4"}, `invalid value "int4" for flag -weights: must be auto, int8, q8_0 or f32`},
		{[]string{"run", "m", "-quantization", "q4"}, `invalid value "q4" for flag -quantization: must be auto, int8, q8_0 or f32`},
		{[]string{"-max-tokens", "-2"}, "-max-tokens must be >= 0"},
		{[]string{"stray"}, `unknown command "stray": vireo help lists the commands (to generate text: vireo run MODEL PROMPT)`},
		{[]string{"-model", "m", "stray"}, `unexpected argument "stray" (the prompt goes in -prompt, or: vireo run MODEL PROMPT)`},
		{[]string{"run"}, "run needs a model: vireo run MODEL [PROMPT] (vireo help run; synthetic:tiny is built in)"},
		{[]string{"run", "m", "a", "-prompt", "b"}, `two prompts: "a" and -prompt "b"`},
		{[]string{"run", "m", "a", "-interactive"}, "-interactive reads the messages from standard input: give no prompt"},
		{[]string{"-temperature", "-1"}, "temperature"},
		{[]string{"-model", "synthetic:nope"}, `unknown synthetic model "synthetic:nope"`},
	} {
		var out, errOut bytes.Buffer
		err := run(c.args, &out, &errOut)
		require.Error(t, err, "%v", c.args)
		require.Contains(t, err.Error(), c.want, "%v", c.args)
		require.NotContains(t, err.Error(), "vireo:", "%v: main adds the prefix", c.args)
		require.NotContains(t, err.Error(), "loader:", "%v", c.args)
		require.NotContains(t, err.Error(), "Options.", "%v: a Go option named to a command's user", c.args)
	}
}

// TestHelpTexts: every help lists Hugging Face directories among the models it takes
// and documents -quiet where there is one.
func TestHelpTexts(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"run MODEL [PROMPT]", "serve MODEL", "bench COMMAND", "tokenize MODEL TEXT", "version", "Hugging Face model directory"}},
		{[]string{"--help"}, []string{"Usage: vireo COMMAND", "Hugging Face model directory"}},
		{[]string{"help", "run"}, []string{"Usage: vireo run MODEL [PROMPT] [flags]", "Hugging Face model directory", "-quiet", "no log lines and no progress", "-interactive", "-quantization", "/bye"}},
		{[]string{"-model", "m", "-help"}, []string{"Usage: vireo [flags]", "Hugging Face model directory", "-quiet"}},
		{[]string{"help", "serve"}, []string{"Usage: vireo serve [MODEL] [flags]", "Hugging Face model directory", "--quantization", "vireo serve ../shared"}},
		{[]string{"help", "bench"}, []string{"Usage: bench <command>", "weight-configs", "Hugging Face model directory"}},
		{[]string{"help", "tokenize"}, []string{"Usage: vireo tokenize", "Hugging Face model directory"}},
		{[]string{"help", "quantize"}, []string{"Usage: vireo quantize", "Hugging Face model directory", "-quiet"}},
		{[]string{"help", "pull"}, []string{"Usage: vireo pull", "-quiet"}},
	} {
		var out bytes.Buffer
		err := run(c.args, &out, &out)
		if err != nil {
			require.ErrorIs(t, err, flagErrHelp, "%v", c.args)
		}
		for _, w := range c.want {
			require.Contains(t, out.String(), w, "%v", c.args)
		}
	}
}

// TestVersion: vireo --version, vireo version, and -version on a subcommand.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}, {"run", "m", "--version"}, {"bench", "--version"}, {"serve", "--version"}} {
		var out, errOut bytes.Buffer
		require.NoError(t, run(args, &out, &errOut), "%v", args)
		require.Regexp(t, `^vireo( serve| bench)? \d+\.\d+\.\d+\S* \(.*go1\.\d+.*devices: cpu.*\)\n$`, out.String(), "%v", args)
	}
}

// TestTokenize: the ids of the golden prompts, as the reference encodes them, without
// loading the weights.
func TestTokenize(t *testing.T) {
	path := stories(t)
	for _, g := range goldenCases(t) {
		if g.Prompt == "" {
			continue
		}
		var out, errOut bytes.Buffer
		require.NoError(t, run([]string{"tokenize", path, g.Prompt, "-ids"}, &out, &errOut))
		want, _ := json.Marshal(g.PromptIDs)
		require.Equal(t, string(want)+"\n", out.String())
	}
	var out, errOut bytes.Buffer
	require.NoError(t, runIn([]string{"tokenize", path}, strings.NewReader("Once upon a time\n"), &out, &errOut))
	require.Equal(t, "  1  \"<s>\"\n403  \" Once\"\n407  \" upon\"\n261  \" a\"\n378  \" time\"\n5 tokens\n", out.String())
	out.Reset()
	require.NoError(t, run([]string{"tokenize", "-no-bos", "-ids", path, "Once"}, &out, &errOut))
	require.Equal(t, "[403]\n", out.String())
}

var flagErrHelp = flag.ErrHelp

// TestRunBlockTypesNative: by default (auto) a GGUF file's quantized matrices run in
// their own type on the CPU; --quantization int8 or f32 converts them.
func TestRunBlockTypesNative(t *testing.T) {
	path := shared.Path(t, "golden", "gguf-quants", "models", "synth256-Q4_K_M.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, `"weight_types": "q4_k ×13, q6_k ×3"`},
		{[]string{"--quantization", "int8"}, `"weight_types": "int8 ×16"`}, // the embedding and classifier too
		{[]string{"--quantization", "int8", "-int8-embedding=false"}, `"weight_types": "int8 ×14, f32 ×2"`},
		{[]string{"-weights", "f32"}, `"weight_types": "f32 ×16"`},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"run", path, "Once upon a time", "-max-tokens", "3", "-ignore-eos", "-temperature", "0"}, c.args...)
		require.NoError(t, run(args, &out, &errOut), errOut.String())
		require.Contains(t, errOut.String(), c.want)
	}
}
