package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// Files of a Hugging Face model directory.
const (
	hfConfigFile          = "config.json"
	hfGenerationFile      = "generation_config.json"
	hfWeightsFile         = "model.safetensors"
	hfIndexFile           = "model.safetensors.index.json"
	hfTokenizerFile       = "tokenizer.json"
	hfTokenizerConfigFile = "tokenizer_config.json"
	hfChatTemplateFile    = "chat_template.jinja"
	hfSentencePieceFile   = "tokenizer.model"
)

// hfModelTypes are the config.json model_type values this loader runs; both are the
// plain Llama architecture (Mistral without its sliding window).
var hfModelTypes = map[string]bool{"llama": true, "mistral": true}

// hfArchitectures are the config.json architectures classes accepted.
var hfArchitectures = map[string]bool{"LlamaForCausalLM": true, "MistralForCausalLM": true}

// hfRefusedTypes say why well-known model types are refused.
var hfRefusedTypes = map[string]string{
	"mixtral":     "mixture of experts",
	"qwen2_moe":   "mixture of experts",
	"qwen3_moe":   "mixture of experts",
	"deepseek_v2": "mixture of experts",
	"deepseek_v3": "mixture of experts",
	"dbrx":        "mixture of experts",
	"jamba":       "mixture of experts and state-space layers",
	"llama4":      "mixture of experts and chunked attention",
	"qwen2":       "biases on the q/k/v projections",
	"qwen3":       "q/k norms",
	"gemma":       "Gemma's GeGLU, norm offset and embedding scaling",
	"gemma2":      "Gemma's GeGLU, norm offset, soft-capping and sliding window",
	"gemma3":      "Gemma's GeGLU, norm offset, q/k norms and sliding window",
	"phi":         "parallel attention and biases",
	"phi3":        "fused qkv and gate/up projections",
	"gpt2":        "learned positions, LayerNorm and GELU",
	"falcon":      "parallel attention and LayerNorm",
	"mpt":         "ALiBi and LayerNorm",
}

// hfSuffixes maps the per-layer HF tensor names to canonical ones.
var hfSuffixes = [][2]string{
	{"input_layernorm.weight", "attn_norm.weight"},
	{"self_attn.q_proj.weight", "attn_q.weight"},
	{"self_attn.k_proj.weight", "attn_k.weight"},
	{"self_attn.v_proj.weight", "attn_v.weight"},
	{"self_attn.o_proj.weight", "attn_output.weight"},
	{"post_attention_layernorm.weight", "ffn_norm.weight"},
	{"mlp.gate_proj.weight", "ffn_gate.weight"},
	{"mlp.up_proj.weight", "ffn_up.weight"},
	{"mlp.down_proj.weight", "ffn_down.weight"},
}

var hfGlobals = [][2]string{
	{"model.embed_tokens.weight", "token_embd.weight"},
	{"model.norm.weight", "output_norm.weight"},
	{"lm_head.weight", "output.weight"},
}

// hfCanonical maps an HF tensor name to its canonical name. skip: a tensor HF keeps
// but the model does not read (rotary_emb.inv_freq, recomputed from the config).
func hfCanonical(name string, layers int) (canon string, skip bool, err error) {
	for _, g := range hfGlobals {
		if name == g[0] {
			return g[1], false, nil
		}
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if ok {
		num, suffix, ok := strings.Cut(rest, ".")
		l, err := strconv.Atoi(num)
		if ok && err == nil && l >= 0 && strconv.Itoa(l) == num {
			if suffix == "self_attn.rotary_emb.inv_freq" {
				return "", true, nil
			}
			for _, s := range hfSuffixes {
				if suffix == s[0] {
					if l >= layers {
						return "", false, fmt.Errorf("tensor %q is for layer %d but num_hidden_layers is %d", name, l, layers)
					}
					return fmt.Sprintf("blk.%d.%s", l, s[1]), false, nil
				}
			}
		}
	}
	return "", false, fmt.Errorf("tensor %q is not part of a Llama model (biases, another architecture?)", name)
}

// hfName is the HF name of a canonical tensor name.
func hfName(canon string) string {
	for _, g := range hfGlobals {
		if canon == g[1] {
			return g[0]
		}
	}
	if rest, ok := strings.CutPrefix(canon, "blk."); ok {
		if num, suffix, ok := strings.Cut(rest, "."); ok {
			for _, s := range hfSuffixes {
				if suffix == s[1] {
					return "model.layers." + num + "." + s[0]
				}
			}
		}
	}
	return canon
}

// jsonObject is a decoded JSON object with typed getters whose errors name the file
// and key.
type jsonObject struct {
	file string
	m    map[string]any
}

func readJSONObject(dir, file string) (jsonObject, error) {
	data, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return jsonObject{}, err
	}
	return parseJSONObject(file, data)
}

