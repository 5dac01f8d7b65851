package grammartest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vireo-ai/vireo/internal/testref"
)

// NodeDir is the npm reference package (ajv + ajv-formats), relative to this file.
func NodeDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "node")
}

// HaveAjv reports whether node and the pinned ajv are installed, and why not.
func HaveAjv() (bool, string) {
	if _, err := exec.LookPath("node"); err != nil {
		return false, "node not on PATH: the ajv reference needs Node.js >= 18"
	}
	if _, err := os.Stat(filepath.Join(NodeDir(), "node_modules", "ajv")); err != nil {
		return false, "ajv not installed: run `bash scripts/install-test-deps.sh`"
	}
	return true, ""
}

// Check is one output to validate against its schema.
type Check struct {
	Schema string
	Text   string
}

// Verdict is ajv's answer for one Check.
type Verdict struct {
	Parses      bool   `json:"parses"`
	Valid       bool   `json:"valid"`
	Errors      string `json:"errors"`
	SchemaError string `json:"schemaError"`
}

// Ajv validates every check with ajv (draft 2020-12, ajv-formats' full formats). It
// skips tb when the reference is not installed.
func Ajv(tb testing.TB, checks []Check) []Verdict {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testref.Missing(tb, "Node.js (>= 18, for ajv)")
	}
	if ok, _ := HaveAjv(); !ok {
		testref.Missing(tb, "ajv (runtime/grammar/testdata/node)")
	}
	var in bytes.Buffer
	for _, c := range checks {
		line, err := json.Marshal(struct {
			Schema json.RawMessage `json:"schema"`
			Text   string          `json:"text"`
		}{json.RawMessage(c.Schema), c.Text})
		if err != nil {
			tb.Fatalf("encoding check: %v", err)
		}
		in.Write(line)
		in.WriteByte('\n')
	}
	cmd := exec.Command("node", "validate.mjs")
	cmd.Dir = NodeDir()
	cmd.Stdin = &in
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("node validate.mjs: %v: %s", err, errb.String())
	}
	var vs []Verdict
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var v Verdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			tb.Fatalf("validate.mjs output %q: %v", sc.Text(), err)
		}
		vs = append(vs, v)
	}
	if len(vs) != len(checks) {
		tb.Fatalf("validate.mjs answered %d of %d checks: %s", len(vs), len(checks), errb.String())
	}
	return vs
}
