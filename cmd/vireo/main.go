// Command vireo is Vireo's one binary for people: generate text or chat, serve, measure,
// quantize, tokenize, and fetch models, each a subcommand with the model as its first
// argument:
//
//	vireo run ../shared/models/stories260K/stories260K.bin "Once upon a time"
//	vireo run bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0      a chat (on a terminal, or -interactive)
//	vireo serve MODEL --port 8000                             the OpenAI-compatible server (= cmd/serve)
//	vireo bench load --engine --model-path MODEL              measurements (= cmd/bench)
//	vireo quantize IN OUT --type q4_k_m                       write a GGUF file (quantize.go)
//	vireo compress IN OUT --param-budget 0.5                  low-rank and 2:4 matrices (compress.go)
//	vireo tokenize MODEL "some text"                          token ids (tokenize.go)
//	vireo pull MODEL, vireo list                              the Hugging Face cache (hub.go)
//	vireo version                                             also --version, on every binary
//
// The old form, flags only (vireo -model M -prompt P), generates as before. A model is
// a local path or a Hugging Face Hub name (package runtime/hub): the cache is used
// first, with no request, then the Hub.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vireo-ai/vireo/internal/benchcmd"
	"github.com/vireo-ai/vireo/internal/servecmd"
	"github.com/vireo-ai/vireo/internal/version"
	"github.com/vireo-ai/vireo/runtime/model"
)

func main() {
	if err := runIn(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vireo:", err)
			os.Exit(1)
		}
	}
}

// commands are the subcommands, in the order help lists them.
var commands = []struct {
	name, args, help string
}{
	{"run", "MODEL [PROMPT]", "generate from PROMPT, or chat when there is none (on a terminal, or with -interactive)"},
	{"serve", "MODEL", "serve the model over an OpenAI-compatible HTTP API (the serve binary)"},
	{"bench", "COMMAND", "load tests, quality audits, experiments and reports (the bench binary)"},
	{"quantize", "IN OUT --type T", "write a GGUF file of type T (q4_k_m, q8_0, f16, …)"},
	{"compress", "IN OUT [flags]", "prune the block matrices: low-rank factors and/or 2:4 sparsity"},
	{"tokenize", "MODEL TEXT", "the token ids of TEXT, without loading the weights"},
	{"pull", "MODEL", "download a Hugging Face Hub model into the Hub's cache"},
	{"list", "", "the models in that cache, with sizes"},
	{"version", "", "this build's version (also --version)"},
	{"help", "[COMMAND]", "this text, or a command's flags"},
}

// modelHelp says what a MODEL argument may be, for every command's help.
var modelHelp = `MODEL is a GGUF file; a llama2.c .bin (its tokenizer.bin or tok<N>.bin beside it, or
-tokenizer); a Hugging Face model directory (config.json, *.safetensors, tokenizer.json);
a Hugging Face Hub name (org/name, org/name:Q8_0, org/name/file.gguf, with @revision),
taken from the Hub's cache or downloaded; or synthetic:<shape>, random weights generated
in memory (` + strings.Join(model.SyntheticNames(), ", ") + `): noise, at real speed.
`

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: vireo COMMAND [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-27s %s\n", strings.TrimSpace(c.name+" "+c.args), c.help)
	}
	fmt.Fprint(w, "\n"+modelHelp+`
The old form, flags only (vireo -model M -prompt P, vireo -help for its flags), still
generates as vireo run does.

Examples:
  vireo run ../shared/models/stories260K/stories260K.bin "Once upon a time"
  vireo run bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0          (a chat; /bye leaves)
  vireo serve ../shared/models/stories260K/stories260K.bin --port 8000
  vireo help run
`)
}

// run is runIn with nothing on standard input.
func run(args []string, stdout, stderr io.Writer) error {
	return runIn(args, strings.NewReader(""), stdout, stderr)
}

// runIn dispatches one command line; stdin feeds the chat and piped prompts.
func runIn(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		switch {
		case version.Requested(args):
			fmt.Fprintln(stdout, version.Line("vireo"))
			return nil
		case len(args) == 1 && (args[0] == "--help" || args[0] == "-help" || args[0] == "-h"):
			usage(stdout)
			return flag.ErrHelp
		}
		return runCmd("vireo", true, args, stdin, stdout, stderr) // the old flags-only form
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd("vireo run", false, rest, stdin, stdout, stderr)
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		return servecmd.Run(ctx, "vireo serve", rest, stdout, stderr)
	case "bench":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		return benchcmd.Run(ctx, "vireo bench", rest, stdout, stderr)
	case "quantize":
		return quantizeCmd(rest, stdout, stderr)
	case "compress":
		return compressCmd(rest, stdout, stderr)
	case "tokenize":
		return tokenizeCmd(rest, stdin, stdout, stderr)
	case "pull":
		return runPull(rest, stdout, stderr)
	case "list":
		return runList(rest, stdout, stderr)
	case "version":
		if len(rest) > 0 {
			return fmt.Errorf("version takes no arguments, got %q", rest[0])
		}
		fmt.Fprintln(stdout, version.Line("vireo"))
		return nil
	case "help":
		if len(rest) == 0 {
			usage(stdout)
			return nil
		}
		if rest[0] == "help" || rest[0] == "version" {
			usage(stdout)
			return nil
		}
		err := runIn([]string{rest[0], "-help"}, stdin, stdout, stdout)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	return fmt.Errorf("unknown command %q: vireo help lists the commands (to generate text: vireo run MODEL PROMPT)", cmd)
}
