package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

// FromHFTokenizerJSON builds a Tokenizer from a Hugging Face tokenizer.json and,
// optionally (nil), the tokenizer_config.json beside it. Two families are understood:
//
//   - byte-level BPE (GPT-2, Llama 3): model BPE without byte_fallback, pre_tokenizer
//     ByteLevel (GPT-2's split) or Sequence[Split(Llama 3's regex), ByteLevel], decoder
//     ByteLevel;
//   - SentencePiece-style BPE (Llama 2, TinyLlama, Mistral): model BPE with
//     byte_fallback, normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] or
//     pre_tokenizer Metaspace, decoder Replace/ByteFallback/Fuse/Strip or Metaspace. It
//     runs on the SentencePiece encoder with pairs ranked by the merge list.
//
// added_tokens are matched in the input before anything else (leftmost, longest;
// lstrip, rstrip and single_word honoured; normalized is moot since these normalizers
// leave token text alone), and DefaultOptions parses them, as transformers does. A
// TemplateProcessing post-processor that puts a special token before the text sets
// AddBOS; tokenizer_config.json's bos_token, eos_token and add_bos_token override the
// guesses. Anything else (WordPiece, Unigram, other normalizers, pre-tokenizers or
// regexes) is an error naming the component.
func FromHFTokenizerJSON(tokenizerJSON []byte, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	t, _, _, err := fromHF(tokenizerJSON, tokenizerConfigJSON)
	return t, err
}

// HFVocab returns the vocabulary of a Hugging Face tokenizer.json (and its
// tokenizer_config.json) in GGUF's terms, as a converter writes it: model "gpt2" with the
// merge list and the pre-tokenizer's GGUF name (Llama 3's split with ignore_merges is
// "llama-bpe", GPT-2's is "gpt2"), or model "llama" with the merge ranks as scores
// (score −rank of the merge that makes a piece). Encoding with it gives the ids of
// FromHFTokenizerJSON except where GGUF cannot say what the file does: added tokens'
// lstrip/rstrip/single_word flags are dropped, and the SentencePiece dummy prefix goes
// to the first text only (llama.cpp's rule) when the file prefixes every text between
// special tokens. A byte-level file GGUF has no name for (another pre-tokenizer
// combination, add_prefix_space, merges containing spaces) is an error.
func HFVocab(tokenizerJSON []byte, tokenizerConfigJSON []byte) (*Vocab, error) {
	t, v, g, err := fromHF(tokenizerJSON, tokenizerConfigJSON)
	if err != nil {
		return nil, err
	}
	if g.problem != "" {
		return nil, fmt.Errorf("tokenizer.json: %s: GGUF cannot express it", g.problem)
	}
	out := *v
	out.Types = append([]TokenType(nil), t.types...)
	out.Merges = g.merges
	out.Pre = g.pre
	out.EOSIDs = nil
	for _, id := range t.eosIDs {
		if id != v.EOS {
			out.EOSIDs = append(out.EOSIDs, id)
		}
	}
	return &out, nil
}

// ggufForm collects what a GGUF file needs of a tokenizer.json beyond the Vocab.
type ggufForm struct {
	pre     string   // tokenizer.ggml.pre of a byte-level file
	merges  []string // "left right", byte-level files
	problem string   // why GGUF cannot express the file ("" when it can)
}

