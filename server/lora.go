package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/engine"
	"github.com/vireo-ai/vireo/runtime/lora"
)

// loadLoRABody is vLLM's LoadLoRAAdapterRequest.
type loadLoRABody struct {
	Name        string `json:"lora_name"`
	Path        string `json:"lora_path"`
	LoadInplace bool   `json:"load_inplace"`
}

// unloadLoRABody is vLLM's UnloadLoRAAdapterRequest (lora_int_id is accepted and,
// as in vLLM's handler, not used: the name decides).
type unloadLoRABody struct {
	Name string `json:"lora_name"`
	ID   *int   `json:"lora_int_id"`
}

// serveLoRAUpdate answers POST /v1/load_lora_adapter and /v1/unload_lora_adapter as
// vLLM does: 200 with a plain-text success line, or an error object.
func (s *Server) serveLoRAUpdate(w http.ResponseWriter, r *http.Request, load bool) {
	if !s.cfg.AllowRuntimeLoRA {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: "runtime_lora_updating_disabled",
			Message: "loading and unloading LoRA adapters at run time is off: start the server with --enable-lora --allow-runtime-lora-updating --lora-dir DIR"})
		return
	}
	body, e := s.readBody(r.Context(), w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	if !load {
		var b unloadLoRABody
		if err := json.Unmarshal(body, &b); err != nil {
			writeError(w, badParam("", "the body must be a JSON object {\"lora_name\": ...}%s", jsonWhy(err)))
			return
		}
		if b.Name == "" {
			writeError(w, badParam("lora_name", "'lora_name' needs to be provided to unload a LoRA adapter."))
			return
		}
		if err := s.eng.UnloadAdapter(b.Name); err != nil {
			if errors.Is(err, engine.ErrNoAdapter) {
				writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Param: "lora_name", Code: "lora_not_found",
					Message: fmt.Sprintf("The lora adapter '%s' cannot be found.", clip(b.Name))})
				return
			}
			writeError(w, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: clip(err.Error())})
			return
		}
		s.log.Info("LoRA adapter unloaded", zap.String("lora_name", clip(b.Name)))
		writeText(w, fmt.Sprintf("Success: LoRA adapter '%s' removed successfully.", b.Name))
		return
	}
	var b loadLoRABody
	if err := json.Unmarshal(body, &b); err != nil {
		writeError(w, badParam("", "the body must be a JSON object {\"lora_name\": ..., \"lora_path\": ...}%s", jsonWhy(err)))
		return
	}
	if b.Name == "" || b.Path == "" {
		writeError(w, badParam("", "Both 'lora_name' and 'lora_path' must be provided."))
		return
	}
	if slices.Contains(s.cfg.ModelNames, b.Name) || slices.Contains(s.cfg.ModelAliases, b.Name) {
		writeError(w, badParam("lora_name", "%q is the base model's name; an adapter needs a name of its own", clip(b.Name)))
		return
	}
	rel, e := s.loraPath(b.Path)
	if e != nil {
		writeError(w, e)
		return
	}
	root, err := os.OpenRoot(s.cfg.LoRADir)
	if err != nil {
		writeError(w, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: "the LoRA directory cannot be opened: " + clip(err.Error())})
		return
	}
	defer root.Close()
	// One load at a time: each reads a whole adapter into memory.
	s.loraMu.Lock()
	info, err := s.eng.LoadAdapter(b.Name, lora.Source{Path: rel, Root: root}, b.LoadInplace)
	s.loraMu.Unlock()
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, engine.ErrAdapterExists):
			writeError(w, badParam("lora_name", "The lora adapter '%s' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True.", clip(b.Name)))
		case errors.Is(err, engine.ErrInvalid):
			writeError(w, badParam("lora_name", "%s", clip(strings.TrimPrefix(err.Error(), engine.ErrInvalid.Error()+": "))))
		case errors.Is(err, fs.ErrNotExist):
			writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Param: "lora_path", Code: "lora_not_found",
				Message: fmt.Sprintf("Loading lora %s failed: No adapter found for %s", clip(b.Name), clip(b.Path))})
		case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
			writeError(w, badParam("lora_path", "%q leads outside the LoRA directory (a symbolic link out of it)", clip(b.Path)))
		case errors.Is(err, engine.ErrClosed):
			writeError(w, &apiError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Code: "engine_closed", Message: "the engine is shut down"})
		default:
			// The files are not an adapter this model can run: rank, shapes, targets,
			// format. lora's errors say which.
			writeError(w, &apiError{Status: http.StatusBadRequest, Type: typeInvalid, Param: "lora_path", Code: "invalid_lora",
				Message: fmt.Sprintf("Loading lora %s failed: %s", clip(b.Name), clip(strings.TrimPrefix(err.Error(), "lora: ")))})
		}
		return
	}
	s.log.Info("LoRA adapter loaded", zap.String("lora_name", clip(info.Name)), zap.String("lora_path", clip(b.Path)),
		zap.String("format", info.Format), zap.Int("rank", info.Rank), zap.Strings("targets", info.Targets), zap.Bool("in_place", b.LoadInplace))
	writeText(w, fmt.Sprintf("Success: LoRA adapter '%s' added successfully.", b.Name))
}

// loraPath turns a lora_path — relative to the LoRA directory, or absolute inside it
// — into a clean path relative to it, refusing one that leaves it. (Symbolic links
// are followed inside the directory only: the load goes through an os.Root.)
func (s *Server) loraPath(p string) (string, *apiError) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", badParam("lora_path", "the path holds a NUL byte")
	}
	rel := filepath.Clean(p)
	if filepath.IsAbs(p) {
		var err error
		if rel, err = filepath.Rel(s.cfg.LoRADir, rel); err != nil {
			return "", badParam("lora_path", "%q is not inside the LoRA directory %s", clip(p), s.cfg.LoRADir)
		}
	}
	if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", badParam("lora_path", "%q is not inside the LoRA directory %s", clip(p), s.cfg.LoRADir)
	}
	return rel, nil
}

// adapterRoot is the path /v1/models reports for an adapter: a runtime load's path
// inside the LoRA directory made absolute, another as given.
func (s *Server) adapterRoot(p string) string {
	if s.cfg.AllowRuntimeLoRA && !filepath.IsAbs(p) {
		return filepath.Join(s.cfg.LoRADir, p)
	}
	return p
}

// jsonWhy is what went wrong reading a body, in the client's terms.
func jsonWhy(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf(": %q must not be a JSON %s", clip(te.Field), te.Value)
		}
		return ", not a JSON " + te.Value
	}
	return ": " + clip(err.Error())
}

func writeText(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(msg))
}

// loraCollector writes vllm:lora_requests_info as vLLM does (a gauge set to the time,
// labelled with the maximum number of adapters and the running and waiting ones, by
// name, comma-separated): llm-d's LoRA-affinity scorer reads the series with the
// largest value. One series, from the engine's stats at scrape time.
type loraCollector struct {
	stats func() *engine.LoRAStats
	desc  *prometheus.Desc
}

func newLoRACollector(stats func() *engine.LoRAStats) *loraCollector {
	return &loraCollector{stats: stats, desc: prometheus.NewDesc("vllm:lora_requests_info", "Running stats on lora requests.",
		[]string{"max_lora", "waiting_lora_adapters", "running_lora_adapters"}, nil)}
}

func (c *loraCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *loraCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	if st == nil {
		return
	}
	now := float64(time.Now().UnixNano()) / 1e9
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, now,
		fmt.Sprint(st.MaxLoRAs), strings.Join(st.Waiting, ","), strings.Join(st.Running, ","))
}
