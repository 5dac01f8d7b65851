// Command vireo-check is the one binary a lent GPU machine runs (scripts/gpu-check.sh):
//
//	vireo-check device              device, driver and library versions, memory
//	vireo-check bandwidth           device copy GB/s (read + write), host<->device GB/s
//	vireo-check ops [-large]        every backend op against the CPU (backendtest)
//	vireo-check kernels             kernel benchmarks on Llama-3-8B shapes: GB/s, TFLOP/s
//	vireo-check e2e                 synthetic:llama3-8b decode tokens/s and 2048-token TTFT
//	vireo-check engine              the serving engine on synthetic:llama3-8b, decode graphs on/off:
//	                                batch-1 decode, TTFT 128/512/2048, throughput at 1/16/64,
//	                                the mixed workload in its three configurations
//	vireo-check profile             per-op device time at the Llama-3-8B shape: a prefill and
//	                                decode passes, the timing overhead, engine runs with
//	                                decode graphs (replays and their eager breakdown);
//	                                pprof files beside -out
//
//	vireo-check report -work DIR    merge a gpu-check.sh run's phases into one JSON with
//	                                its summary, and print the one-screen summary
//
// Each prints one JSON object to stdout (or -out FILE). With -out FILE, every case or
// measurement is also appended to FILE.jsonl as soon as it is known, one JSON object
// per line, so a run cut off by its time cap still leaves what it measured (report
// merges those lines when FILE never came). Built with -tags cuda; without it every
// device subcommand reports that the build has no CUDA.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vireo-ai/vireo/internal/version"
)

type command struct {
	name, help string
	run        func(args []string) (any, error)
}

var commands = []command{
	{"device", "device, driver and library versions, memory", runDevice},
	{"bandwidth", "device copy GB/s and host<->device GB/s", runBandwidth},
	{"ops", "every backend op against the CPU backend", runOps},
	{"kernels", "kernel benchmarks on Llama-3-8B shapes", runKernels},
	{"e2e", "synthetic Llama-3-8B decode tokens/s and 2048-token TTFT", runE2E},
	{"engine", "engine end to end, graphs on/off: decode, TTFT, throughput, mixed", runEngine},
	{"profile", "per-op device time of synthetic Llama-3-8B passes and engine runs (pprof files)", runProfile},
	{"report", "merge a gpu-check.sh run into gpu-check.json and print its summary", runReport},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vireo-check <command> [-out FILE] [flags]")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.help)
	}
}

func main() {
	if version.Requested(os.Args[1:]) {
		fmt.Println(version.Line("vireo-check"))
		return
	}
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		start := time.Now()
		if p := outPath(os.Args[2:]); p != "" && name != "report" {
			if err := openLines(p + "l"); err != nil {
				fmt.Fprintln(os.Stderr, "vireo-check:", err)
				os.Exit(1)
			}
		}
		res, err := c.run(os.Args[2:])
		closeLines()
		var out any = map[string]any{"command": name, "seconds": time.Since(start).Seconds(), "result": res}
		if err != nil {
			out.(map[string]any)["error"] = err.Error()
		}
		if m, ok := res.(map[string]any); ok && name == "report" && err == nil {
			out = m // gpu-check.json itself: "summary" at the top level
		}
		if werr := writeJSON(outPath(os.Args[2:]), out); werr != nil {
			fmt.Fprintln(os.Stderr, "vireo-check:", werr)
			os.Exit(1)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "vireo-check %s: %v\n", name, err)
			os.Exit(1)
		}
		return
	}
	usage(os.Stderr)
	os.Exit(2)
}

// outPath finds -out FILE among the arguments (each subcommand also accepts it).
func outPath(args []string) string {
	for i, a := range args {
		if (a == "-out" || a == "--out") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// flags returns a flag set that knows -out (read by main).
func flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("out", "", "write the JSON result to this file")
	return fs
}

// The JSON-lines record of a run (-out FILE: FILE.jsonl), written as results come.
var lines struct {
	mu sync.Mutex
	f  *os.File
}

func openLines(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	lines.mu.Lock()
	lines.f = f
	lines.mu.Unlock()
	return nil
}

func closeLines() {
	lines.mu.Lock()
	defer lines.mu.Unlock()
	if lines.f != nil {
		lines.f.Close()
		lines.f = nil
	}
}

// record appends {"kind": kind, "value": v} to the JSON-lines file (when -out was
// given) and syncs it, so that a process killed right after keeps the line.
func record(kind string, v any) {
	lines.mu.Lock()
	defer lines.mu.Unlock()
	if lines.f == nil {
		return
	}
	b, err := json.Marshal(map[string]any{"kind": kind, "value": v})
	if err != nil {
		b, _ = json.Marshal(map[string]any{"kind": kind, "error": err.Error()})
	}
	lines.f.Write(append(b, '\n'))
	lines.f.Sync()
}
