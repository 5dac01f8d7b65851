// Package testref is how tests that compare against external references (the npm
// packages scripts/install-test-deps.sh installs: transformers.js's tokenizers,
// @huggingface/jinja, the openai client) skip when those are missing, and how each such
// package says so in one line even in `go test ./...`, which shows a passing package's
// output only with -v.
//
// A test calls Missing(t, what) instead of t.Skip; the package's TestMain is Main(m).
// After the tests, Main prints one line per package that skipped for a missing
// reference, naming the command that installs them. go test (package list mode)
// discards what a passing test binary prints, so on Linux the line goes to the go
// command's own standard error when that is a terminal or a pipe (never a regular
// file, which the go command may be writing at its own offset); elsewhere, and when
// the binary runs without the go command, it goes to standard output. A cached
// result (an unchanged package run again) replays no line.
package testref

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// InstallCommand installs every external reference.
const InstallCommand = "bash scripts/install-test-deps.sh"

var (
	mu      sync.Mutex
	skipped = map[string]int{} // what is missing → tests skipped for it
)

// Missing skips tb because the reference what (e.g. "Node.js", "the openai npm client
// (server/testdata/node)") is not installed, and counts the skip for Main's summary.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	mu.Lock()
	skipped[what]++
	mu.Unlock()
	tb.Skipf("%s not installed: %s installs the test references", what, InstallCommand)
}

// Main runs the tests (call it from TestMain), prints the summary line when tests
// skipped for missing references, and exits with the tests' status.
func Main(m *testing.M) {
	code := m.Run()
	if line := Summary(callerPackage()); line != "" {
		report(line)
	}
	os.Exit(code)
}

// Summary is the line Main prints for pkg, or "" when nothing was skipped.
func Summary(pkg string) string {
	mu.Lock()
	defer mu.Unlock()
	if len(skipped) == 0 {
		return ""
	}
	n := 0
	var whats []string
	for w, k := range skipped {
		n += k
		whats = append(whats, w)
	}
	sort.Strings(whats)
	tests := "tests"
	if n == 1 {
		tests = "test"
	}
	return fmt.Sprintf("%s: %d reference %s skipped, missing %s: run %s", pkg, n, tests, strings.Join(whats, ", "), InstallCommand)
}

// callerPackage is the import path of the package whose TestMain called Main.
func callerPackage() string {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return "this package"
	}
	name := runtime.FuncForPC(pc).Name() // github.com/vireo-ai/vireo/server.TestMain
	slash := strings.LastIndex(name, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		name = name[:slash+1+dot]
	}
	return strings.TrimSuffix(name, "_test")
}

// report writes the summary where the person running go test sees it.
func report(line string) {
	if f := goStderr(); f != nil {
		defer f.Close()
		if _, err := fmt.Fprintln(f, line); err == nil {
			return
		}
	}
	fmt.Println(line)
}
