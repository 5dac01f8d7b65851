package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/internal/testref"
)

// The differential tests run transformers.js's tokenizer (testdata/node) on the same
// tokenizer.json files and require identical ids. They skip without node or without
// the installed packages.

const nodeDir = "testdata/node"

func requireNode(tb testing.TB) {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testref.Missing(tb, "Node.js (>= 18, for transformers.js's tokenizers)")
	}
	if _, err := os.Stat(filepath.Join(nodeDir, "node_modules", "@lenml", "tokenizers")); err != nil {
		testref.Missing(tb, "transformers.js's tokenizers (runtime/tokenizer/testdata/node)")
	}
}

// runNode runs reference.mjs with stdin and returns stdout.
func runNode(tb testing.TB, stdin []byte, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command("node", append([]string{"reference.mjs"}, args...)...)
	cmd.Dir = nodeDir
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(tb, cmd.Run(), "node %v: %s", args, errb.String())
	return out.Bytes()
}

// nodeLines sends one JSON string per line and decodes one JSON value per output line.
func nodeLines[T any](tb testing.TB, texts []string, args ...string) []T {
	tb.Helper()
	var in bytes.Buffer
	for _, s := range texts {
		b, err := json.Marshal(s)
		require.NoError(tb, err)
		in.Write(b)
		in.WriteByte('\n')
	}
	sc := bufio.NewScanner(bytes.NewReader(runNode(tb, in.Bytes(), args...)))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var out []T
	for sc.Scan() {
		var v T
		require.NoError(tb, json.Unmarshal(sc.Bytes(), &v))
		out = append(out, v)
	}
	require.NoError(tb, sc.Err())
	require.Len(tb, out, len(texts))
	return out
}

// nodeHF loads, through FromHFTokenizerJSON, the very files the reference uses.
func nodeHF(tb testing.TB, model, variant string) *Tokenizer {
	tb.Helper()
	var paths struct {
		JSON   string `json:"tokenizer_json"`
		Config string `json:"tokenizer_config"`
	}
	require.NoError(tb, json.Unmarshal(runNode(tb, nil, "files", model), &paths))
	var tj []byte
	var err error
	if variant == "shipped" {
		tj, err = os.ReadFile(paths.JSON)
		require.NoError(tb, err)
	} else {
		tj = runNode(tb, nil, "json", model, variant)
	}
	cfg, err := os.ReadFile(paths.Config)
	require.NoError(tb, err)
	tok, err := FromHFTokenizerJSON(tj, cfg)
	require.NoError(tb, err)
	return tok
}

