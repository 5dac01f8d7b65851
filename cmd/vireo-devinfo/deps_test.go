//go:build !cuda

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyDevinfoLinksGorgonia: gorgonia.org/cu exits the process at init without a
// driver, so no other package or command of the module may depend on it, in either
// build. (This file is not in the cuda build: a cuda-tagged test binary of this
// package would link gorgonia.org/cu and exit at start without a driver.)
func TestOnlyDevinfoLinksGorgonia(t *testing.T) {
	for _, tags := range []string{"", "cuda"} {
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", "-test", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "github.com/vireo-ai/vireo/...").CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %q: %v\n%s", tags, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			pkg, deps, _ := strings.Cut(line, " ")
			if strings.Contains(" "+deps+" ", " gorgonia.org/cu ") && !strings.HasPrefix(pkg, "github.com/vireo-ai/vireo/cmd/vireo-devinfo") {
				t.Errorf("tags %q: %s depends on gorgonia.org/cu", tags, pkg)
			}
		}
	}
}
