// Package ggufref reads the llama.cpp reference data of ../shared/golden/gguf-quants
// (see its README): small llama.cpp-quantized models, llama.cpp's logits for them and
// the type llama-quantize chose for each tensor. Tests use it; it skips a test when the
// shared folder is absent.
package ggufref

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/model"
)

// ModelsDir is the fixture's models folder (the test is skipped without it).
func ModelsDir(tb testing.TB) string {
	tb.Helper()
	return shared.Path(tb, "golden", "gguf-quants", "models")
}

// Logits is one *.logits.json file: for each prompt, its ids and the logits after every
// prefix (Logits[p] follows IDs[0..p]).
type Logits struct {
	Model   string `json:"model"`
	NVocab  int    `json:"n_vocab"`
	Prompts []struct {
		IDs    []int32     `json:"ids"`
		Logits [][]float32 `json:"logits"`
	} `json:"prompts"`
}

// ReadLogits reads a logits file of the models folder ("synth256-Q4_K_M.deq-f32.logits.json").
func ReadLogits(tb testing.TB, name string) *Logits {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(ModelsDir(tb), name))
	if err != nil {
		tb.Fatal(err)
	}
	var l Logits
	if err := json.Unmarshal(raw, &l); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if len(l.Prompts) == 0 || l.NVocab <= 0 {
		tb.Fatalf("%s: no prompts", name)
	}
	return &l
}

// Tensor is one tensor of a fixture file as tensor_types.json lists it.
type Tensor struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	NE     []int  `json:"ne"`
	Offset int    `json:"offset_in_data"`
	Bytes  int    `json:"nbytes"`
	SHA256 string `json:"sha256"`
}

// File is one GGUF file of the fixture as tensor_types.json describes it.
type File struct {
	Bytes    int               `json:"bytes"`
	SHA256   string            `json:"sha256"`
	FileType *int              `json:"general.file_type"`
	Types    map[string]string `json:"tensors"`
	Tensors  []Tensor          `json:"tensor_details"`
}

// Files reads tensor_types.json: file name -> description.
func Files(tb testing.TB) map[string]File {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(ModelsDir(tb), "tensor_types.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]File
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("tensor_types.json: %v", err)
	}
	return m
}

// Variants lists the quantized fixture models by their suffix ("Q4_K_M", "Q2_K_pure"),
// sorted; synth256-<v>.gguf is the file.
func Variants(tb testing.TB) []string {
	var out []string
	for name := range Files(tb) {
		v := strings.TrimSuffix(strings.TrimPrefix(name, "synth256-"), ".gguf")
		if v != "F32" {
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

// Forward runs ids through m in one pass on a fresh cache and returns the logits of
// every position ([len(ids)][vocab], a copy).
func Forward(m *model.Model, ids []int32) ([]float32, error) {
	n := len(ids)
	ws, err := m.NewWorkspace(n, n)
	if err != nil {
		return nil, err
	}
	nb := (n + model.DefaultBlockSize - 1) / model.DefaultBlockSize
	kv, err := m.NewKVCache(nb, model.DefaultBlockSize)
	if err != nil {
		return nil, err
	}
	blocks := make([]int32, nb)
	for i := range blocks {
		blocks[i] = int32(i)
	}
	logits, err := m.Forward(ws, kv, []model.Seq{{Tokens: ids, Blocks: blocks, Logits: model.LogitsAll}})
	if err != nil {
		return nil, err
	}
	return append([]float32(nil), logits...), nil
}

// MaxAbsDiff runs every prompt of ref through m (Forward) and returns the largest
// |logit − reference| and where it is.
func MaxAbsDiff(m *model.Model, ref *Logits) (float64, string, error) {
	V := m.Config.VocabSize
	if V != ref.NVocab {
		return 0, "", fmt.Errorf("model vocabulary %d, reference %d", V, ref.NVocab)
	}
	worst, where := 0.0, ""
	for p, pr := range ref.Prompts {
		logits, err := Forward(m, pr.IDs)
		if err != nil {
			return 0, "", err
		}
		if len(pr.Logits) != len(pr.IDs) {
			return 0, "", fmt.Errorf("prompt %d: %d logit rows for %d ids", p, len(pr.Logits), len(pr.IDs))
		}
		for i, row := range pr.Logits {
			for v, want := range row {
				d := math.Abs(float64(logits[i*V+v]) - float64(want))
				if math.IsNaN(d) {
					return math.Inf(1), fmt.Sprintf("prompt %d position %d token %d: %g vs %g", p, i, v, logits[i*V+v], want), nil
				}
				if d > worst {
					worst, where = d, fmt.Sprintf("prompt %d position %d token %d: %g vs %g", p, i, v, logits[i*V+v], want)
				}
			}
		}
	}
	return worst, where, nil
}
