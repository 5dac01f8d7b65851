package servecmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
	"github.com/vireo-ai/vireo/runtime/model"
)

// TestLoRAFlags: vLLM's LoRA flags — --lora-modules takes several name=path values
// after one flag (or JSON objects), and combinations that cannot work are refused.
func TestLoRAFlags(t *testing.T) {
	o, err := parseFlags([]string{"m.gguf", "--enable-lora", "--lora-modules", "a=/x/a", "b=/y/b.gguf",
		`{"name": "c", "path": "/z", "base_model_name": "m"}`, "--max-loras", "2", "--lora-modules", "d=/d",
		"--max-lora-rank", "64", "--max-cpu-loras", "3"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "m.gguf", o.model)
	require.Equal(t, loraModules{{"a", "/x/a", ""}, {"b", "/y/b.gguf", ""}, {"c", "/z", "m"}, {"d", "/d", ""}}, o.lora.modules)
	eo := o.lora.options()
	require.Equal(t, 2, eo.MaxLoRAs)
	require.Equal(t, 64, eo.MaxRank)
	require.Equal(t, 3, eo.MaxCPULoRAs)
	require.False(t, o.lora.allowRuntime)

	o, err = parseFlags([]string{"m.gguf"}, io.Discard)
	require.NoError(t, err)
	require.Zero(t, o.lora.options().MaxLoRAs, "LoRA is off without --enable-lora")

	o, err = parseFlags([]string{"m.gguf", "--enable-lora", "--allow-runtime-lora-updating", "--lora-dir", "/srv/loras"}, io.Discard)
	require.NoError(t, err)
	require.True(t, o.lora.allowRuntime)
	require.Equal(t, "/srv/loras", o.lora.dir)

	for args, msg := range map[string]string{
		"--lora-modules a=/x":                                           "--lora-modules needs --enable-lora",
		"--allow-runtime-lora-updating --lora-dir /d":                   "--allow-runtime-lora-updating needs --enable-lora",
		"--enable-lora --max-loras 0":                                   "--max-loras must be at least 1",
		"--enable-lora --max-lora-rank 0":                               "--max-lora-rank must be in [1, 512]",
		"--enable-lora --max-lora-rank 1024":                            "--max-lora-rank must be in [1, 512]",
		"--enable-lora --max-loras 4 --max-cpu-loras 2":                 "--max-cpu-loras 2 must be at least --max-loras 4",
		"--enable-lora --allow-runtime-lora-updating":                   "needs --lora-dir",
		"--enable-lora --lora-dir /d":                                   "add --allow-runtime-lora-updating",
		"--enable-lora --lora-modules a=/x a=/y":                        `"a" given twice`,
		"--enable-lora --lora-modules noequals":                         "want name=path",
		"--enable-lora --lora-modules =/x":                              "both a name and a path",
		`--enable-lora --lora-modules {"name":"a","path":"/x","bad":1}`: "unknown field",
	} {
		_, err := parseFlags(append([]string{"m.gguf"}, strings.Fields(args)...), io.Discard)
		require.ErrorContains(t, err, msg, args)
	}

	// VLLM_ALLOW_RUNTIME_LORA_UPDATING turns runtime updating on, as in vLLM, but only with --enable-lora.
	oldEnv := getenv
	t.Cleanup(func() { getenv = oldEnv })
	getenv = func(k string) string {
		if k == "VLLM_ALLOW_RUNTIME_LORA_UPDATING" {
			return "True"
		}
		return ""
	}
	o, err = parseFlags([]string{"m.gguf", "--enable-lora", "--lora-dir", "/d"}, io.Discard)
	require.NoError(t, err)
	require.True(t, o.lora.allowRuntime)
	o, err = parseFlags([]string{"m.gguf"}, io.Discard)
	require.NoError(t, err)
	require.False(t, o.lora.allowRuntime)
}

// TestServeLoRAModules: `serve --enable-lora --lora-modules` serves the adapters from
// the start under their names (listed with their parent, generating other text than
// the base), and a file that is not an adapter for the model stops the start with an
// error naming the module.
func TestServeLoRAModules(t *testing.T) {
	path := shared.Path(t, "models", "stories260K", "stories260K.bin")
	l, err := llm.Open(path, "", cpu.New(cpu.Options{Threads: 1}), model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	c := l.Model.Config
	l.Close()
	dir := t.TempDir()
	_, err = loratest.WritePEFT(filepath.Join(dir, "poet"), &c, loratest.Options{Rank: 8, Seed: 3, Amp: 0.2}, nil)
	require.NoError(t, err)
	_, err = loratest.WriteGGUF(filepath.Join(dir, "teller.gguf"), &c, loratest.Options{Rank: 4, Seed: 4, Amp: 0.2})
	require.NoError(t, err)

	addr, logs := startServe(t, path, "--weights", "f32", "--enable-lora", "--max-loras", "2",
		"--lora-modules", "poet="+filepath.Join(dir, "poet"), "teller="+filepath.Join(dir, "teller.gguf"))
	require.Contains(t, logs(), `"lora_name":"poet"`)
	resp, err := http.Get("http://" + addr + "/v1/models")
	require.NoError(t, err)
	var ml struct {
		Data []struct {
			ID     string
			Parent *string
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ml))
	resp.Body.Close()
	require.Len(t, ml.Data, 3)
	texts := map[string]string{}
	for i, want := range []string{"stories260K", "poet", "teller"} {
		require.Equal(t, want, ml.Data[i].ID)
		require.Equal(t, i > 0, ml.Data[i].Parent != nil)
		body, _ := json.Marshal(map[string]any{"model": want, "prompt": "Once upon a time", "max_tokens": 30, "temperature": 0, "ignore_eos": true})
		resp, err := http.Post("http://"+addr+"/v1/completions", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		var out struct {
			Model   string
			Choices []struct{ Text string }
		}
		require.Equal(t, 200, resp.StatusCode)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		require.Equal(t, want, out.Model)
		texts[want] = out.Choices[0].Text
	}
	require.NotEqual(t, texts["stories260K"], texts["poet"])
	require.NotEqual(t, texts["stories260K"], texts["teller"])

	// Refused at start, naming the module.
	bad := filepath.Join(dir, "bad")
	require.NoError(t, os.Mkdir(bad, 0o755))
	_, err = loratest.WritePEFT(bad, &c, loratest.Options{Rank: 32}, nil)
	require.NoError(t, err)
	for args, msg := range map[string]string{
		"--lora-modules bad=" + bad:                                "--lora-modules bad:",
		"--lora-modules stories260K=" + filepath.Join(dir, "poet"): `"stories260K" is the model's served name`,
		"--lora-modules x=" + filepath.Join(dir, "absent"):         "no such file",
	} {
		err := run(context.Background(), append([]string{path, "--port", "0", "--threads", "1", "--enable-lora"}, strings.Fields(args)...), io.Discard)
		require.ErrorContains(t, err, msg, args)
		if strings.Contains(args, "bad=") {
			require.ErrorContains(t, err, "rank 32")
		}
	}
}
