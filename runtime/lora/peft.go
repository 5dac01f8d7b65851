package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/vireo-ai/vireo/runtime/loader"
)

// maxConfigBytes bounds adapter_config.json (real ones are a few KiB).
const maxConfigBytes = 1 << 20

// peftConfig is the part of PEFT's LoraConfig that decides how the adapter applies.
// Fields that change the computation in ways Vireo does not implement are read so they
// can be refused by name.
type peftConfig struct {
	PEFTType      string             `json:"peft_type"`
	R             *int               `json:"r"`
	LoraAlpha     *float64           `json:"lora_alpha"`
	UseRSLoRA     bool               `json:"use_rslora"`
	UseDoRA       bool               `json:"use_dora"`
	FanInFanOut   bool               `json:"fan_in_fan_out"`
	Bias          string             `json:"bias"`
	LoraBias      bool               `json:"lora_bias"`
	TargetModules json.RawMessage    `json:"target_modules"`
	ModulesToSave []string           `json:"modules_to_save"`
	RankPattern   map[string]int     `json:"rank_pattern"`
	AlphaPattern  map[string]float64 `json:"alpha_pattern"`
	TargetParams  []string           `json:"target_parameters"`
	BaseModel     string             `json:"base_model_name_or_path"`
}

// peftTensor matches PEFT's tensor names for the targets Vireo knows:
// base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (the prefix varies
// with the class the adapter was trained on).
var peftTensor = regexp.MustCompile(`^(?:base_model\.model\.)?(?:model\.)?layers\.(\d+)\.(self_attn|mlp)\.([a-z_]+)\.lora_([AB])\.weight$`)

// loadPEFT reads a PEFT adapter directory.
func loadPEFT(src Source, dir string, c *loader.Config, maxRank int) (*Adapter, error) {
	cfgPath := filepath.Join(dir, "adapter_config.json")
	raw, err := readBounded(src, cfgPath, maxConfigBytes)
	if errors.Is(err, os.ErrNotExist) {
		if _, e := src.stat(filepath.Join(dir, "config.json")); e == nil {
			return nil, fmt.Errorf("%s: %w: it is a model directory (config.json), not a PEFT adapter (adapter_config.json)", dir, ErrNotAdapter)
		}
		return nil, fmt.Errorf("%s: %w: no adapter_config.json (a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors)", dir, ErrNotAdapter)
	}
	if err != nil {
		return nil, err
	}
	var pc peftConfig
	if err := json.Unmarshal(raw, &pc); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if err := pc.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	stPath := filepath.Join(dir, "adapter_model.safetensors")
	if _, err := src.stat(stPath); errors.Is(err, os.ErrNotExist) {
		if _, e := src.stat(filepath.Join(dir, "adapter_model.bin")); e == nil {
			return nil, fmt.Errorf("%s: adapter_model.bin (a PyTorch pickle) is not read: save the adapter as adapter_model.safetensors (PEFT's default, safe_serialization=True)", dir)
		}
		return nil, fmt.Errorf("%s: no adapter_model.safetensors beside adapter_config.json", dir)
	}
	f, err := src.open(stPath)
	if err != nil {
		return nil, err
	}
	st, err := loader.OpenSafetensorsFile(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	a := &Adapter{Path: dir, Format: "peft", Alpha: *pc.LoraAlpha, RSLoRA: pc.UseRSLoRA}
	pairs := map[[2]int]*pair{}
	for _, t := range st.Tensors {
		layer, tgt, isA, err := peftName(t.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", stPath, err)
		}
		key := [2]int{layer, int(tgt)}
		p := pairs[key]
		if p == nil {
			module := strings.TrimSuffix(strings.TrimSuffix(t.Name, ".weight"), ".lora_A")
			module = strings.TrimPrefix(strings.TrimSuffix(module, ".lora_B"), "base_model.model.")
			r, err := pc.moduleRank(module)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfgPath, err)
			}
			alpha, err := pc.moduleAlpha(module)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cfgPath, err)
			}
			p = &pair{rankWant: r, scale: scaleOf(alpha, r, pc.UseRSLoRA)}
			pairs[key] = p
		}
		if isA {
			p.a, p.aName = t, t.Name
		} else {
			p.b, p.bName = t, t.Name
		}
	}
	if err := assemble(a, pairs, c, maxRank, c.RopeStyle == loader.RopePairs, false); err != nil {
		return nil, fmt.Errorf("%s: %w", stPath, err)
	}
	return a, nil
}