func parseJSONObject(file string, data []byte) (jsonObject, error) {
	o := jsonObject{file: file}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&o.m); err != nil {
		return o, fmt.Errorf("%s: %w", file, err)
	}
	if o.m == nil {
		return o, fmt.Errorf("%s: not a JSON object", file)
	}
	return o, nil
}

// has reports whether key is present and not null.
func (o jsonObject) has(key string) bool { return o.m[key] != nil }

func (o jsonObject) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{o.file}, args...)...)
}

// int reads a positive integer below maxConfigValue.
func (o jsonObject) int(key string, required bool, def int) (int, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		if required {
			return 0, o.errorf("missing %q", key)
		}
		return def, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, o.errorf("%q is %s, want an integer", key, jsonKind(v))
	}
	i, err := n.Int64()
	if err != nil {
		return 0, o.errorf("%q is %s, want an integer", key, n)
	}
	if i <= 0 || i >= maxConfigValue {
		return 0, o.errorf("implausible %q: %d", key, i)
	}
	return int(i), nil
}

// float reads a positive finite number that survives conversion to float32.
func (o jsonObject) float(key string, required bool, def float64) (float64, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		if required {
			return 0, o.errorf("missing %q", key)
		}
		return def, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, o.errorf("%q is %s, want a number", key, jsonKind(v))
	}
	f, err := n.Float64()
	if err != nil || !(f > 0) || math.IsInf(f, 0) || float32(f) == 0 || math.IsInf(float64(float32(f)), 0) {
		return 0, o.errorf("implausible %q: %s", key, n)
	}
	return f, nil
}

func (o jsonObject) boolean(key string, def bool) (bool, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, o.errorf("%q is %s, want true or false", key, jsonKind(v))
	}
	return b, nil
}

func (o jsonObject) str(key string) (string, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", o.errorf("%q is %s, want a string", key, jsonKind(v))
	}
	return s, nil
}

