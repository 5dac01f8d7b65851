package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/runtime/sampling"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
)

// runProfile (issue 36) is the op profile of a synthetic model (Llama-3-8B by default):
//
//   - passes: a prefill of -prompt tokens and -steps batch-1 decode passes issued on
//     one workspace, every op timed (device events on CUDA, the host clock on the
//     CPU): per-op device time and its share of the passes' time, the top ops, and
//     the profile as a pprof file beside -out (<out>.pb.gz; go tool pprof reads it);
//   - overhead: -rounds rounds of -steps decode passes without and with timing,
//     alternating, and the ratio of their times;
//   - engine (-engine-seqs; empty skips it): the serving engine with its default decode
//     graphs, one run of -steps tokens per concurrency with a window open: graph
//     replays timed whole and the eager breakdown rounds per op, labelled per bucket
//     (<out>.engine-cN.pb.gz).
//
// -device cpu runs the same code on the CPU backend (small shapes; what CI can run).
// gpu-check.sh runs it as the opt-in phase profile (PROFILE=1).
func runProfile(args []string) (any, error) {
	fs := flags("profile")
	device := fs.String("device", "cuda", "cuda or cpu")
	shape := fs.String("shape", "llama3-8b", "synthetic shape")
	weights := fs.String("weights", "int8", "int8 or f16")
	prompt := fs.Int("prompt", 512, "prefill tokens (one pass)")
	steps := fs.Int("steps", 32, "decode passes profiled (and per overhead round)")
	rounds := fs.Int("rounds", 4, "overhead rounds per side (0 skips)")
	seqs := fs.String("engine-seqs", "1,16", "engine run concurrencies ('' skips the engine run)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *prompt < 1 || *steps < 1 || *rounds < 0 {
		return nil, fmt.Errorf("profile: -prompt %d, -steps %d, -rounds %d: want positive (rounds >= 0)", *prompt, *steps, *rounds)
	}
	be, closeBE, err := newBackend(*device)
	if err != nil {
		return nil, err
	}
	defer closeBE()
	opt := model.Options{Weights: model.WeightsInt8}
	if *weights == "f16" {
		opt.Weights = model.WeightsF32 // 16-bit on the device
	}
	m, err := model.Synthetic(*shape, be, opt)
	if err != nil {
		return nil, err
	}
	res := map[string]any{"device": *device, "shape": *shape, "weights": *weights, "prompt": *prompt, "steps": *steps, "layers": m.Config.Layers}
	base := strings.TrimSuffix(outPath(args), ".json")

	passes, err := profilePasses(m, be.Name(), *prompt, *steps, *rounds, base)
	res["passes"] = passes
	record("passes", passes)
	if err != nil {
		return res, fmt.Errorf("passes: %w", err)
	}
	if *seqs != "" {
		eng, err := profileEngine(m, be.Name(), *shape, *steps, splitComma(*seqs), base)
		res["engine"] = eng
		record("engine", eng)
		if err != nil {
			return res, fmt.Errorf("engine: %w", err)
		}
	}
	return res, nil
}

// profilePasses times the ops of one prefill and steps decode passes, then the
// overhead rounds.
func profilePasses(m *model.Model, backendName string, promptLen, steps, rounds int, base string) (map[string]any, error) {
	res := map[string]any{}
	ctx := promptLen + steps*(1+rounds*2) + 1
	nb := (ctx + model.DefaultBlockSize - 1) / model.DefaultBlockSize
	ws, err := m.NewWorkspace(promptLen, 1)
	if err != nil {
		return res, err
	}
	kv, err := m.NewKVCache(nb, model.DefaultBlockSize)
	if err != nil {
		return res, err
	}
	blocks := make([]int32, nb)
	for i := range blocks {
		blocks[i] = int32(i)
	}
	p := profiling.New(profiling.Options{Backend: backendName})
	lane, err := profiling.NewLane(p, m.Backend(), ws.Stream(), profiling.LaneOptions{Model: "synthetic", Layers: m.Config.Layers})
	if err != nil {
		return res, err
	}
	defer lane.Close()
	tokens := make([]int32, promptLen)
	for i := range tokens {
		tokens[i] = int32(3 + (i*7919)%(m.Config.VocabSize-3))
	}
	pos := 0
	var next int32 = 3
	pass := func(toks []int32) error {
		logits, err := m.Forward(ws, kv, []model.Seq{{Tokens: toks, Pos: pos, Blocks: blocks, Logits: model.LogitsLast}})
		if err != nil {
			return err
		}
		pos += len(toks)
		var ok bool
		if next, ok = maxIndex(logits); !ok {
			return fmt.Errorf("non-finite logits at position %d", pos)
		}
		return nil
	}
	// Warm up untimed (module load, first launches), then profile.
	if err := pass(tokens[:min(16, promptLen)]); err != nil {
		return res, err
	}
	pos = 0
	ws.SetTracer(lane)
	if err := p.Start(); err != nil {
		return res, err
	}
	t0 := time.Now()
	if err := pass(tokens); err != nil {
		return res, err
	}
	for range steps {
		if err := pass([]int32{next}); err != nil {
			return res, err
		}
	}
	wall := time.Since(t0)
	snap := p.Stop()
	sum := snap.Summary()
	res["summary"] = sum
	res["wall_ms"] = ms(wall)
	res["errors"] = snap.Errors
	res["top"] = topOps(sum, 10)
	if base != "" {
		path := base + ".pb.gz"
		if err := writeProfile(snap, path); err != nil {
			return res, err
		}
		res["pprof"] = path
	}
	var text strings.Builder
	snap.WriteText(&text, 12)
	fmt.Fprint(os.Stderr, text.String())

	if rounds > 0 {
		if err := p.Start(); err != nil {
			return res, err
		}
		var off, on time.Duration
		for r := range 2 * rounds {
			traced := r%2 == 1
			if traced {
				ws.SetTracer(lane)
			} else {
				ws.SetTracer(nil)
			}
			t0 := time.Now()
			for range steps {
				if err := pass([]int32{next}); err != nil {
					return res, err
				}
			}
			if traced {
				on += time.Since(t0)
			} else {
				off += time.Since(t0)
			}
		}
		p.Stop()
		res["overhead"] = map[string]any{"passes_per_side": rounds * steps, "off_ms_per_pass": ms(off) / float64(rounds*steps),
			"on_ms_per_pass": ms(on) / float64(rounds*steps), "on_over_off": float64(on) / float64(off)}
	}
	return res, nil
}

