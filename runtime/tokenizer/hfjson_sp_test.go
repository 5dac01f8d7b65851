package tokenizer

import (
	"encoding/json"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sentencePieceToHFJSON converts a SentencePiece BPE vocabulary to tokenizer.json the way
// transformers' LlamaConverter does: every split of a piece into two pieces becomes a
// merge, merges ordered by the merged piece's score (stable, so ties keep piece order),
// splits of one piece by the ids of their halves. Merges are written in the
// ["a", "b"] array form when arrays is set.
func sentencePieceToHFJSON(tb testing.TB, v *Vocab, arrays bool) []byte {
	vocab := make(map[string]int, len(v.Tokens))
	for i, p := range v.Tokens {
		vocab[p] = i
	}
	type mg struct {
		l, r  string
		score float32
	}
	var merges []mg
	for _, piece := range v.Tokens {
		runes := []rune(piece)
		var local []mg
		for k := 1; k < len(runes); k++ {
			l, r := string(runes[:k]), string(runes[k:])
			_, okl := vocab[l]
			_, okr := vocab[r]
			if okl && okr {
				local = append(local, mg{l, r, v.Scores[vocab[piece]]})
			}
		}
		sort.SliceStable(local, func(a, b int) bool {
			return vocab[local[a].l] < vocab[local[b].l] || vocab[local[a].l] == vocab[local[b].l] && vocab[local[a].r] < vocab[local[b].r]
		})
		merges = append(merges, local...)
	}
	sort.SliceStable(merges, func(a, b int) bool { return merges[a].score > merges[b].score })
	var ms []any
	for _, m := range merges {
		if arrays {
			ms = append(ms, []string{m.l, m.r})
		} else {
			ms = append(ms, m.l+" "+m.r)
		}
	}
	added := []map[string]any{}
	for _, id := range []int32{v.UNK, v.BOS, v.EOS} {
		added = append(added, map[string]any{"id": id, "content": v.Tokens[id], "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
	}
	doc := map[string]any{
		"version":      "1.0",
		"added_tokens": added,
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}},
		"pre_tokenizer": nil,
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int32{v.BOS}, "tokens": []string{"<s>"}}}},
		"decoder": map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}},
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
			"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": ms},
	}
	b, err := json.Marshal(doc)
	require.NoError(tb, err)
	return b
}

// TestHFJSONFromSentencePieceMatchesBin: Llama 2 as a tokenizer.json (converted from its
// tokenizer.model as transformers does) gives the ids of tokenizer.bin, the golden ones
// included: merge ranks reproduce SentencePiece's score order.
func TestHFJSONFromSentencePieceMatchesBin(t *testing.T) {
	v := llama2Model(t)
	bin := llama2Tok(t)
	var g struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		} `json:"cases"`
	}
	readJSON(t, &g, "golden", "llama2-tokenizer.json")
	for _, arrays := range []bool{false, true} {
		cfg := []byte(`{"add_bos_token": true, "bos_token": "<s>", "eos_token": {"__type": "AddedToken", "content": "</s>"}, "tokenizer_class": "LlamaTokenizer"}`)
		tok, err := FromHFTokenizerJSON(sentencePieceToHFJSON(t, v, arrays), cfg)
		require.NoError(t, err)
		assert.Equal(t, EncodeOptions{AddBOS: true, ParseSpecial: true}, tok.DefaultOptions())
		assert.Equal(t, []int32{2}, tok.EOSIDs())
		for _, c := range g.Cases {
			assert.Equal(t, append([]int32{1}, c.IDs...), tok.Encode(c.Text, tok.DefaultOptions()), "%q", c.Text)
		}
		for _, s := range append(genStrings(1000), roundTripStrings...) {
			ids := bin.Encode(s, withBOS)
			require.Equal(t, ids, tok.Encode(s, withBOS), "%q", s)
			require.Equal(t, s, tok.Decode(ids), "%q", s)
		}
		// The Prepend normalizer runs on each text between special tokens.
		assert.Equal(t, []int32{1, 1, 15043, 2, 921}, tok.Encode("<s>Hello</s>x", tok.DefaultOptions()))
		id, ok := tok.TokenID("</s>")
		assert.True(t, ok)
		assert.Equal(t, int32(2), id)
	}
}

// TestHFVocabSentencePiece: Llama 2's tokenizer.json written as a GGUF vocabulary
// (HFVocab: model "llama", merge ranks as scores) encodes every string as the
// tokenizer.json does, and keeps BOS/EOS/UNK, the flags and the token types.
func TestHFVocabSentencePiece(t *testing.T) {
	v := llama2Model(t)
	cfg := []byte(`{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>", "tokenizer_class": "LlamaTokenizer"}`)
	js := sentencePieceToHFJSON(t, v, false)
	hf, err := FromHFTokenizerJSON(js, cfg)
	require.NoError(t, err)
	gv, err := HFVocab(js, cfg)
	require.NoError(t, err)
	assert.Equal(t, "llama", gv.Model)
	assert.Equal(t, []int32{1, 2, 0}, []int32{gv.BOS, gv.EOS, gv.UNK})
	assert.True(t, gv.AddBOS)
	assert.True(t, gv.AddSpacePrefix)
	assert.Nil(t, gv.Merges)
	gg, err := New(gv)
	require.NoError(t, err)
	for id := range hf.VocabSize() {
		require.Equal(t, hf.Type(int32(id)), gg.Type(int32(id)), "token %d", id)
	}
	for _, s := range append(genStrings(1000), roundTripStrings...) {
		require.Equal(t, hf.Encode(s, withBOS), gg.Encode(s, withBOS), "%q", s)
	}
}