// ids reads a token id or a list of them (eos_token_id), each in [0, vocab).
func (o jsonObject) ids(key string, vocab int) ([]int32, error) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	}
	var out []int32
	for _, x := range list {
		n, ok := x.(json.Number)
		id, err := n.Int64()
		if !ok || err != nil {
			return nil, o.errorf("%q holds %s, want token ids", key, jsonKind(x))
		}
		if id < 0 || id >= int64(vocab) {
			return nil, o.errorf("%q: token id %d is outside the vocabulary of %d", key, id, vocab)
		}
		if !slices.Contains(out, int32(id)) {
			out = append(out, int32(id))
		}
	}
	return out, nil
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// parseHFConfig turns config.json into a Config, refusing by name what the model does
// not implement.
func parseHFConfig(o jsonObject) (Config, error) {
	c := Config{Arch: "llama", RopeStyle: RopeRotateHalf}
	mt, err := o.str("model_type")
	if err != nil {
		return c, err
	}
	var archs []string
	if v, ok := o.m["architectures"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return c, o.errorf("%q is %s, want a list of class names", "architectures", jsonKind(v))
		}
		for _, a := range list {
			s, ok := a.(string)
			if !ok {
				return c, o.errorf("%q holds %s, want class names", "architectures", jsonKind(a))
			}
			archs = append(archs, s)
		}
	}
	switch {
	case mt == "" && len(archs) == 0:
		return c, o.errorf("no model_type or architectures: cannot tell the architecture")
	case mt != "" && !hfModelTypes[mt]:
		if why, ok := hfRefusedTypes[mt]; ok {
			return c, o.errorf("model_type %q not supported (%s)", mt, why)
		}
		return c, o.errorf("model_type %q not supported (only \"llama\" and \"mistral\")", mt)
	}
	if len(archs) > 0 && !slices.ContainsFunc(archs, func(a string) bool { return hfArchitectures[a] }) {
		return c, o.errorf("architectures %q not supported (only LlamaForCausalLM and MistralForCausalLM)", archs)
	}
	for _, key := range []string{"num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"} {
		if n, err := o.int(key, false, 0); err == nil && n > 1 {
			return c, o.errorf("%s %d: mixture of experts not supported", key, n)
		}
	}
	for _, f := range []struct {
		key string
		dst *int
	}{
		{"hidden_size", &c.Dim}, {"intermediate_size", &c.HiddenDim}, {"num_hidden_layers", &c.Layers},
		{"num_attention_heads", &c.Heads}, {"vocab_size", &c.VocabSize}, {"max_position_embeddings", &c.MaxSeqLen},
	} {
		if *f.dst, err = o.int(f.key, true, 0); err != nil {
			return c, err
		}
	}
	if c.KVHeads, err = o.int("num_key_value_heads", false, c.Heads); err != nil {
		return c, err
	}
	if c.KVHeads > c.Heads || c.Heads%c.KVHeads != 0 {
		return c, o.errorf("num_key_value_heads %d does not divide num_attention_heads %d", c.KVHeads, c.Heads)
	}
	if o.has("head_dim") {
		if c.HeadDim, err = o.int("head_dim", true, 0); err != nil {
			return c, err
		}
	} else {
		if c.Dim%c.Heads != 0 {
			return c, o.errorf("num_attention_heads %d does not divide hidden_size %d (and no head_dim)", c.Heads, c.Dim)
		}
		c.HeadDim = c.Dim / c.Heads
	}
	if c.HeadDim%2 != 0 {
		return c, o.errorf("head dimension %d is odd (RoPE rotates pairs)", c.HeadDim)
	}
	theta, err := o.float("rope_theta", false, 10000)
	if err != nil {
		return c, err
	}
	c.RopeTheta = float32(theta)
	eps, err := o.float("rms_norm_eps", false, 1e-6)
	if err != nil {
		return c, err
	}
	c.NormEps = float32(eps)
	if c.TiedEmbeddings, err = o.boolean("tie_word_embeddings", false); err != nil {
		return c, err
	}
	if act, err := o.str("hidden_act"); err != nil {
		return c, err
	} else if act != "" && act != "silu" {
		return c, o.errorf("hidden_act %q not supported (only silu)", act)
	}
	for _, key := range []string{"attention_bias", "mlp_bias"} {
		if b, err := o.boolean(key, false); err != nil {
			return c, err
		} else if b {
			return c, o.errorf("%s is true: biases are not supported", key)
		}
	}
	// transformers' MistralConfig defaults sliding_window to 4096 when the key is absent;
	// Mistral v0.2 and later write null.
	_, present := o.m["sliding_window"]
	if o.has("sliding_window") || (mt == "mistral" && !present) {
		use, err := o.boolean("use_sliding_window", true)
		if err != nil {
			return c, err
		}
		w, err := o.int("sliding_window", false, 4096)
		if err != nil {
			return c, err
		}
		if use && w < c.MaxSeqLen {
			return c, o.errorf("sliding_window %d is smaller than the context of %d: sliding-window attention not supported", w, c.MaxSeqLen)
		}
	}
	if c.RopeScaling, err = parseHFRopeScaling(o); err != nil {
		return c, err
	}
	if err := c.validate(); err != nil {
		return c, o.errorf("%w", err)
	}
	return c, nil
}