// Pieces of the generated strings.
var (
	genCode = []string{
		"func main() {\n\tfmt.Println(\"hi\")\n}", "for i in range(10):\n    print(i**2)  # squares",
		"const x = a?.b ?? [];", "if (x != NULL && *p++ == '\\0') { return -1; }", "SELECT id, name FROM users WHERE age >= 21;",
		"<div class=\"a\">&nbsp;</div>", "{\"key\": [1, 2.5, true, null]}", "$ ls -la | grep '^d' > out.txt 2>&1",
		"x <<= 2; y >>>= 3; z := x &^ y", "#include <stdio.h>", "    def __init__(self):\r\n        pass",
		"`backticks` and ~tilde~ ^caret^", "a==b!=c<=d>=e", "while(true){i--;}", "@decorator\nclass A: ...",
	}
	genWords = []string{
		"the", "The", "THE", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Hello", "world",
		"tokenization", "unbelievably", "antidisestablishmentarianism", "a", "I", "x", "naïve", "café",
		"résumé", "Zürich", "straße", "façade", "coöperate", "über",
	}
	genScripts = []string{
		"Ελληνικά γλώσσα", "русский язык", "українська", "العربية لغة", "עברית שפה", "हिन्दी भाषा", "বাংলা",
		"ภาษาไทย", "中文字符测试", "日本語のテキスト", "カタカナ", "한국어 텍스트", "ქართული", "Հայերեն", "አማርኛ",
		"தமிழ்", "తెలుగు", "ಕನ್ನಡ", "മലയാളം", "සිංහල", "ꯃꯩꯇꯩ", "Tiếng Việt", "e\u0301 combining", "ﬁ ligature",
		"∀x∈ℝ, x² ≥ 0", "∑ᵢ aᵢ", "½ ¾ ⅓", "Ⅻ ⅻ", "①②③", "℃ ℉ Å", "«quotes» „low“ ‘single’", "–—―",
		"\u00a0nbsp\u00a0", "zero\u200bwidth", "soft\u00adhyphen", "bidi\u200fmark", "〈angle〉【brackets】",
	}
	genEmoji = []string{
		"🚀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵", "🧑🏿‍💻", "❤️", "1️⃣", "🤖", "😀😃😄", "👩‍❤️‍💋‍👨", "🫠", "✨", "☕",
	}
	genJargon = []string{
		"KV-cache", "int8 GEMM", "TTFT", "p99 latency", "RoPE θ=10000", "µs", "CUDA_VISIBLE_DEVICES=0",
		"https://example.com/a?b=c&d=e#f", "user@example.com", "O(n²)", "fp16/bf16", "GQA (8 KV heads)",
		"SwiGLU", "RMSNorm(ε=1e-5)", "LoRA r=16", "Q4_K_M", "v1.2.3-rc.1", "sha256:9f86d08", "C++17",
	}
	genSpecial = []string{
		"<|eot_id|>", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
		"<|reserved_special_token_7|>", "<|eot_id", "<|", "|>", "<s>", "</s>", "<unk>", "<|endoftext|>", "<0x0A>",
	}
	genContractions = []string{
		"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'x", "''",
		"'", "’s", "don't", "I'm", "HE'S", "we'VE", "they'Re", "y'all", "o'clock", "rock 'n' roll", "'tis",
	}
	genSpaces = []string{" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", "\r", " \n", "\n ", " \t\n ", "\u3000", "\u2003", "\v", "\f", "\u00a0"}
	// genRanges are code point blocks for random characters. They avoid the three
	// places JavaScript regexes differ from the HF library's (see pretokenize.go):
	// U+0085, U+FEFF and U+017F; and stay in blocks older than any Unicode version
	// difference between Go and Node.
	genRanges = [][2]rune{
		{0x21, 0x7e}, {0xa1, 0xff}, {0x100, 0x17e}, {0x391, 0x3c9}, {0x410, 0x44f}, {0x5d0, 0x5ea},
		{0x621, 0x64a}, {0x660, 0x669}, {0x905, 0x939}, {0xe01, 0xe2e}, {0x300, 0x36f}, {0x2010, 0x2027},
		{0x2070, 0x209c}, {0x2150, 0x218b}, {0x2190, 0x21ff}, {0x2200, 0x22ff}, {0x2500, 0x257f},
		{0x3041, 0x3096}, {0x4e00, 0x9fa5}, {0xac00, 0xd7a3}, {0xff01, 0xff5e}, {0x1f300, 0x1f5ff},
		{0x1f600, 0x1f64f}, {0x1d400, 0x1d4ff},
	}
)

func genNumber(r *rand.Rand) string {
	n := 1 + r.IntN(20)
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + r.IntN(10)))
	}
	s := b.String()
	switch r.IntN(6) {
	case 0:
		return "-" + s
	case 1:
		return s + "." + s[:1+r.IntN(len(s))]
	case 2:
		return "1,234,567"
	case 3:
		return "٣٤٥٦" // Arabic-Indic digits
	case 4:
		return "１２３４"
	}
	return s
}

func genPart(r *rand.Rand) string {
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	switch r.IntN(12) {
	case 0:
		return pick(genCode)
	case 1, 2:
		return pick(genWords)
	case 3:
		return pick(genScripts)
	case 4:
		return pick(genEmoji)
	case 5:
		return genNumber(r)
	case 6:
		return pick(genSpaces)
	case 7:
		return pick(genContractions)
	case 8:
		return pick(genJargon)
	case 9:
		return pick(genSpecial)
	case 10:
		var b strings.Builder
		for range 1 + r.IntN(8) {
			g := genRanges[r.IntN(len(genRanges))]
			b.WriteRune(g[0] + rune(r.IntN(int(g[1]-g[0]+1))))
		}
		return b.String()
	}
	return strings.Repeat(pick([]string{"=", "-", "*", "#", ".", "!", "?", "a", "1", " "}), 1+r.IntN(40))
}

// genStrings returns n varied strings, the same every run.
func genStrings(n int) []string {
	r := rand.New(rand.NewPCG(2024, 7))
	out := []string{"", " ", "a", "\n", "  leading", "trailing  ", "x\r\ny", "3.14159", "12345678901234567890",
		"Hello world", "<|eot_id|>", "<|begin_of_text|>Hello<|eot_id|>", " <|eot_id|> ", "I'M SURE HE'S", "\t\tindent"}
	for len(out) < n {
		var b strings.Builder
		for range 1 + r.IntN(10) {
			b.WriteString(genPart(r))
			switch r.IntN(4) {
			case 0:
				b.WriteByte(' ')
			case 1:
				b.WriteString(genSpaces[r.IntN(len(genSpaces))])
			}
		}
		out = append(out, b.String())
	}
	return out
}

