package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/vireo-ai/vireo/internal/shared"
	"github.com/vireo-ai/vireo/internal/testref"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/loader"
	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/lora/loratest"
	"github.com/vireo-ai/vireo/runtime/model"
)

var loraTargetGGUF = map[lora.Target]string{lora.TargetQ: "attn_q", lora.TargetK: "attn_k", lora.TargetV: "attn_v",
	lora.TargetO: "attn_output", lora.TargetGate: "ffn_gate", lora.TargetUp: "ffn_up", lora.TargetDown: "ffn_down"}

// storiesConfig is stories260K's configuration, as the server's model has it.
func storiesConfig(t testing.TB) loader.Config {
	return openStories(t).Model.Config
}

// mergedStories is stories260K in f32 with each adapter module's scale·B·A (as
// loratest wrote it, not as runtime/lora read it) added to its weight: the reference a
// request for the adapter must match.
func mergedStories(t testing.TB, made *loratest.Made) *model.Model {
	t.Helper()
	ck, err := loader.Open(shared.Path(t, "models", "stories260K", "stories260K.bin"), loader.Options{})
	require.NoError(t, err)
	defer ck.Close()
	out := &loader.Checkpoint{Path: ck.Path + " (merged)", Format: "gguf", Config: ck.Config, Tensors: map[string]*loader.Tensor{}}
	changed := 0
	for name, tt := range ck.Tensors {
		f, err := tt.Float32()
		require.NoError(t, err)
		v := append([]float32(nil), f...)
		for l := 0; l < ck.Config.Layers; l++ {
			for tg, g := range loraTargetGGUF {
				if name != fmt.Sprintf("blk.%d.%s.weight", l, g) {
					continue
				}
				if d := made.Delta(l, tg, ck.Config.RopeStyle); d != nil {
					require.Len(t, d, len(v), name)
					for i := range v {
						v[i] = float32(float64(v[i]) + d[i])
					}
					changed++
				}
			}
		}
		nt, err := loader.NewTensor(name, loader.F32, tt.Shape, v)
		require.NoError(t, err)
		out.Tensors[name] = nt
	}
	require.Equal(t, len(made.Modules), changed, "every module written must be merged")
	be := cpu.New(cpu.Options{})
	t.Cleanup(func() { be.Close() })
	m, err := model.Load(out, be, model.Options{Weights: model.WeightsF32})
	require.NoError(t, err)
	return m
}

type lpChoice struct {
	Text     string `json:"text"`
	Logprobs struct {
		Tokens        []string  `json:"tokens"`
		TokenLogprobs []float64 `json:"token_logprobs"`
	} `json:"logprobs"`
	FinishReason string `json:"finish_reason"`
}

// complete runs a greedy completion for model with logprobs and returns its choice.
func (ts *testServer) complete(t testing.TB, modelName, prompt string, n int) lpChoice {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"prompt":%q,"max_tokens":%d,"temperature":0,"logprobs":1,"ignore_eos":true}`, modelName, prompt, n)
	code, b, _ := ts.post(t, "/v1/completions", body)
	require.Equal(t, 200, code, "%s", b)
	var r struct {
		Model   string     `json:"model"`
		Choices []lpChoice `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(b, &r))
	require.Equal(t, modelName, r.Model)
	require.Len(t, r.Choices, 1)
	return r.Choices[0]
}

// requireSame: the two choices are the same tokens, their logprobs equal within tol
// (the unmerged and merged products round differently).
func requireSame(t testing.TB, want, got lpChoice, tol float64) {
	t.Helper()
	require.Equal(t, want.Text, got.Text)
	require.Equal(t, want.Logprobs.Tokens, got.Logprobs.Tokens)
	d := 0.0
	for i := range want.Logprobs.TokenLogprobs {
		d = max(d, math.Abs(want.Logprobs.TokenLogprobs[i]-got.Logprobs.TokenLogprobs[i]))
	}
	t.Logf("%d tokens, max |Δ logprob| %.3g", len(want.Logprobs.Tokens), d)
	require.LessOrEqual(t, d, tol)
}

func loraServer(t testing.TB, dir string, cfg Config, maxLoRAs int) *testServer {
	cfg.AllowRuntimeLoRA, cfg.LoRADir = dir != "", dir
	return newTestServer(t, serverOpts{engine: engine.Options{LoRA: engine.LoRAOptions{MaxLoRAs: maxLoRAs, MaxRank: 16}}, cfg: cfg})
}

