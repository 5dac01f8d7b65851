package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/internal/testref"
)

// tinyByteLevelJSON is a small byte-level BPE tokenizer.json in Llama 3's layout: all
// 256 byte tokens, a few merges, two special tokens.
func tinyByteLevelJSON(edit func(doc map[string]any)) []byte {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	merges := []any{"Ġ t", []string{"h e"}, "Ġt he", "l l", "he ll", "hell o"}
	merges[1] = []string{"h", "e"}
	for i, m := range []string{"Ġt", "he", "Ġthe", "ll", "hell", "hello"} {
		vocab[m] = 256 + i
	}
	doc := map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 262, "content": "<|begin_of_text|>", "special": true},
			map[string]any{"id": 263, "content": "<|eot_id|>", "special": true},
			map[string]any{"id": 264, "content": "[sw]", "special": false, "single_word": true, "lstrip": true, "rstrip": true},
		},
		"normalizer": nil,
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": llama3Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel"},
			map[string]any{"type": "TemplateProcessing", "single": []any{
				map[string]any{"SpecialToken": map[string]any{"id": "<|begin_of_text|>"}},
				map[string]any{"Sequence": map[string]any{"id": "A"}},
			}},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "ignore_merges": true, "byte_fallback": false},
	}
	if edit != nil {
		edit(doc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err)
	}
	return b
}

func TestHFByteLevelTiny(t *testing.T) {
	tok, err := FromHFTokenizerJSON(tinyByteLevelJSON(nil), []byte(`{"eos_token": "<|eot_id|>"}`))
	require.NoError(t, err)
	assert.Equal(t, 265, tok.VocabSize())
	assert.Equal(t, int32(262), tok.BOS())
	assert.Equal(t, int32(263), tok.EOS())
	assert.Equal(t, []int32{263}, tok.EOSIDs())
	assert.Equal(t, EncodeOptions{AddBOS: true, ParseSpecial: true}, tok.DefaultOptions())
	b := func(c byte) int32 { return int32(c) }
	assert.Equal(t, []int32{262, 261, 258}, tok.Encode("hello the", tok.DefaultOptions()))
	assert.Equal(t, []int32{261, 263, b('x')}, tok.Encode("hello<|eot_id|>x", tok.DefaultOptions())[1:])
	plain := tok.Encode("<|eot_id|>", EncodeOptions{})
	assert.NotContains(t, plain, 263)
	assert.Equal(t, "<|eot_id|>", tok.Decode(plain))
	assert.Equal(t, "hello the", tok.Decode([]int32{262, 261, 258}), "no space is dropped after BOS")
	assert.Equal(t, "", tok.Piece(263), "control tokens decode to nothing")
	id, ok := tok.TokenID("<|eot_id|>")
	assert.True(t, ok)
	assert.Equal(t, int32(263), id)
	id, ok = tok.TokenID("Ġthe")
	assert.True(t, ok)
	assert.Equal(t, int32(258), id)
	_, ok = tok.TokenID("nope")
	assert.False(t, ok)

	// lstrip/rstrip swallow the spaces around; single_word needs word boundaries.
	assert.Equal(t, []int32{b('a'), 264, b('b')}, tok.Encode("a  [sw]  b", EncodeOptions{ParseSpecial: true}))
	assert.NotContains(t, tok.Encode("a[sw]b", EncodeOptions{ParseSpecial: true}), 264)
	assert.Equal(t, "[sw]", tok.Piece(264), "user-defined tokens decode to their text")

	// Stream: a four-byte emoji arrives one byte token at a time.
	ids := tok.Encode("🚀 é", EncodeOptions{})
	require.Len(t, ids, 7)
	st := tok.NewStream(true)
	var outs []string
	for _, id := range ids {
		outs = append(outs, st.Add(id))
	}
	assert.Equal(t, []string{"", "", "", "🚀", " ", "", "é"}, outs)
	assert.Equal(t, "", st.Flush())
}