// profileEngine runs the engine (default options: decode graphs where the backend
// captures them) for steps tokens at each concurrency, a window open over each run.
func profileEngine(m *model.Model, backendName, shape string, steps int, concs []string, base string) (map[string]any, error) {
	res := map[string]any{}
	tok, err := tokenizer.New(tokenizer.SyntheticVocab(m.Config.VocabSize))
	if err != nil {
		return res, err
	}
	p := profiling.New(profiling.Options{Backend: backendName, BreakdownEvery: 8})
	e, err := engine.New(m, tok, engine.Options{Profiler: p, ModelName: "synthetic:" + shape, KVCacheBytes: 1 << 30})
	if err != nil {
		return res, err
	}
	defer e.Close()
	mode, why := e.Graphs()
	res["graphs"], res["graphs_why"] = string(mode), why
	for _, cs := range concs {
		var c int
		if _, err := fmt.Sscan(cs, &c); err != nil || c < 1 {
			return res, fmt.Errorf("concurrency %q", cs)
		}
		if err := p.Start(); err != nil {
			return res, err
		}
		t0 := time.Now()
		errs := make(chan error, c)
		for i := range c {
			go func() {
				events, err := e.Submit(context.Background(), &engine.Request{Prompt: []int32{int32(3 + i), 5, 7, 11, 13, 17, 19, 23},
					MaxTokens: steps, IgnoreEOS: true, Sampling: sampling.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}, Class: "check"})
				if err != nil {
					errs <- err
					return
				}
				var ferr error
				for ev := range events {
					if ev.Err != nil && ferr == nil {
						ferr = ev.Err
					}
				}
				errs <- ferr
			}()
		}
		var firstErr error
		for range c {
			if err := <-errs; err != nil && firstErr == nil {
				firstErr = err
			}
		}
		snap := p.Stop()
		sum := snap.Summary()
		r := map[string]any{"wall_ms": ms(time.Since(t0)), "summary": sum, "top": topOps(sum, 10), "errors": snap.Errors}
		if base != "" {
			path := fmt.Sprintf("%s.engine-c%d.pb.gz", base, c)
			if err := writeProfile(snap, path); err != nil {
				return res, err
			}
			r["pprof"] = path
		}
		res["c="+cs] = r
		if firstErr != nil {
			return res, firstErr
		}
	}
	return res, nil
}

func writeProfile(snap *profiling.Snapshot, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := snap.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// topOps is the summary's first n ops as "op share% (µs per call)" lines.
func topOps(s profiling.Summary, n int) []string {
	var out []string
	for i, o := range s.Ops {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%s %.1f%% of step time, %d calls, %.1f µs per call", o.Op, 100*o.Share, o.Calls, float64(o.Ns)/1e3/float64(max(o.Calls, 1))))
	}
	return out
}

// maxIndex is the index of the largest value; false when a value is not finite.
func maxIndex(x []float32) (int32, bool) {
	best, ok := 0, true
	for i, v := range x {
		if v != v || v > 3.4e38 || v < -3.4e38 {
			ok = false
		}
		if v > x[best] {
			best = i
		}
	}
	return int32(best), ok
}