// fromHF builds the tokenizer of a tokenizer.json and returns the vocabulary it built
// from and what a GGUF file would need besides.
func fromHF(tokenizerJSON []byte, tokenizerConfigJSON []byte) (*Tokenizer, *Vocab, *ggufForm, error) {
	var f hfFile
	if err := json.Unmarshal(tokenizerJSON, &f); err != nil {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: %w", err)
	}
	var cfg hfConfig
	if len(bytes.TrimSpace(tokenizerConfigJSON)) > 0 {
		if err := json.Unmarshal(tokenizerConfigJSON, &cfg); err != nil {
			return nil, nil, nil, fmt.Errorf("tokenizer_config.json: %w", err)
		}
	}
	if f.Model == nil {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: no model")
	}
	m := f.Model
	if m.Type != "BPE" {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: model type %q not supported (only BPE)", m.Type)
	}
	if m.Dropout != nil && *m.Dropout > 0 {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: BPE dropout %v not supported (encoding would be random)", *m.Dropout)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: BPE continuing_subword_prefix %q not supported", *m.ContinuingSubwordPrefix)
	}
	if m.EndOfWordSuffix != nil && *m.EndOfWordSuffix != "" {
		return nil, nil, nil, fmt.Errorf("tokenizer.json: BPE end_of_word_suffix %q not supported", *m.EndOfWordSuffix)
	}
	merges, err := m.mergePairs()
	if err != nil {
		return nil, nil, nil, err
	}
	v, err := f.vocab()
	if err != nil {
		return nil, nil, nil, err
	}
	unk := int32(-1)
	if m.UnkToken != nil && *m.UnkToken != "" {
		id, ok := lookupSpelling(v, *m.UnkToken)
		if !ok {
			return nil, nil, nil, fmt.Errorf("tokenizer.json: unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		unk = id
	}
	v.UNK = unk
	bos, addBOS, err := f.PostProcessor.leadingSpecial(v)
	if err != nil {
		return nil, nil, nil, err
	}
	v.BOS, v.AddBOS = bos, addBOS
	if err := cfg.apply(v); err != nil {
		return nil, nil, nil, err
	}

	byteLevel := f.PreTokenizer.contains("ByteLevel") || f.Decoder.contains("ByteLevel")
	var t *Tokenizer
	g := &ggufForm{}
	if m.ByteFallback || !byteLevel {
		t, err = f.sentencePiece(v, merges)
	} else {
		t, err = f.byteLevel(v, merges, g)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	// Matching follows added_tokens, with their flags; the types decided decoding.
	t.special = t.special[:0]
	for _, a := range f.AddedTokens {
		if a.Content != "" {
			t.special = append(t.special, special{text: a.Content, id: int32(a.ID), lstrip: a.Lstrip, rstrip: a.Rstrip, singleWord: a.SingleWord})
		}
	}
	t.indexSpecials()
	t.parseSpecial = true
	return t, v, g, nil
}

// hfFile is the part of tokenizer.json that matters here.
type hfFile struct {
	AddedTokens   []hfAddedToken `json:"added_tokens"`
	Normalizer    *hfComponent   `json:"normalizer"`
	PreTokenizer  *hfComponent   `json:"pre_tokenizer"`
	PostProcessor *hfComponent   `json:"post_processor"`
	Decoder       *hfComponent   `json:"decoder"`
	Model         *hfModel       `json:"model"`
}

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Special    bool   `json:"special"`
}

type hfModel struct {
	Type                    string            `json:"type"`
	Vocab                   json.RawMessage   `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	UnkToken                *string           `json:"unk_token"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	Dropout                 *float64          `json:"dropout"`
}

// hfComponent is any normalizer, pre-tokenizer, post-processor or decoder: the union of
// the fields the supported types use.
type hfComponent struct {
	Type string `json:"type"`
	// Sequence members, by component kind.
	Normalizers   []*hfComponent `json:"normalizers"`
	Pretokenizers []*hfComponent `json:"pretokenizers"`
	Processors    []*hfComponent `json:"processors"`
	Decoders      []*hfComponent `json:"decoders"`
	// Split, Replace.
	Pattern  *hfPattern `json:"pattern"`
	Behavior string     `json:"behavior"`
	Invert   bool       `json:"invert"`
	Content  string     `json:"content"`
	// Prepend.
	Prepend string `json:"prepend"`
	// ByteLevel.
	AddPrefixSpace *bool `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
	// Metaspace.
	Replacement   string `json:"replacement"`
	PrependScheme string `json:"prepend_scheme"`
	Split         *bool  `json:"split"`
	// Strip decoder.
	Start int `json:"start"`
	Stop  int `json:"stop"`
	// TemplateProcessing.
	Single        []hfTemplateItem           `json:"single"`
	SpecialTokens map[string]hfTemplateToken `json:"special_tokens"`
}

type hfPattern struct {
	Regex  *string `json:"Regex"`
	String *string `json:"String"`
}

type hfTemplateItem struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

type hfTemplateToken struct {
	IDs []int `json:"ids"`
}

// members returns a Sequence's components, or the component itself.
func (c *hfComponent) members() []*hfComponent {
	if c == nil {
		return nil
	}
	if c.Type != "Sequence" {
		return []*hfComponent{c}
	}
	var out []*hfComponent
	for _, l := range [][]*hfComponent{c.Normalizers, c.Pretokenizers, c.Processors, c.Decoders} {
		for _, m := range l {
			out = append(out, m.members()...)
		}
	}
	return out
}

func (c *hfComponent) contains(typ string) bool {
	for _, m := range c.members() {
		if m != nil && m.Type == typ {
			return true
		}
	}
	return false
}

func (p *hfPattern) describe() string {
	switch {
	case p == nil:
		return "no pattern"
	case p.Regex != nil:
		return fmt.Sprintf("Regex %q", *p.Regex)
	case p.String != nil:
		return fmt.Sprintf("String %q", *p.String)
	}
	return "empty pattern"
}

// hfConfig is the part of tokenizer_config.json that matters here.
type hfConfig struct {
	BOS         json.RawMessage `json:"bos_token"`
	EOS         json.RawMessage `json:"eos_token"`
	AddBOSToken *bool           `json:"add_bos_token"`
	AddEOSToken *bool           `json:"add_eos_token"`
}

// tokenText reads a config token: a string, an AddedToken object or null.
func tokenText(raw json.RawMessage) (string, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, true, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil {
		return "", false, fmt.Errorf("not a string or an object with content: %s", truncate(string(raw), 80))
	}
	return *obj.Content, true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// apply lets the config name BOS and EOS and switch BOS on or off.
func (c *hfConfig) apply(v *Vocab) error {
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int32
	}{{"bos_token", c.BOS, &v.BOS}, {"eos_token", c.EOS, &v.EOS}} {
		text, ok, err := tokenText(f.raw)
		if err != nil {
			return fmt.Errorf("tokenizer_config.json: %s: %w", f.name, err)
		}
		if !ok {
			continue
		}
		id, found := lookupSpelling(v, text)
		if !found {
			return fmt.Errorf("tokenizer_config.json: %s %q is not in the vocabulary", f.name, text)
		}
		if f.dst == &v.BOS && v.AddBOS && v.BOS >= 0 && v.BOS != id {
			return fmt.Errorf("tokenizer_config.json: bos_token %q differs from %q, which the post_processor prepends", text, v.Tokens[v.BOS])
		}
		*f.dst = id
	}
	if c.AddEOSToken != nil && *c.AddEOSToken {
		return fmt.Errorf("tokenizer_config.json: add_eos_token true not supported")
	}
	// transformers' Llama tokenizers rebuild their post-processor from add_bos_token.
	if c.AddBOSToken != nil {
		v.AddBOS = *c.AddBOSToken && v.BOS >= 0
	}
	if v.EOS < 0 {
		for _, s := range []string{"</s>", "<|end_of_text|>", "<|endoftext|>"} {
			if id, ok := lookupSpelling(v, s); ok {
				v.EOS = id
				break
			}
		}
	}
	return nil
}

// lookupSpelling finds a token by its spelling in v.Tokens (lowest id).
func lookupSpelling(v *Vocab, s string) (int32, bool) {
	for i, p := range v.Tokens {
		if p == s {
			return int32(i), true
		}
	}
	return -1, false
}

// mergePairs reads the merge list in either form: "a b" strings (older files) or
// ["a", "b"] arrays (tokenizers >= 0.20, which allows spaces inside tokens).
func (m *hfModel) mergePairs() ([]mergePair, error) {
	out := make([]mergePair, len(m.Merges))
	for i, raw := range m.Merges {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			p, err := splitMerges([]string{s})
			if err != nil {
				return nil, fmt.Errorf("tokenizer.json: merges[%d]: %w", i, err)
			}
			out[i] = p[0]
			continue
		}
		var pair []string
		if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
			return nil, fmt.Errorf("tokenizer.json: merges[%d] is %s, want \"a b\" or [\"a\", \"b\"]", i, truncate(string(raw), 80))
		}
		out[i] = mergePair{pair[0], pair[1]}
	}
	return out, nil
}

// vocab lays out model.vocab and added_tokens by id. Ids left unused by both become
// empty tokens of type unused.
func (f *hfFile) vocab() (*Vocab, error) {
	var vocab map[string]int
	if err := json.Unmarshal(f.Model.Vocab, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer.json: model.vocab: %w", err)
	}
	size := 0
	check := func(what string, id int) error {
		if id < 0 || id >= maxVocabSize {
			return fmt.Errorf("tokenizer.json: %s has id %d, outside [0, %d)", what, id, maxVocabSize)
		}
		size = max(size, id+1)
		return nil
	}
	for s, id := range vocab {
		if err := check(fmt.Sprintf("token %q", s), id); err != nil {
			return nil, err
		}
	}
	for _, a := range f.AddedTokens {
		if err := check(fmt.Sprintf("added token %q", a.Content), a.ID); err != nil {
			return nil, err
		}
	}
	if size == 0 {
		return nil, fmt.Errorf("tokenizer.json: empty vocabulary")
	}
	v := &Vocab{Tokens: make([]string, size), Types: make([]TokenType, size), BOS: -1, EOS: -1, UNK: -1}
	set := make([]bool, size)
	// Map iteration order is random; visit tokens by id so errors are reproducible.
	byID := make([]string, 0, len(vocab))
	for s := range vocab {
		byID = append(byID, s)
	}
	sort.Slice(byID, func(a, b int) bool {
		return vocab[byID[a]] < vocab[byID[b]] || vocab[byID[a]] == vocab[byID[b]] && byID[a] < byID[b]
	})
	for _, s := range byID {
		id := vocab[s]
		if set[id] {
			return nil, fmt.Errorf("tokenizer.json: id %d is given to both %q and %q", id, v.Tokens[id], s)
		}
		v.Tokens[id], v.Types[id], set[id] = s, TypeNormal, true
	}
	for _, a := range f.AddedTokens {
		if set[a.ID] && v.Tokens[a.ID] != a.Content {
			return nil, fmt.Errorf("tokenizer.json: added token %q has id %d, which the vocabulary gives to %q", a.Content, a.ID, v.Tokens[a.ID])
		}
		typ := TypeUserDefined
		if a.Special {
			typ = TypeControl
		}
		v.Tokens[a.ID], v.Types[a.ID], set[a.ID] = a.Content, typ, true
	}
	for i, ok := range set {
		if !ok {
			v.Types[i] = TypeUnused
		}
	}
	return v, nil
}

// leadingSpecial reads a post-processor: the special token TemplateProcessing puts before
// the text, if any. Tokens after the text (an appended EOS) are not supported.
func (c *hfComponent) leadingSpecial(v *Vocab) (int32, bool, error) {
	bos, add := int32(-1), false
	for _, p := range c.members() {
		if p == nil {
			continue
		}
		switch p.Type {
		case "ByteLevel":
			// Only adjusts offsets.
		case "TemplateProcessing":
			seenText := false
			for _, it := range p.Single {
				switch {
				case it.Sequence != nil:
					seenText = true
				case it.SpecialToken != nil:
					name := it.SpecialToken.ID
					if seenText {
						return -1, false, fmt.Errorf("tokenizer.json: post_processor TemplateProcessing appends %q after the text; not supported", name)
					}
					if add {
						return -1, false, fmt.Errorf("tokenizer.json: post_processor TemplateProcessing prepends more than one token; not supported")
					}
					id, ok := lookupSpelling(v, name)
					if st, has := p.SpecialTokens[name]; has && len(st.IDs) == 1 {
						id, ok = int32(st.IDs[0]), st.IDs[0] >= 0 && st.IDs[0] < len(v.Tokens)
					}
					if !ok {
						return -1, false, fmt.Errorf("tokenizer.json: post_processor special token %q is not in the vocabulary", name)
					}
					bos, add = id, true
				}
			}
		default:
			return -1, false, fmt.Errorf("tokenizer.json: post_processor %q not supported (only TemplateProcessing, ByteLevel)", p.Type)
		}
	}
	if bos < 0 {
		for _, s := range []string{"<s>", "<|begin_of_text|>"} {
			if id, ok := lookupSpelling(v, s); ok {
				bos = id
				break
			}
		}
	}
	return bos, add, nil
}

// byteLevel checks the components of a byte-level BPE file and builds it.
func (f *hfFile) byteLevel(v *Vocab, merges []mergePair, g *ggufForm) (*Tokenizer, error) {
	if f.Normalizer != nil {
		return nil, fmt.Errorf("tokenizer.json: normalizer %q not supported with a byte-level BPE", f.Normalizer.Type)
	}
	opt := byteLevelOptions{ignoreMerges: f.Model.IgnoreMerges}
	sawByteLevel := false
	for _, p := range f.PreTokenizer.members() {
		if p == nil {
			return nil, fmt.Errorf("tokenizer.json: null pre_tokenizer in a Sequence")
		}
		switch p.Type {
		case "Split":
			if sawByteLevel || opt.pre != nil {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Split must come once, before ByteLevel")
			}
			if p.Pattern == nil || p.Pattern.Regex == nil {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Split with %s not supported", p.Pattern.describe())
			}
			pre, ok := preTokenizerRegexes[*p.Pattern.Regex]
			if !ok {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Split regex %q not supported (known: Llama 3's and GPT-2's)", *p.Pattern.Regex)
			}
			if p.Behavior != "Isolated" || p.Invert {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Split behavior %q (invert %v) not supported (only Isolated)", p.Behavior, p.Invert)
			}
			opt.pre = pre
			g.pre = "llama-bpe"
			if *p.Pattern.Regex != llama3Pattern {
				g.pre = "gpt2"
			}
		case "ByteLevel":
			if sawByteLevel {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer ByteLevel appears twice")
			}
			sawByteLevel = true
			if p.UseRegex == nil || *p.UseRegex {
				if opt.pre != nil {
					return nil, fmt.Errorf("tokenizer.json: pre_tokenizer ByteLevel use_regex after a Split not supported")
				}
				opt.pre = gpt2Next
				g.pre = "gpt2"
			}
			opt.addPrefixSpace = p.AddPrefixSpace != nil && *p.AddPrefixSpace
		default:
			return nil, fmt.Errorf("tokenizer.json: pre_tokenizer %q not supported with a byte-level BPE", p.Type)
		}
	}
	if !sawByteLevel {
		return nil, fmt.Errorf("tokenizer.json: decoder ByteLevel without a ByteLevel pre_tokenizer not supported")
	}
	if opt.pre == nil {
		return nil, fmt.Errorf("tokenizer.json: pre_tokenizer ByteLevel without use_regex and without a Split not supported")
	}
	for _, d := range f.Decoder.members() {
		if d == nil || d.Type != "ByteLevel" {
			return nil, fmt.Errorf("tokenizer.json: decoder %s not supported with a byte-level BPE (only ByteLevel)", describeComponent(d))
		}
	}
	if f.Decoder == nil {
		return nil, fmt.Errorf("tokenizer.json: a byte-level BPE needs the ByteLevel decoder, the file has none")
	}
	v.Model = "gpt2"
	// GGUF names a pre-tokenizer and implies ignore_merges by it (llama.cpp's rule).
	switch {
	case opt.addPrefixSpace:
		g.problem = "ByteLevel add_prefix_space"
	case g.pre == "llama-bpe" && !opt.ignoreMerges:
		g.problem = "Llama 3's split without ignore_merges"
	case g.pre == "gpt2" && opt.ignoreMerges:
		g.problem = "GPT-2's split with ignore_merges"
	}
	for _, m := range merges {
		if strings.Contains(m[0], " ") || strings.Contains(m[1], " ") {
			g.problem = fmt.Sprintf("merge [%q, %q] holds a space", m[0], m[1])
			break
		}
		g.merges = append(g.merges, m[0]+" "+m[1])
	}
	if v.UNK >= 0 && v.Types[v.UNK] == TypeNormal {
		v.Types[v.UNK] = TypeUnknown
	}
	return newByteLevel(v, merges, opt)
}

func describeComponent(c *hfComponent) string {
	if c == nil {
		return "null"
	}
	return fmt.Sprintf("%q", c.Type)
}

// sentencePiece checks the components of a SentencePiece-style BPE file and builds it on
// the SentencePiece encoder, with pairs ranked by the merge list.
func (f *hfFile) sentencePiece(v *Vocab, merges []mergePair) (*Tokenizer, error) {
	m := f.Model
	if !m.ByteFallback {
		return nil, fmt.Errorf("tokenizer.json: a BPE without byte_fallback needs a ByteLevel pre_tokenizer and decoder (pre_tokenizer %s, decoder %s)", describeComponent(f.PreTokenizer), describeComponent(f.Decoder))
	}
	if m.IgnoreMerges {
		return nil, fmt.Errorf("tokenizer.json: ignore_merges with byte_fallback not supported")
	}
	rule, prefix, replaced := prefixEachText, false, false
	for _, n := range f.Normalizer.members() {
		switch {
		case n == nil:
			return nil, fmt.Errorf("tokenizer.json: null normalizer in a Sequence")
		case n.Type == "Prepend" && n.Prepend == spaceMarker:
			prefix = true
		case n.Type == "Replace" && n.Pattern != nil && n.Pattern.String != nil && *n.Pattern.String == " " && n.Content == spaceMarker:
			replaced = true
		case n.Type == "Prepend" || n.Type == "Replace":
			return nil, fmt.Errorf("tokenizer.json: normalizer %s (%s -> %q, prepend %q) not supported (only Prepend(\"▁\") and Replace(\" \", \"▁\"))", n.Type, n.Pattern.describe(), n.Content, n.Prepend)
		default:
			return nil, fmt.Errorf("tokenizer.json: normalizer %q not supported", n.Type)
		}
	}
	for _, p := range f.PreTokenizer.members() {
		switch {
		case p == nil:
			return nil, fmt.Errorf("tokenizer.json: null pre_tokenizer in a Sequence")
		case p.Type == "Metaspace":
			if p.Replacement != spaceMarker || (p.Split != nil && *p.Split) {
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Metaspace with replacement %q, split %v not supported (only \"▁\", no split)", p.Replacement, p.Split != nil && *p.Split)
			}
			replaced = true
			switch p.PrependScheme {
			case "always":
				prefix, rule = true, prefixEachText
			case "first":
				prefix, rule = true, prefixAtStart
			case "never":
			case "":
				prefix = p.AddPrefixSpace == nil || *p.AddPrefixSpace
			default:
				return nil, fmt.Errorf("tokenizer.json: pre_tokenizer Metaspace prepend_scheme %q not supported", p.PrependScheme)
			}
		default:
			return nil, fmt.Errorf("tokenizer.json: pre_tokenizer %q not supported with a byte-fallback BPE", p.Type)
		}
	}
	if !replaced {
		return nil, fmt.Errorf("tokenizer.json: byte-fallback BPE without Replace(\" \", \"▁\") or Metaspace not supported")
	}
	for _, d := range f.Decoder.members() {
		if d == nil {
			return nil, fmt.Errorf("tokenizer.json: null decoder in a Sequence")
		}
		switch d.Type {
		case "Replace", "ByteFallback", "Fuse", "Strip", "Metaspace":
			// Together these give the text back with "▁" as space, byte pieces as bytes
			// and the dummy space dropped, which Decode does.
		default:
			return nil, fmt.Errorf("tokenizer.json: decoder %q not supported with a byte-fallback BPE", d.Type)
		}
	}
	v.Model = "llama"
	v.AddSpacePrefix = prefix
	for i, p := range v.Tokens {
		if v.Types[i] != TypeNormal {
			continue
		}
		if _, ok := parseBytePiece(p); ok {
			v.Types[i] = TypeByte
		}
	}
	if v.UNK >= 0 {
		v.Types[v.UNK] = TypeUnknown
	}
	// Scores only report priority (Score); merging goes by pair rank.
	v.Scores = make([]float32, len(v.Tokens))
	for i := range v.Scores {
		v.Scores[i] = -math.MaxFloat32
	}
	ids := make(map[string]int32, len(v.Tokens))
	for i, p := range v.Tokens {
		if _, dup := ids[p]; !dup && p != "" {
			ids[p] = int32(i)
		}
	}
	ranks, err := buildMerges(merges, func(s string) (int32, bool) { id, ok := ids[s]; return id, ok })
	if err != nil {
		return nil, err
	}
	for _, mg := range ranks {
		if s := rankScore(mg.rank); s > v.Scores[mg.id] {
			v.Scores[mg.id] = s
		}
	}
	t, err := newSentencePiece(v)
	if err != nil {
		return nil, err
	}
	t.pairRank = ranks
	t.prefixRule = rule
	return t, nil
}