type modelList struct {
	Data []struct {
		ID          string  `json:"id"`
		Root        string  `json:"root"`
		Parent      *string `json:"parent"`
		MaxModelLen int     `json:"max_model_len"`
	} `json:"data"`
}

func (ts *testServer) models(t testing.TB) modelList {
	t.Helper()
	code, b := ts.get(t, "/v1/models")
	require.Equal(t, 200, code, "%s", b)
	var l modelList
	require.NoError(t, json.Unmarshal(b, &l))
	return l
}

// TestLoRAServe: an adapter loaded at run time (PEFT, then GGUF) is served under its
// name: a completion and a chat completion for it equal the base model with the
// adapter merged into its weights; /v1/models lists it with its parent; requests for
// two adapters and the base at once each get what they get alone; after unloading,
// its name is a 404.
func TestLoRAServe(t *testing.T) {
	c := storiesConfig(t)
	dir := t.TempDir()
	madeP, err := loratest.WritePEFT(filepath.Join(dir, "poet"), &c, loratest.Options{Rank: 8, Alpha: 16, Seed: 11, Amp: 0.2}, nil)
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	madeG, err := loratest.WriteGGUF(filepath.Join(dir, "sub", "teller.gguf"), &c, loratest.Options{Rank: 4, Alpha: 4, RSLoRA: true, Seed: 12, Amp: 0.2,
		Targets: []lora.Target{lora.TargetV, lora.TargetDown}})
	require.NoError(t, err)

	ts := loraServer(t, dir, Config{}, 2)
	require.Len(t, ts.models(t).Data, 1)

	code, b, h := ts.post(t, "/v1/load_lora_adapter", `{"lora_name":"poet","lora_path":"poet"}`)
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, "Success: LoRA adapter 'poet' added successfully.", string(b))
	require.Contains(t, h.Get("Content-Type"), "text/plain")
	code, b, _ = ts.post(t, "/v1/load_lora_adapter", fmt.Sprintf(`{"lora_name":"teller","lora_path":%q}`, filepath.Join(dir, "sub", "teller.gguf")))
	require.Equal(t, 200, code, "%s", b)

	l := ts.models(t)
	require.Len(t, l.Data, 3)
	require.Equal(t, testModel, l.Data[0].ID)
	require.Nil(t, l.Data[0].Parent)
	for i, want := range []struct{ id, root string }{{"poet", filepath.Join(dir, "poet")}, {"teller", filepath.Join(dir, "sub", "teller.gguf")}} {
		d := l.Data[i+1]
		require.Equal(t, want.id, d.ID)
		require.Equal(t, want.root, d.Root)
		require.NotNil(t, d.Parent)
		require.Equal(t, testModel, *d.Parent)
		require.Equal(t, l.Data[0].MaxModelLen, d.MaxModelLen)
	}
	code, b = ts.get(t, "/v1/models/poet")
	require.Equal(t, 200, code, "%s", b)
	require.Contains(t, string(b), `"parent":"stories260K"`)

	const prompt, n = "Once upon a time", 40
	base := ts.complete(t, testModel, prompt, n)
	for name, made := range map[string]*loratest.Made{"poet": madeP, "teller": madeG} {
		t.Run(name, func(t *testing.T) {
			got := ts.complete(t, name, prompt, n)
			ref := newTestServer(t, serverOpts{model: mergedStories(t, made), quiet: true})
			want := ref.complete(t, testModel, prompt, n)
			requireSame(t, want, got, 1e-3)
			require.NotEqual(t, base.Text, got.Text, "the adapter must change the output for this test to mean anything")

			chat := fmt.Sprintf(`{"model":%%q,"messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":24,"temperature":0}`)
			code, gb, _ := ts.post(t, "/v1/chat/completions", fmt.Sprintf(chat, name))
			require.Equal(t, 200, code, "%s", gb)
			code, wb, _ := ref.post(t, "/v1/chat/completions", fmt.Sprintf(chat, testModel))
			require.Equal(t, 200, code, "%s", wb)
			var gc, wc loraChatResp
			require.NoError(t, json.Unmarshal(gb, &gc))
			require.NoError(t, json.Unmarshal(wb, &wc))
			require.Equal(t, name, gc.Model)
			require.Equal(t, wc.Choices[0].Message.Content, gc.Choices[0].Message.Content)
		})
	}

	// Both adapters and the base at once (two slots): each as alone.
	solo := map[string]lpChoice{}
	names := []string{testModel, "poet", "teller"}
	for _, m := range names {
		solo[m] = ts.complete(t, m, prompt, n)
	}
	var wg sync.WaitGroup
	got := make([]lpChoice, 9)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = ts.complete(t, names[i%3], prompt, n)
		}()
	}
	wg.Wait()
	for i, g := range got {
		require.Equal(t, solo[names[i%3]], g, "request %d (%s) in a mixed batch", i, names[i%3])
	}

	code, b, _ = ts.post(t, "/v1/unload_lora_adapter", `{"lora_name":"poet"}`)
	require.Equal(t, 200, code, "%s", b)
	require.Equal(t, "Success: LoRA adapter 'poet' removed successfully.", string(b))
	code, b, _ = ts.post(t, "/v1/completions", `{"model":"poet","prompt":"x","max_tokens":2}`)
	require.Equal(t, 404, code, "%s", b)
	require.Contains(t, string(b), `"code":"model_not_found"`)
	code, _ = ts.get(t, "/v1/models/poet")
	require.Equal(t, 404, code)
	require.Len(t, ts.models(t).Data, 2)
	require.Equal(t, solo["teller"], ts.complete(t, "teller", prompt, n), "the other adapter is untouched")
}

