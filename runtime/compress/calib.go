package compress

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// CalibOptions say where the calibration activations come from: Tokens tokens of the
// text file Path, starting after its first Skip tokens, run through the uncompressed
// model (f32) in windows of the model's context. The text should be the training part
// of the data the model is evaluated on — never the held-out part, whose scores would
// then be inflated; `bench compress` takes the TinyStories training prefix past the
// tokens its seen-text audit scores.
type CalibOptions struct {
	Path   string
	Skip   int // tokens of Path skipped first (default 0)
	Tokens int // tokens run (default 4096)
	// Window is the tokens per forward pass, BOS included (default: the model's
	// context). Keep it within the context the model was trained on: some files claim a
	// longer one (stories260K's GGUF says 2,048; it was trained on 512).
	Window int
	// MaxBytes bounds the memory of the input statistics (XᵀX per distinct layer
	// input when whitening: 8·In² bytes each); default 4 GiB. A model past it is refused
	// with the size it would need.
	MaxBytes int64
}

// inputGroups maps each matrix to the matrix whose input it shares: q, k and v read the
// attention norm's output, gate and up the FFN norm's.
var inputGroups = map[string]string{
	"attn_q": "attn_q", "attn_k": "attn_q", "attn_v": "attn_q", "attn_output": "attn_output",
	"ffn_gate": "ffn_gate", "ffn_up": "ffn_gate", "ffn_down": "ffn_down",
}

// inputStats are one layer input's statistics over the calibration tokens.
type inputStats struct {
	in    int
	rows  int
	sumsq []float64 // Σ x_k² per input k (Wanda's ‖X_k‖²)
	gram  []float64 // Σ x xᵀ, lower triangle [in][in] (whitening); nil when not asked
}

func (s *inputStats) add(x []float32, rows int) {
	in := s.in
	for r := 0; r < rows; r++ {
		row := x[r*in : (r+1)*in]
		for k, v := range row {
			s.sumsq[k] += float64(v) * float64(v)
		}
		if s.gram != nil {
			for i, vi := range row {
				if vi == 0 {
					continue
				}
				g := s.gram[i*in : i*in+i+1]
				fv := float64(vi)
				for j := range g {
					g[j] += fv * float64(row[j])
				}
			}
		}
	}
	s.rows += rows
}

// gramFull returns the symmetric XᵀX [in][in] from the lower triangle.
func (s *inputStats) gramFull() []float64 {
	in := s.in
	g := make([]float64, in*in)
	for i := 0; i < in; i++ {
		for j := 0; j <= i; j++ {
			g[i*in+j] = s.gram[i*in+j]
			g[j*in+i] = s.gram[i*in+j]
		}
	}
	return g
}

// tap is the CPU backend recording the inputs of the matrices it is asked about.
type tap struct {
	*cpu.Backend
	stats map[string]*inputStats // weight name of a group's first matrix → its input's statistics
}

func (t *tap) MatMul(s backend.Stream, out, x backend.Tensor, w *backend.Weight, epi backend.Epilogue) error {
	if st := t.stats[w.Name]; st != nil && x.Cols == st.in {
		st.add(cpu.Float32s(x), x.Rows)
	}
	return t.Backend.MatMul(s, out, x, w, epi)
}

// calibrate runs the calibration text through the model at path and returns, per
// matrix name ("blk.N.ffn_up.weight"), the statistics of its input: sums of squares
// always, the Gram matrix when gram is set. names are the matrices asked about.
func calibrate(path string, names []string, gram bool, o CalibOptions) (map[string]*inputStats, int, error) {
	if o.Tokens <= 0 {
		o.Tokens = 4096
	}
	if o.Skip < 0 {
		return nil, 0, fmt.Errorf("calibration: skip %d tokens", o.Skip)
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 4 << 30
	}
	t := &tap{Backend: cpu.New(cpu.Options{}), stats: map[string]*inputStats{}}
	defer t.Backend.Close()
	m, err := llm.Open(path, "", t, model.Options{Weights: model.WeightsF32})
	if err != nil {
		return nil, 0, fmt.Errorf("calibration: %w", err)
	}
	defer m.Close()
	c := m.Config
	// The statistics each asked matrix needs, shared within an input group.
	byName := map[string]*inputStats{}
	var need int64
	for _, name := range names {
		layer, kind, ok := splitName(name)
		if !ok {
			return nil, 0, fmt.Errorf("calibration: %q is not a block matrix", name)
		}
		lead := fmt.Sprintf("blk.%d.%s.weight", layer, inputGroups[kind])
		st := t.stats[lead]
		if st == nil {
			in := c.Dim
			switch kind {
			case "attn_output":
				in = c.Heads * c.HeadDim
			case "ffn_down":
				in = c.HiddenDim
			}
			st = &inputStats{in: in, sumsq: make([]float64, in)}
			need += int64(8 * in)
			if gram {
				need += int64(8 * in * in)
			}
			if need > o.MaxBytes {
				return nil, 0, fmt.Errorf("calibration: the input statistics would take more than %d bytes (whitening keeps XᵀX, 8·In² bytes, per distinct layer input): raise the limit or drop whitening", o.MaxBytes)
			}
			if gram {
				st.gram = make([]float64, in*in)
			}
			t.stats[lead] = st
		}
		byName[name] = st
	}
	text, err := shared.ReadText(o.Path)
	if err != nil {
		return nil, 0, fmt.Errorf("calibration text: %w", err)
	}
	text = strings.TrimLeftFunc(text, unicode.IsSpace)
	ids := m.Tokenizer.Encode(text, tokenizer.EncodeOptions{})
	if len(ids) < o.Skip+o.Tokens {
		return nil, 0, fmt.Errorf("calibration text %s has %d tokens; %d skipped plus %d asked need more", o.Path, len(ids), o.Skip, o.Tokens)
	}
	ids = ids[o.Skip : o.Skip+o.Tokens]
	ctx := c.MaxSeqLen
	if o.Window > 0 {
		ctx = min(ctx, o.Window)
	}
	if ctx < 2 {
		return nil, 0, fmt.Errorf("calibration: window of %d tokens", ctx)
	}
	s, err := llm.NewScorer(m.Model, ctx)
	if err != nil {
		return nil, 0, err
	}
	bos := m.Tokenizer.BOS()
	for start := 0; start < len(ids); start += ctx - 1 {
		win := append([]int32{bos}, ids[start:min(len(ids), start+ctx-1)]...)
		if _, _, err := s.Score(win); err != nil {
			return nil, 0, fmt.Errorf("calibration: %w", err)
		}
	}
	return byName, len(ids), nil
}

// splitName parses "blk.N.KIND.weight" for the seven block matrices.
func splitName(name string) (layer int, kind string, ok bool) {
	var rest string
	if _, err := fmt.Sscanf(name, "blk.%d.%s", &layer, &rest); err != nil {
		return 0, "", false
	}
	kind, found := strings.CutSuffix(rest, ".weight")
	if _, known := inputGroups[kind]; !found || !known {
		return 0, "", false
	}
	return layer, kind, true
}
