package backendtest_test

import (
	"testing"

	"github.com/vireo-ai/vireo/runtime/backend/backendtest"
	"github.com/vireo-ai/vireo/runtime/backend/cpu"
)

func TestCPUAgainstCPU(t *testing.T) {
	ref := cpu.New(cpu.Options{})
	b := cpu.New(cpu.Options{Threads: 1})
	rep := backendtest.Run(nil, ref, b, backendtest.Options{})
	t.Log("\n" + rep.Text())
	if rep.Failed() {
		t.Fatal(rep.Summary())
	}
}