type loraChatResp struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
}

// TestLoRAServeErrors: unknown adapters, paths outside the LoRA directory, files that
// are not adapters for this model, and misuse of the endpoints get clear errors, and a
// refused load leaves nothing behind.
func TestLoRAServeErrors(t *testing.T) {
	c := storiesConfig(t)
	dir := t.TempDir()
	write := func(name string, cfg *loader.Config, o loratest.Options, extra map[string]any) {
		_, err := loratest.WritePEFT(filepath.Join(dir, name), cfg, o, extra)
		require.NoError(t, err)
	}
	write("ok", &c, loratest.Options{Rank: 4}, nil)
	write("big", &c, loratest.Options{Rank: 32}, nil)
	other := c
	other.Dim, other.HeadDim = c.Dim*2, c.HeadDim*2
	write("other", &other, loratest.Options{Rank: 2}, nil)
	write("head", &c, loratest.Options{Rank: 2}, map[string]any{"target_modules": []string{"q_proj", "lm_head"}})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644))
	outside := t.TempDir()
	write("../"+filepath.Base(outside)+"-x", &c, loratest.Options{Rank: 2}, nil) // a sibling of dir
	escape := filepath.Join(filepath.Dir(dir), filepath.Base(outside)+"-x")
	require.DirExists(t, escape)
	require.NoError(t, os.Symlink(escape, filepath.Join(dir, "link")))

	ts := loraServer(t, dir, Config{}, 1)
	load := func(body string) (int, string) {
		code, b, _ := ts.post(t, "/v1/load_lora_adapter", body)
		return code, string(b)
	}
	code, b := load(`{"lora_name":"ok","lora_path":"ok"}`)
	require.Equal(t, 200, code, b)

	for _, tc := range []struct {
		body string
		code int
		want []string
	}{
		{`{"lora_name":"x"}`, 400, []string{"Both 'lora_name' and 'lora_path' must be provided."}},
		{`{"lora_path":"ok"}`, 400, []string{"Both 'lora_name' and 'lora_path' must be provided."}},
		{`[1]`, 400, []string{"JSON object"}},
		{`{"lora_name":"ok","lora_path":"ok"}`, 400, []string{"already been loaded", "load_inplace"}},
		{`{"lora_name":"stories260K","lora_path":"ok"}`, 400, []string{"base model's name"}},
		{`{"lora_name":"x","lora_path":"../ok"}`, 400, []string{"not inside the LoRA directory"}},
		{`{"lora_name":"x","lora_path":"a/../../ok"}`, 400, []string{"not inside the LoRA directory"}},
		{fmt.Sprintf(`{"lora_name":"x","lora_path":%q}`, escape), 400, []string{"not inside the LoRA directory"}},
		{`{"lora_name":"x","lora_path":"link"}`, 400, []string{"outside the LoRA directory"}},
		{`{"lora_name":"x","lora_path":"absent"}`, 404, []string{"No adapter found for absent"}},
		{`{"lora_name":"x","lora_path":"big"}`, 400, []string{"rank 32", "--max-lora-rank"}},
		{`{"lora_name":"x","lora_path":"other"}`, 400, []string{"q_proj", "shape"}},
		{`{"lora_name":"x","lora_path":"head"}`, 400, []string{`"lm_head"`}},
		{`{"lora_name":"x","lora_path":"notes.txt"}`, 400, []string{"neither a PEFT adapter directory nor a GGUF adapter"}},
		{`{"lora_name":"x","lora_path":"."}`, 400, []string{"adapter_config.json"}},
		{`{"lora_name":"x\u0001y","lora_path":"ok"}`, 400, []string{"control characters"}},
	} {
		code, b := load(tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.body, b)
		var e struct {
			Error struct {
				Message, Type string
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal([]byte(b), &e), tc.body)
		for _, w := range tc.want {
			require.Contains(t, e.Error.Message, w, tc.body)
		}
		t.Logf("%s → %d %s", tc.body, code, e.Error.Message)
	}
	// Nothing of the refused loads stays.
	l := ts.models(t)
	require.Len(t, l.Data, 2)
	require.Equal(t, "ok", l.Data[1].ID)
	require.Len(t, ts.eng.Adapters(), 1)

	code, b = load(`{"lora_name":"ok","lora_path":"ok","load_inplace":true}`)
	require.Equal(t, 200, code, b)

	code, raw, _ := ts.post(t, "/v1/completions", `{"model":"nope","prompt":"x","max_tokens":2}`)
	require.Equal(t, 404, code)
	require.Contains(t, string(raw), "the LoRA adapters GET /v1/models lists")
	code, raw, _ = ts.post(t, "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"x"}]}`)
	require.Equal(t, 404, code, "%s", raw)

	code, raw, _ = ts.post(t, "/v1/unload_lora_adapter", `{"lora_name":"nope"}`)
	require.Equal(t, 404, code)
	require.Contains(t, string(raw), "The lora adapter 'nope' cannot be found.")
	code, raw, _ = ts.post(t, "/v1/unload_lora_adapter", `{}`)
	require.Equal(t, 400, code)
	require.Contains(t, string(raw), "'lora_name' needs to be provided")
	code, raw = ts.get(t, "/v1/load_lora_adapter")
	require.Equal(t, http.StatusMethodNotAllowed, code, "%s", raw)

	// Runtime updating off: the endpoints say how to turn it on; adapters at start still serve.
	off := loraServer(t, "", Config{}, 1)
	code, raw, _ = off.post(t, "/v1/load_lora_adapter", `{"lora_name":"ok","lora_path":"ok"}`)
	require.Equal(t, 404, code)
	require.Contains(t, string(raw), "--allow-runtime-lora-updating")

	// Behind the API key.
	keyed := loraServer(t, dir, Config{APIKeys: []string{"sk-1"}}, 1)
	code, raw, _ = keyed.post(t, "/v1/load_lora_adapter", `{"lora_name":"ok","lora_path":"ok"}`)
	require.Equal(t, 401, code, "%s", raw)
	require.Empty(t, keyed.eng.Adapters())

	// Configurations that cannot work are refused.
	eng := ts.eng
	for cfg, want := range map[*Config]string{
		{ModelNames: []string{"m"}, AllowRuntimeLoRA: true}:                                      "needs LoRADir",
		{ModelNames: []string{"m"}, AllowRuntimeLoRA: true, LoRADir: filepath.Join(dir, "none")}: "LoRA directory",
	} {
		_, err := New(*cfg, eng, openStories(t).Tokenizer, nil)
		require.ErrorContains(t, err, want)
	}
	plain := newTestServer(t, serverOpts{quiet: true})
	_, err := New(Config{ModelNames: []string{"m"}, AllowRuntimeLoRA: true, LoRADir: dir}, plain.eng, openStories(t).Tokenizer, nil)
	require.ErrorContains(t, err, "needs an engine with LoRA enabled")
	code, raw, _ = plain.post(t, "/v1/load_lora_adapter", `{"lora_name":"ok","lora_path":"ok"}`)
	require.Equal(t, 404, code, "%s", raw)
}

// TestLoRAMetrics: vllm:lora_requests_info is one gauge series, as vLLM writes it —
// max_lora and the running and waiting adapters by name, comma-separated, its value
// the scrape time — and absent without LoRA.
func TestLoRAMetrics(t *testing.T) {
	ts := loraServer(t, "", Config{}, 3)
	before := float64(time.Now().Unix())
	fam := ts.scrape(t)["vllm:lora_requests_info"]
	require.NotNil(t, fam)
	require.Equal(t, dto.MetricType_GAUGE, fam.GetType())
	require.Len(t, fam.Metric, 1)
	m := fam.Metric[0]
	require.Equal(t, map[string]string{"max_lora": "3", "running_lora_adapters": "", "waiting_lora_adapters": ""}, labelMap(m))
	require.GreaterOrEqual(t, m.GetGauge().GetValue(), before)
	require.LessOrEqual(t, m.GetGauge().GetValue(), float64(time.Now().Unix()+1))

	plain := newTestServer(t, serverOpts{quiet: true})
	require.NotContains(t, plain.scrape(t), "vllm:lora_requests_info")

	// The names as the engine reports them.
	col := newLoRACollector(func() *engine.LoRAStats {
		return &engine.LoRAStats{MaxLoRAs: 4, Running: []string{"a", "b"}, Waiting: []string{"c"}}
	})
	ch := make(chan prometheus.Metric, 1)
	col.Collect(ch)
	var out dto.Metric
	require.NoError(t, (<-ch).Write(&out))
	require.Equal(t, map[string]string{"max_lora": "4", "running_lora_adapters": "a,b", "waiting_lora_adapters": "c"}, labelMap(&out))
	require.True(t, strings.HasPrefix(col.desc.String(), `Desc{fqName: "vllm:lora_requests_info"`), col.desc.String())
}

// TestNodeOpenAILoRA: the official openai npm client with "model" set to an adapter —
// loaded and unloaded at run time through client.post, listed by models.list with its
// parent, a completion equal to the merged model's and a streamed chat equal to its
// chat, a path outside the LoRA directory a 400 and an unloaded adapter a 404.
func TestNodeOpenAILoRA(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		testref.Missing(t, "Node.js (for the openai npm client)")
	}
	ndir := filepath.Join("testdata", "node")
	if _, err := os.Stat(filepath.Join(ndir, "node_modules", "openai", "package.json")); err != nil {
		testref.Missing(t, "the openai npm client (server/testdata/node)")
	}
	c := storiesConfig(t)
	dir := t.TempDir()
	made, err := loratest.WritePEFT(filepath.Join(dir, "poet"), &c, loratest.Options{Rank: 8, Alpha: 16, Seed: 21, Amp: 0.2}, nil)
	require.NoError(t, err)
	ref := newTestServer(t, serverOpts{model: mergedStories(t, made), quiet: true})
	want := ref.complete(t, testModel, "Once upon a time", 32)
	code, wb, _ := ref.post(t, "/v1/chat/completions", `{"model":"stories260K","messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":24,"temperature":0}`)
	require.Equal(t, 200, code, "%s", wb)
	var wc loraChatResp
	require.NoError(t, json.Unmarshal(wb, &wc))

	ts := loraServer(t, dir, Config{APIKeys: []string{"sk-node"}}, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "lora.mjs", ts.url, "poet")
	cmd.Dir = ndir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	require.NoError(t, err, "node: %s", stderr.String())

	type card struct {
		ID     string  `json:"id"`
		Parent *string `json:"parent"`
	}
	type gen struct {
		Model string `json:"model"`
		Text  string `json:"text"`
	}
	type failure struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	var out struct {
		Before, After, Final []card
		Load, Unload         string
		Completion, Stream   gen
		BadLoad              *failure `json:"bad_load"`
		Gone                 *failure
	}
	require.NoError(t, json.Unmarshal(outb, &out), "node output: %s", outb)
	parent := testModel
	require.Equal(t, []card{{ID: testModel}}, out.Before)
	require.Equal(t, "Success: LoRA adapter 'poet' added successfully.", out.Load)
	require.Equal(t, []card{{ID: testModel}, {ID: "poet", Parent: &parent}}, out.After)
	require.Equal(t, gen{"poet", want.Text}, out.Completion)
	require.Equal(t, gen{"poet", wc.Choices[0].Message.Content}, out.Stream)
	require.NotNil(t, out.BadLoad)
	require.Equal(t, 400, out.BadLoad.Status)
	require.Contains(t, out.BadLoad.Message, "not inside the LoRA directory")
	require.Equal(t, "Success: LoRA adapter 'poet' removed successfully.", out.Unload)
	require.Equal(t, []card{{ID: testModel}}, out.Final)
	require.NotNil(t, out.Gone)
	require.Equal(t, 404, out.Gone.Status)
	require.Contains(t, out.Gone.Message, `"poet" does not exist`)
	ts.waitIdle(t, 5*time.Second)
}
