package servecmd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/lora"
)

// loraFlags are vLLM's LoRA flags, and Vireo's --lora-dir.
type loraFlags struct {
	enable         bool
	modules        loraModules
	maxLoRAs       int
	maxRank        int
	maxCPULoRAs    int
	allowRuntime   bool
	dir            string
	runtimeFromEnv bool // VLLM_ALLOW_RUNTIME_LORA_UPDATING turned runtime updating on
}

// loraFlagNames are the flags' names, for --help's groups.
var loraFlagNames = []string{"enable-lora", "lora-modules", "max-loras", "max-lora-rank", "max-cpu-loras",
	"allow-runtime-lora-updating", "lora-dir"}

func (l *loraFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.enable, "enable-lora", false, "serve LoRA adapters beside the model: a request's \"model\" names one (PEFT directories with adapter_config.json and adapter_model.safetensors, or llama.cpp GGUF adapters)")
	fs.Var(&l.modules, "lora-modules", "adapters to serve from the start: `name=path` pairs after the flag (several may follow it), or JSON {\"name\": ..., \"path\": ..., \"base_model_name\": ...}; repeat the flag for more")
	fs.IntVar(&l.maxLoRAs, "max-loras", 1, "adapters one step may run at once: the device's adapter slots")
	fs.IntVar(&l.maxRank, "max-lora-rank", 16, fmt.Sprintf("the largest adapter rank accepted (1 to %d); every slot holds this rank", engine.MaxLoRARank))
	fs.IntVar(&l.maxCPULoRAs, "max-cpu-loras", 0, "adapters kept in host memory, least recently used dropped and read again when needed (default: --max-loras)")
	fs.BoolVar(&l.allowRuntime, "allow-runtime-lora-updating", false, "serve POST /v1/load_lora_adapter and /v1/unload_lora_adapter (behind the API key), loading only from inside --lora-dir; also VLLM_ALLOW_RUNTIME_LORA_UPDATING=True")
	fs.StringVar(&l.dir, "lora-dir", "", "the directory run-time loads read adapters from; a lora_path outside it, through \"..\" or a symbolic link, is refused")
}

// check validates the flags together once parsed.
func (l *loraFlags) check() error {
	if v := strings.TrimSpace(getenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING")); !l.allowRuntime && (v == "1" || strings.EqualFold(v, "true")) {
		l.allowRuntime, l.runtimeFromEnv = true, true
	}
	switch {
	case !l.enable && len(l.modules) > 0:
		return errors.New("--lora-modules needs --enable-lora")
	case !l.enable && l.allowRuntime && !l.runtimeFromEnv:
		return errors.New("--allow-runtime-lora-updating needs --enable-lora")
	case !l.enable:
		l.allowRuntime = false // the environment variable alone turns nothing on
		return nil
	case l.maxLoRAs < 1:
		return fmt.Errorf("--max-loras must be at least 1, got %d", l.maxLoRAs)
	case l.maxRank < 1 || l.maxRank > engine.MaxLoRARank:
		return fmt.Errorf("--max-lora-rank must be in [1, %d], got %d", engine.MaxLoRARank, l.maxRank)
	case l.maxCPULoRAs != 0 && l.maxCPULoRAs < l.maxLoRAs:
		return fmt.Errorf("--max-cpu-loras %d must be at least --max-loras %d", l.maxCPULoRAs, l.maxLoRAs)
	case l.allowRuntime && l.dir == "":
		return errors.New("runtime LoRA updating needs --lora-dir, the directory adapters may be loaded from")
	case l.dir != "" && !l.allowRuntime:
		return errors.New("--lora-dir is for runtime LoRA updating: add --allow-runtime-lora-updating")
	}
	seen := map[string]bool{}
	for _, m := range l.modules {
		if seen[m.name] {
			return fmt.Errorf("--lora-modules: %q given twice", m.name)
		}
		seen[m.name] = true
	}
	return nil
}

// options are the engine's LoRA options (zero: off).
func (l *loraFlags) options() engine.LoRAOptions {
	if !l.enable {
		return engine.LoRAOptions{}
	}
	return engine.LoRAOptions{MaxLoRAs: l.maxLoRAs, MaxRank: l.maxRank, MaxCPULoRAs: l.maxCPULoRAs}
}

// load registers the --lora-modules adapters with the engine; names must differ from
// the model's served names.
func (l *loraFlags) load(eng *engine.Engine, served []string, log *zap.Logger) error {
	for _, m := range l.modules {
		if slices.Contains(served, m.name) {
			return fmt.Errorf("--lora-modules: %q is the model's served name; an adapter needs a name of its own", m.name)
		}
		if m.base != "" && !slices.Contains(served, m.base) {
			return fmt.Errorf("--lora-modules %s: base_model_name %q is not a name this server serves (%s)", m.name, m.base, strings.Join(served, ", "))
		}
		info, err := eng.LoadAdapter(m.name, lora.Source{Path: m.path}, false)
		if err != nil {
			return fmt.Errorf("--lora-modules %s: %w", m.name, err)
		}
		log.Info("LoRA adapter loaded", zap.String("lora_name", info.Name), zap.String("path", info.Path), zap.String("format", info.Format),
			zap.Int("rank", info.Rank), zap.Float64("alpha", info.Alpha), zap.Bool("rslora", info.RSLoRA), zap.Strings("targets", info.Targets),
			zap.Int64("bytes", info.Bytes))
	}
	if l.allowRuntime {
		log.Warn("runtime LoRA updating is on: clients with the API key may load adapters from --lora-dir and unload them", zap.String("lora_dir", l.dir))
	}
	return nil
}

// loraModule is one --lora-modules value.
type loraModule struct{ name, path, base string }

type loraModules []loraModule

func (l *loraModules) String() string {
	var s []string
	for _, m := range *l {
		s = append(s, m.name+"="+m.path)
	}
	return strings.Join(s, " ")
}

// Set reads name=path or vLLM's JSON form.
func (l *loraModules) Set(v string) error {
	var m loraModule
	if strings.HasPrefix(strings.TrimSpace(v), "{") {
		var j struct {
			Name string `json:"name"`
			Path string `json:"path"`
			Base string `json:"base_model_name"`
		}
		dec := json.NewDecoder(strings.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&j); err != nil {
			return fmt.Errorf("%q: %v", v, err)
		}
		m = loraModule{j.Name, j.Path, j.Base}
	} else {
		name, path, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("%q: want name=path or JSON {\"name\": ..., \"path\": ...}", v)
		}
		m = loraModule{name: strings.TrimSpace(name), path: strings.TrimSpace(path)}
	}
	if m.name == "" || m.path == "" {
		return fmt.Errorf("%q: both a name and a path are needed", v)
	}
	*l = append(*l, m)
	return nil
}

// spreadLoRAModules rewrites vLLM's `--lora-modules a=p b=q` (several values after one
// flag) as one flag per value, so the flag package reads them: the values following
// the flag that look like modules (name=path, or JSON objects) are taken.
func spreadLoRAModules(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			return append(out, args[i+1:]...)
		}
		if a != "--lora-modules" && a != "-lora-modules" {
			continue
		}
		if i+1 < len(args) { // the flag's own value
			i++
			out = append(out, args[i])
		}
		for i+1 < len(args) && looksLikeModule(args[i+1]) {
			i++
			out = append(out, a, args[i])
		}
	}
	return out
}

func looksLikeModule(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	return strings.HasPrefix(strings.TrimSpace(s), "{") || strings.Contains(s, "=")
}