func TestHFJSONErrors(t *testing.T) {
	set := func(path string, v any) func(map[string]any) {
		return func(doc map[string]any) {
			keys := strings.Split(path, ".")
			m := doc
			for _, k := range keys[:len(keys)-1] {
				m = m[k].(map[string]any)
			}
			m[keys[len(keys)-1]] = v
		}
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		cfg  string
		want string
	}{
		{"wordpiece", set("model.type", "WordPiece"), "", `model type "WordPiece" not supported`},
		{"unigram", set("model.type", "Unigram"), "", `model type "Unigram" not supported`},
		{"no model", set("model", nil), "", "no model"},
		{"normalizer", set("normalizer", map[string]any{"type": "NFC"}), "", `normalizer "NFC" not supported`},
		{"pre-tokenizer", set("pre_tokenizer", map[string]any{"type": "Whitespace"}), "", `pre_tokenizer "Whitespace" not supported`},
		{"regex", set("pre_tokenizer", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\w+`}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "use_regex": false}}}), "", `Split regex "\\w+" not supported`},
		{"decoder", set("decoder", map[string]any{"type": "WordPiece"}), "", `decoder "WordPiece" not supported`},
		{"post-processor", set("post_processor", map[string]any{"type": "BertProcessing"}), "", `post_processor "BertProcessing" not supported`},
		{"eos appended", set("post_processor", map[string]any{"type": "TemplateProcessing", "single": []any{
			map[string]any{"Sequence": map[string]any{"id": "A"}}, map[string]any{"SpecialToken": map[string]any{"id": "<|eot_id|>"}}}}), "", "appends"},
		{"bad merge", set("model.merges", []any{"Ġ t x"}), "", "not two tokens"},
		{"merge not in vocab", set("model.merges", []any{"q z"}), "", `result "qz" is not in the vocabulary`},
		{"merge shape", set("model.merges", []any{[]string{"a"}}), "", `merges[0]`},
		{"dropout", set("model.dropout", 0.1), "", "dropout"},
		{"byte fallback with byte-level parts", set("model.byte_fallback", true), "", "byte_fallback"},
		{"negative id", set("added_tokens", []any{map[string]any{"id": -1, "content": "x"}}), "", "id -1"},
		{"huge id", set("added_tokens", []any{map[string]any{"id": 1 << 40, "content": "x"}}), "", "outside"},
		{"clash", set("added_tokens", []any{map[string]any{"id": 0, "content": "x"}}), "", "which the vocabulary gives to"},
		{"config eos", nil, `{"eos_token": "<nope>"}`, `eos_token "<nope>" is not in the vocabulary`},
		{"config add_eos", nil, `{"add_eos_token": true}`, "add_eos_token"},
		{"config json", nil, `{`, "tokenizer_config.json"},
		{"config token type", nil, `{"bos_token": 5}`, "bos_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := FromHFTokenizerJSON(tinyByteLevelJSON(tc.edit), []byte(tc.cfg))
			require.Error(t, err)
			assert.Nil(t, tok)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := FromHFTokenizerJSON([]byte(`[]`), nil)
	assert.ErrorContains(t, err, "tokenizer.json")
}

func FuzzHFTokenizerJSON(f *testing.F) {
	f.Add(tinyByteLevelJSON(nil), []byte(nil))
	f.Add(tinyByteLevelJSON(func(d map[string]any) { d["added_tokens"] = []any{} }), []byte(`{"bos_token": "he"}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]], "byte_fallback": true},
		"normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}}`), []byte(`{"add_bos_token": false}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"Ġ": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}}`), []byte(nil))
	f.Add([]byte(`{"model": {"type": "Unigram", "vocab": [["a", 0]]}}`), []byte(nil))
	f.Add([]byte(`{"model": null}`), []byte(`{"eos_token": {"content": 1}}`))
	f.Fuzz(func(t *testing.T, tj, cfg []byte) {
		tok, err := FromHFTokenizerJSON(tj, cfg)
		if err != nil {
			require.Nil(t, tok)
			require.True(t, strings.HasPrefix(err.Error(), "tokenizer"), "errors name their file: %v", err)
			return
		}
		for _, s := range []string{"", "hello the <|eot_id|> a  b\n\n", "\xff\xfe é 🚀 'S 123456"} {
			ids := tok.Encode(s, tok.DefaultOptions())
			for _, id := range ids {
				require.True(t, tok.Valid(id))
			}
			if got := tok.Decode(ids); utf8.ValidString(got) {
				require.Equal(t, got, streamAll(tok, false, ids, func(string) {}))
			}
		}
	})
}

// TestGGUFByteLevel builds Llama 3 the way a GGUF stores it (tokenizer.ggml.model
// "gpt2", merges as strings, pre "llama-bpe") and checks it against the tokenizer.json.
func TestGGUFByteLevel(t *testing.T) {
	path := filepath.Join(nodeDir, "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		testref.Missing(t, "the Llama 3 tokenizer.json (runtime/tokenizer/testdata/node)")
	}
	hf, err := FromHFTokenizerJSON(data, nil)
	require.NoError(t, err)
	var f struct {
		Model struct {
			Merges []string `json:"merges"`
		} `json:"model"`
	}
	require.NoError(t, json.Unmarshal(data, &f))
	v := &Vocab{Model: "gpt2", Pre: "llama-bpe", Merges: f.Model.Merges, BOS: 128000, EOS: 128009, UNK: -1, AddBOS: true}
	for id := range hf.VocabSize() {
		v.Tokens = append(v.Tokens, hf.raw[id])
		v.Types = append(v.Types, hf.Type(int32(id)))
	}
	tok, err := New(v)
	require.NoError(t, err)
	assert.Equal(t, []int32{128009, 128001}, tok.EOSIDs(), "EOS, then the other end-of-turn controls in id order")
	for _, s := range genStrings(300) {
		require.Equal(t, hf.Encode(s, EncodeOptions{ParseSpecial: true}), tok.Encode(s, EncodeOptions{ParseSpecial: true}), "%q", s)
	}
	require.Equal(t, int32(128000), tok.Encode("hi", tok.DefaultOptions())[0])

	for _, tc := range []struct {
		edit func(v *Vocab)
		want string
	}{
		{func(v *Vocab) { v.Pre = "qwen2" }, `unsupported pre-tokenizer "qwen2"`},
		{func(v *Vocab) { v.Merges = []string{"nospace"} }, "not two tokens"},
		{func(v *Vocab) { v.Merges = []string{"Ġ zzzz"} }, `"zzzz" is not in the vocabulary`},
		{func(v *Vocab) { v.Types = append([]TokenType(nil), v.Types...); v.Types[5] = TypeByte }, "byte-level vocabularies do not use"},
	} {
		w := *v
		tc.edit(&w)
		_, err := New(&w)
		assert.ErrorContains(t, err, tc.want)
	}
}

// TestHFVocabByteLevel: Llama 3's tokenizer.json written as a GGUF vocabulary (HFVocab:
// model "gpt2", pre "llama-bpe", the merges) encodes as the tokenizer.json does; files
// GGUF cannot name are refused.
func TestHFVocabByteLevel(t *testing.T) {
	path := filepath.Join(nodeDir, "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		testref.Missing(t, "the Llama 3 tokenizer.json (runtime/tokenizer/testdata/node)")
	}
	hf, err := FromHFTokenizerJSON(data, nil)
	require.NoError(t, err)
	v, err := HFVocab(data, nil)
	require.NoError(t, err)
	assert.Equal(t, "gpt2", v.Model)
	assert.Equal(t, "llama-bpe", v.Pre)
	assert.Len(t, v.Merges, 280147)
	assert.Equal(t, int32(128000), v.BOS)
	tok, err := New(v)
	require.NoError(t, err)
	assert.Equal(t, hf.EOSIDs(), tok.EOSIDs())
	for _, s := range genStrings(300) {
		require.Equal(t, hf.Encode(s, EncodeOptions{ParseSpecial: true}), tok.Encode(s, EncodeOptions{ParseSpecial: true}), "%q", s)
	}

}

// TestHFVocabTiny: the small Llama-3-layout file as GGUF, and the byte-level files GGUF
// has no name for.
func TestHFVocabTiny(t *testing.T) {
	v, err := HFVocab(tinyByteLevelJSON(nil), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"Ġ t", "h e", "Ġt he", "l l", "he ll", "hell o"}, v.Merges)
	assert.Equal(t, "llama-bpe", v.Pre)
	assert.Equal(t, []int32{263}, v.EOSIDs, "<|eot_id|> beside EOS")
	assert.Equal(t, TypeControl, v.Types[262])
	assert.Equal(t, TypeUserDefined, v.Types[264])
	for _, tc := range []struct {
		edit func(doc map[string]any)
		want string
	}{
		{func(doc map[string]any) { doc["model"].(map[string]any)["ignore_merges"] = false }, "Llama 3's split without ignore_merges"},
		{func(doc map[string]any) {
			doc["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
		}, "GPT-2's split with ignore_merges"},
		{func(doc map[string]any) {
			doc["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[1].(map[string]any)["add_prefix_space"] = true
		}, "ByteLevel add_prefix_space"},
	} {
		_, err := HFVocab(tinyByteLevelJSON(tc.edit), nil)
		assert.ErrorContains(t, err, tc.want+": GGUF cannot express it")
	}
}

// TestPreTokenizeEngineDifferences pins the three places where the HF library's regex
// engine (and tiktoken's) and JavaScript's disagree, which the differential test's
// strings avoid: here the scanner follows the HF library.
func TestPreTokenizeEngineDifferences(t *testing.T) {
	split := func(f preTokenizer, s string) []string {
		var out []string
		for i := 0; i < len(s); {
			j := f(s, i)
			out = append(out, s[i:j])
			i = j
		}
		return out
	}
	assert.Equal(t, []string{"a", "'ſ", "a"}, split(llama3Next, "a'ſa"), "(?i:'s) folds ſ to s")
	assert.Equal(t, []string{"a", "\u0085", "!"}, split(llama3Next, "a\u0085!"), "U+0085 is White_Space (JS: one match)")
	assert.Equal(t, []string{"x", "\ufeff!"}, split(llama3Next, "x\ufeff!"), "U+FEFF is not (JS: two matches)")
	// And a few splits the reference gives (node reference.mjs pretok).
	assert.Equal(t, []string{"Hello", " world", "   ", " x", "\n\n", " ", " '", "re", " ", "123", "45", " ", "67", "!!!\n", "\ttab"},
		split(llama3Next, "Hello world    x\n\n  're 12345 67!!!\n\ttab"))
	assert.Equal(t, []string{"I", "'M", " HE", "'S", "  ", " x", "\r\n", "  "}, split(llama3Next, "I'M HE'S   x\r\n  "))
	assert.Equal(t, []string{"I", "'", "M", " he", "'s", " 12345", "  ", " !?", "\n"}, split(gpt2Next, "I'M he's 12345   !?\n"))
}

func BenchmarkByteLevelEncode(b *testing.B) {
	path := filepath.Join(nodeDir, "node_modules", "@lenml", "tokenizer-llama3", "models", "tokenizer.json")
	data, err := os.ReadFile(path)
	if err != nil {
		testref.Missing(b, "the Llama 3 tokenizer.json (runtime/tokenizer/testdata/node)")
	}
	tok, err := FromHFTokenizerJSON(data, nil)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile(shared.Path(b, "eval", "wikitext-2-raw-test.raw"))
	if err != nil {
		b.Fatal(err)
	}
	text := strings.ToValidUTF8(string(raw[:200_000]), "")
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(tok.Encode(text, EncodeOptions{ParseSpecial: true}))
	}
	b.ReportMetric(float64(len(text))/float64(n), "bytes/token")
}