func parseHFRopeScaling(o jsonObject) (RopeScaling, error) {
	v, ok := o.m["rope_scaling"]
	if !ok || v == nil {
		return RopeScaling{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return RopeScaling{}, o.errorf("%q is %s, want an object", "rope_scaling", jsonKind(v))
	}
	rs := jsonObject{file: o.file + " rope_scaling", m: m}
	typ, err := rs.str("rope_type")
	if err != nil {
		return RopeScaling{}, err
	}
	if typ == "" {
		if typ, err = rs.str("type"); err != nil {
			return RopeScaling{}, err
		}
	}
	switch typ {
	case "default":
		return RopeScaling{}, nil
	case "llama3":
	case "":
		return RopeScaling{}, rs.errorf("no rope_type")
	default:
		return RopeScaling{}, rs.errorf("rope_type %q not supported (only llama3)", typ)
	}
	s := RopeScaling{Type: "llama3"}
	for _, f := range []struct {
		key string
		dst *float32
	}{{"factor", &s.Factor}, {"low_freq_factor", &s.LowFreqFactor}, {"high_freq_factor", &s.HighFreqFactor}} {
		x, err := rs.float(f.key, true, 0)
		if err != nil {
			return s, err
		}
		*f.dst = float32(x)
	}
	if s.OriginalMaxPos, err = rs.int("original_max_position_embeddings", true, 0); err != nil {
		return s, err
	}
	if s.Factor < 1 {
		return s, rs.errorf("factor %g is below 1", s.Factor)
	}
	if s.HighFreqFactor <= s.LowFreqFactor {
		return s, rs.errorf("high_freq_factor %g must exceed low_freq_factor %g", s.HighFreqFactor, s.LowFreqFactor)
	}
	return s, nil
}

// hfShardName checks that an index's shard name is a plain file name in the directory.
func hfShardName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`) || filepath.Base(s) != s {
		return fmt.Errorf("%s: shard name %q is not a file name in the model directory", hfIndexFile, s)
	}
	return nil
}

// hfWeights maps the safetensors files of dir (adding their releases) and returns the
// canonical tensors, checked against the config.
func hfWeights(dir string, c Config, releases *[]func() error) (map[string]*Tensor, error) {
	type source struct {
		file   string
		tensor *Tensor
		hf     string
	}
	var sources []source
	mapShard := func(file string) (*SafetensorsFile, error) {
		data, release, err := mapFile(filepath.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, withoutPath(err, filepath.Join(dir, file)))
		}
		*releases = append(*releases, release)
		f, err := ParseSafetensors(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		return f, nil
	}
	single := filepath.Join(dir, hfWeightsFile)
	switch _, err := os.Stat(single); {
	case err == nil:
		f, err := mapShard(hfWeightsFile)
		if err != nil {
			return nil, err
		}
		for _, t := range f.Tensors {
			sources = append(sources, source{hfWeightsFile, t, t.Name})
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", hfWeightsFile, err)
	default:
		data, err := os.ReadFile(filepath.Join(dir, hfIndexFile))
		if errors.Is(err, fs.ErrNotExist) {
			for _, other := range []string{"pytorch_model.bin", "pytorch_model.bin.index.json", "consolidated.00.pth", "consolidated.safetensors"} {
				if _, err := os.Stat(filepath.Join(dir, other)); err == nil {
					return nil, fmt.Errorf("no %s or %s (found %s: only HF safetensors weights are supported)", hfWeightsFile, hfIndexFile, other)
				}
			}
			return nil, fmt.Errorf("no %s or %s", hfWeightsFile, hfIndexFile)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hfIndexFile, err)
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w", hfIndexFile, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: empty or missing weight_map", hfIndexFile)
		}
		names := slices.Sorted(maps.Keys(idx.WeightMap))
		shards := map[string]*SafetensorsFile{}
		for _, name := range names {
			shard := idx.WeightMap[name]
			f, ok := shards[shard]
			if !ok {
				if err := hfShardName(shard); err != nil {
					return nil, err
				}
				if f, err = mapShard(shard); err != nil {
					return nil, fmt.Errorf("%s names a shard that cannot be read: %w", hfIndexFile, err)
				}
				shards[shard] = f
			}
			t := f.Tensor(name)
			if t == nil {
				return nil, fmt.Errorf("%s maps tensor %q to %s, which does not hold it", hfIndexFile, name, shard)
			}
			sources = append(sources, source{shard, t, name})
		}
	}
	tensors := map[string]*Tensor{}
	origin := map[string]string{}
	for _, s := range sources {
		canon, skip, err := hfCanonical(s.hf, c.Layers)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.file, err)
		}
		if skip || (canon == "output.weight" && c.TiedEmbeddings) {
			continue // tied: HF ignores a stored lm_head too
		}
		t := s.tensor
		t.Name = canon
		tensors[canon] = t
		origin[canon] = s.file
	}
	names, shapes := Canonical(c)
	for _, name := range names {
		t, ok := tensors[name]
		if !ok {
			why := ""
			if name == "output.weight" {
				why = " (tie_word_embeddings is false)"
			}
			return nil, fmt.Errorf("missing tensor %q%s", hfName(name), why)
		}
		if !slices.Equal(t.Shape, shapes[name]) {
			return nil, fmt.Errorf("%s: tensor %q has shape %v, expected %v from %s", origin[name], hfName(name), t.Shape, shapes[name], hfConfigFile)
		}
	}
	return tensors, nil
}

// openHFDir loads a Hugging Face model directory: config.json, safetensors weights
// (single or sharded), generation_config.json, and the tokenizer (tokenizer.json with
// tokenizer_config.json, else a SentencePiece tokenizer.model).
func openHFDir(dir string) (ck *Checkpoint, err error) {
	var releases []func() error
	release := func() error {
		var first error
		for _, r := range releases {
			if err := r(); err != nil && first == nil {
				first = err
			}
		}
		releases = nil
		return first
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	cfg, err := readJSONObject(dir, hfConfigFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("a directory without %s is not a Hugging Face model", hfConfigFile)
	}
	if err != nil {
		return nil, err
	}
	c, err := parseHFConfig(cfg)
	if err != nil {
		return nil, err
	}
	ck = &Checkpoint{Format: "hf", Config: c}
	if ck.Tensors, err = hfWeights(dir, c, &releases); err != nil {
		return nil, err
	}
	if ck.EOSIDs, err = cfg.ids("eos_token_id", c.VocabSize); err != nil {
		return nil, err
	}
	switch gen, err := readJSONObject(dir, hfGenerationFile); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := hfGeneration(gen, c.VocabSize, ck); err != nil {
			return nil, err
		}
	}
	if err := hfTokenizer(dir, ck); err != nil {
		return nil, err
	}
	ck.Path = dir
	ck.close = release
	return ck, nil
}

// hfGeneration reads generation_config.json's end-of-sequence ids and sampling defaults.
func hfGeneration(o jsonObject, vocab int, ck *Checkpoint) error {
	if o.has("eos_token_id") {
		ids, err := o.ids("eos_token_id", vocab)
		if err != nil {
			return err
		}
		ck.EOSIDs = ids
	}
	if _, err := o.ids("bos_token_id", vocab); err != nil {
		return err
	}
	g := &ck.GenerationDefaults
	if o.has("do_sample") {
		b, err := o.boolean("do_sample", false)
		if err != nil {
			return err
		}
		g.DoSample = &b
	}
	for _, f := range []struct {
		key string
		dst **float64
	}{{"temperature", &g.Temperature}, {"top_p", &g.TopP}} {
		if o.has(f.key) {
			x, err := o.float(f.key, true, 0)
			if err != nil {
				return err
			}
			*f.dst = &x
		}
	}
	for _, f := range []struct {
		key string
		dst **int
	}{{"top_k", &g.TopK}, {"max_new_tokens", &g.MaxNewTokens}} {
		if o.has(f.key) {
			n, err := o.int(f.key, true, 0)
			if err != nil {
				return err
			}
			*f.dst = &n
		}
	}
	return nil
}

// hfTokenizer loads the tokenizer of dir and the chat template.
func hfTokenizer(dir string, ck *Checkpoint) error {
	cfgData, err := os.ReadFile(filepath.Join(dir, hfTokenizerConfigFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", hfTokenizerConfigFile, err)
	}
	if len(cfgData) > 0 {
		tc, err := parseJSONObject(hfTokenizerConfigFile, cfgData)
		if err != nil {
			return err
		}
		if ck.ChatTemplate, err = hfChatTemplate(tc); err != nil {
			return err
		}
	}
	if ck.ChatTemplate == "" {
		if b, err := os.ReadFile(filepath.Join(dir, hfChatTemplateFile)); err == nil {
			ck.ChatTemplate = string(b)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", hfChatTemplateFile, err)
		}
	}
	tj, err := os.ReadFile(filepath.Join(dir, hfTokenizerFile))
	switch {
	case err == nil:
		tok, err := tokenizer.FromHFTokenizerJSON(tj, cfgData)
		if err != nil {
			if strings.HasPrefix(err.Error(), hfTokenizerFile) || strings.HasPrefix(err.Error(), hfTokenizerConfigFile) {
				return err
			}
			return fmt.Errorf("%s: %w", hfTokenizerFile, err)
		}
		ck.Tokenizer = tok
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", hfTokenizerFile, err)
	}
	sp, err := os.ReadFile(filepath.Join(dir, hfSentencePieceFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no %s or %s: %w", hfTokenizerFile, hfSentencePieceFile, ErrNoTokenizer)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", hfSentencePieceFile, err)
	}
	v, err := tokenizer.FromSentencePieceModel(sp)
	if err != nil {
		return fmt.Errorf("%s: %w", hfSentencePieceFile, err)
	}
	ck.Vocab = v
	return nil
}

// hfChatTemplate reads chat_template: a string, or a list of {name, template} of which
// the "default" one is used.
func hfChatTemplate(o jsonObject) (string, error) {
	v, ok := o.m["chat_template"]
	if !ok || v == nil {
		return "", nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case []any:
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return "", o.errorf("chat_template list holds %s, want {name, template} objects", jsonKind(e))
			}
			if m["name"] == "default" {
				s, ok := m["template"].(string)
				if !ok {
					return "", o.errorf("chat_template \"default\" has no template string")
				}
				return s, nil
			}
		}
		return "", nil
	}
	return "", o.errorf("chat_template is %s, want a string or a list of named templates", jsonKind(v))
}