// wikitextSample is real prose with its odd spacing, for longer inputs.
func wikitextSample(tb testing.TB) []string {
	data, err := os.ReadFile(shared.Path(tb, "eval", "wikitext-2-raw-test.raw"))
	require.NoError(tb, err)
	var out []string
	for off := 0; off < 40_000; off += 4000 {
		s := strings.ToValidUTF8(string(data[off:off+4000]), "")
		out = append(out, s)
	}
	return out
}

func checkAgainstNode(t *testing.T, tok *Tokenizer, texts []string, opt EncodeOptions, args ...string) {
	want := nodeLines[[]int32](t, texts, args...)
	bad := 0
	for i, s := range texts {
		got := tok.Encode(s, opt)
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			bad++
			if bad <= 5 {
				t.Errorf("%v: %q\n vireo %v\n  node %v", args, s, got, want[i])
			}
		}
	}
	require.Zero(t, bad, "%d of %d strings differ", bad, len(texts))
}

func TestLlama3MatchesReference(t *testing.T) {
	requireNode(t)
	texts := append(genStrings(2000), wikitextSample(t)...)
	shipped := nodeHF(t, "llama3", "shipped")
	require.Equal(t, EncodeOptions{AddBOS: false, ParseSpecial: true}, shipped.DefaultOptions(),
		"this tokenizer.json's post_processor is ByteLevel: no BOS, as the reference")
	t.Run("special", func(t *testing.T) {
		checkAgainstNode(t, shipped, texts, shipped.DefaultOptions(), "encode", "llama3", "shipped")
	})
	t.Run("plain", func(t *testing.T) {
		checkAgainstNode(t, shipped, texts, EncodeOptions{}, "encode", "llama3", "plain")
		for _, s := range texts {
			require.Equal(t, s, shipped.Decode(shipped.Encode(s, EncodeOptions{})), "%q", s)
		}
	})
	t.Run("bos", func(t *testing.T) {
		tok := nodeHF(t, "llama3", "bos")
		require.Equal(t, EncodeOptions{AddBOS: true, ParseSpecial: true}, tok.DefaultOptions())
		checkAgainstNode(t, tok, texts, tok.DefaultOptions(), "encode", "llama3", "bos")
	})
	t.Run("pretokenize", func(t *testing.T) {
		want := nodeLines[[]string](t, texts, "pretok", "llama3")
		for i, s := range texts {
			require.Equal(t, want[i], preTokens(shipped, s), "%q", s)
		}
	})
}

func TestGPT2MatchesReference(t *testing.T) {
	requireNode(t)
	texts := append(genStrings(1000), wikitextSample(t)...)
	tok := nodeHF(t, "gpt2", "shipped")
	checkAgainstNode(t, tok, texts, tok.DefaultOptions(), "encode", "gpt2", "shipped")
	want := nodeLines[[]string](t, texts, "pretok", "gpt2")
	for i, s := range texts {
		require.Equal(t, want[i], preTokens(tok, s), "%q", s)
		require.Equal(t, s, tok.Decode(tok.Encode(s, EncodeOptions{})), "%q", s)
	}
}

// TestLlama2JSONMatchesReference checks the SentencePiece-style tokenizer.json path
// against the reference. The package's Llama 2 file numbers its pieces differently from
// Meta's tokenizer.model (" a" is 264, not 263), so the check against tokenizer.bin is
// TestHFJSONFromSentencePieceMatchesBin, on a file converted as transformers does.
func TestLlama2JSONMatchesReference(t *testing.T) {
	requireNode(t)
	texts := append(genStrings(1000), wikitextSample(t)...)
	tok := nodeHF(t, "llama2", "shipped")
	require.Equal(t, EncodeOptions{AddBOS: true, ParseSpecial: true}, tok.DefaultOptions())
	t.Run("special", func(t *testing.T) {
		checkAgainstNode(t, tok, texts, tok.DefaultOptions(), "encode", "llama2", "shipped")
	})
	t.Run("plain", func(t *testing.T) {
		checkAgainstNode(t, tok, texts, EncodeOptions{AddBOS: true}, "encode", "llama2", "plain")
	})
}

// preTokens is the pre-tokenization of s in the byte-level spelling, as the reference
// prints it.
func preTokens(tok *Tokenizer, s string) []string {
	out := []string{}
	if tok.bpe.addPrefixSpace && s != "" && s[0] != ' ' {
		s = " " + s
	}
	for i := 0; i < len(s); {
		j := tok.bpe.pre(s, i)
		out = append(out, byteLevelEncode(s[i:j]))
		i = j
	}
	return out
}