// scaleOf is PEFT's scaling: alpha/r, or alpha/√r for rsLoRA.
func scaleOf(alpha float64, r int, rs bool) float64 {
	if r <= 0 {
		return 0
	}
	if rs {
		return alpha / math.Sqrt(float64(r))
	}
	return alpha / float64(r)
}

// check refuses configurations Vireo would apply wrongly.
func (pc *peftConfig) check() error {
	switch {
	case pc.PEFTType == "":
		return errors.New("no peft_type (want LORA)")
	case pc.PEFTType != "LORA":
		return fmt.Errorf("peft_type %s is not supported (only LORA)", clip(pc.PEFTType))
	case pc.R == nil || *pc.R <= 0:
		return errors.New("r (the rank) must be a positive integer")
	case pc.LoraAlpha == nil:
		return errors.New("no lora_alpha")
	case math.IsNaN(*pc.LoraAlpha) || math.IsInf(*pc.LoraAlpha, 0):
		return fmt.Errorf("lora_alpha %v is not finite", *pc.LoraAlpha)
	case pc.UseDoRA:
		return errors.New("use_dora: DoRA (weight-decomposed LoRA) is not supported")
	case pc.FanInFanOut:
		return errors.New("fan_in_fan_out: transposed (Conv1D, GPT-2 style) weights are not supported")
	case pc.Bias != "" && pc.Bias != "none":
		return fmt.Errorf("bias %q: adapters that train biases are not supported (only \"none\")", clip(pc.Bias))
	case pc.LoraBias:
		return errors.New("lora_bias: a bias on lora_B is not supported")
	case len(pc.ModulesToSave) > 0:
		return fmt.Errorf("modules_to_save %s: fully trained modules beside the adapter are not supported", clipList(pc.ModulesToSave))
	case len(pc.TargetParams) > 0:
		return fmt.Errorf("target_parameters %s: LoRA on parameters (mixture-of-experts weights) is not supported", clipList(pc.TargetParams))
	}
	for k, v := range pc.RankPattern {
		if v <= 0 {
			return fmt.Errorf("rank_pattern %q: rank %d must be positive", clip(k), v)
		}
	}
	for k, v := range pc.AlphaPattern {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("alpha_pattern %q: %v is not finite", clip(k), v)
		}
	}
	if len(pc.TargetModules) == 0 || string(pc.TargetModules) == "null" {
		return nil
	}
	var one string
	if json.Unmarshal(pc.TargetModules, &one) == nil {
		return nil // "all-linear" or a regular expression: the tensors decide
	}
	var list []string
	if err := json.Unmarshal(pc.TargetModules, &list); err != nil {
		return fmt.Errorf("target_modules must be a string or a list of strings: %w", err)
	}
	for _, m := range list {
		if !knownPEFT(m) {
			return fmt.Errorf("target_modules names %q, which Vireo cannot adapt (only %s)", clip(m), strings.Join(peftNames[:], ", "))
		}
	}
	return nil
}

func knownPEFT(m string) bool {
	for _, n := range peftNames {
		if m == n {
			return true
		}
	}
	return false
}

// patternMatch reports whether a rank_pattern or alpha_pattern key applies to module
// (its full name), as PEFT matches them: the key is a regular expression matched
// against the whole name, or a suffix after a dot.
func patternMatch(key, module string) bool {
	if module == key || strings.HasSuffix(module, "."+key) {
		return true
	}
	re, err := regexp.Compile(`^(?:.*\.)?(?:` + key + `)$`)
	return err == nil && re.MatchString(module)
}

// moduleRank is the rank the configuration declares for module (its name without
// PEFT's base_model.model. prefix).
func (pc *peftConfig) moduleRank(module string) (int, error) {
	return patternValue("rank_pattern", pc.RankPattern, module, *pc.R)
}

// moduleAlpha is the alpha the configuration declares for module.
func (pc *peftConfig) moduleAlpha(module string) (float64, error) {
	return patternValue("alpha_pattern", pc.AlphaPattern, module, *pc.LoraAlpha)
}

// patternValue is the value of the pattern key matching module, or def. PEFT takes the
// first match in the file's key order, which a JSON object read into a map loses, so
// keys that match the same module with different values are refused.
func patternValue[T comparable](field string, pat map[string]T, module string, def T) (T, error) {
	v, key, found := def, "", false
	for k, x := range pat {
		if !patternMatch(k, module) {
			continue
		}
		if found && x != v {
			return def, fmt.Errorf("%s keys %q and %q both match %s with different values", field, clip(key), clip(k), module)
		}
		v, key, found = x, k, true
	}
	return v, nil
}

// peftName parses a PEFT tensor name into its layer, target and matrix (A or B),
// refusing what Vireo cannot apply, by name.
func peftName(name string) (layer int, t Target, isA bool, err error) {
	m := peftTensor.FindStringSubmatch(name)
	if m == nil {
		switch {
		case strings.Contains(name, "lora_embedding_"):
			return 0, 0, false, fmt.Errorf("tensor %q: LoRA on the token embedding is not supported", clip(name))
		case strings.Contains(name, "lm_head"):
			return 0, 0, false, fmt.Errorf("tensor %q: LoRA on the classifier (lm_head) is not supported", clip(name))
		case strings.Contains(name, "lora_magnitude_vector"):
			return 0, 0, false, fmt.Errorf("tensor %q: DoRA magnitudes are not supported", clip(name))
		case strings.HasSuffix(name, ".bias"):
			return 0, 0, false, fmt.Errorf("tensor %q: LoRA biases are not supported", clip(name))
		}
		return 0, 0, false, fmt.Errorf("tensor %q is not a LoRA matrix of a Llama layer Vireo knows (want ...layers.N.self_attn|mlp.{%s}.lora_A|lora_B.weight)", clip(name), strings.Join(peftNames[:], ","))
	}
	layer, err = strconv.Atoi(m[1])
	if err != nil || layer > 1<<20 {
		return 0, 0, false, fmt.Errorf("tensor %q: bad layer number", clip(name))
	}
	for i, n := range peftNames {
		if n == m[3] {
			want := "self_attn"
			if Target(i) >= TargetGate {
				want = "mlp"
			}
			if m[2] != want {
				return 0, 0, false, fmt.Errorf("tensor %q: %s belongs to %s, not %s", clip(name), n, want, m[2])
			}
			return layer, Target(i), m[4] == "A", nil
		}
	}
	return 0, 0, false, fmt.Errorf("tensor %q adapts %s, which Vireo cannot adapt (only %s)", clip(name), m[3], strings.Join(peftNames[:], ", "))
}

// readBounded reads a file of at most limit bytes.
func readBounded(src Source, path string, limit int64) ([]byte, error) {
	f, err := src.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than the %d bytes a configuration may have", path, limit)
	}
	return b, nil
}

// clip bounds a string from a file in an error message.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

func clipList(l []string) string {
	if len(l) > 8 {
		l = append(l[:8:8], "…")
	}
	for i := range l {
		l[i] = clip(l[i])
	}
	return "[" + strings.Join(l, ", ") + "]"
}
