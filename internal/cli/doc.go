// Package cli holds what Vireo's commands share beyond their own flags: the weight
// format flag (--quantization, alias --weights), model-loading progress (a bar on a
// terminal, log lines otherwise), terminal detection and escaping, and the wording of
// errors that name a flag.
package cli

import (
	"errors"
	"flag"
	"strings"

	"github.com/vireo-ai/vireo/runtime/loader"
)

// ParseInterspersed parses flags and positional arguments in any order (`serve MODEL
// --port 1`, `serve --port 1 MODEL`), returning the positional ones; everything after
// a "--" is positional.
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// LoadError rewrites a model-loading error for a command's user: a llama2.c checkpoint
// without its tokenizer names the command's flag for it (-tokenizer) rather than the
// Go option.
func LoadError(err error, tokenizerFlag string) error {
	var nt *loader.NoTokenizerError
	if err == nil || !errors.As(err, &nt) {
		return err
	}
	msg := err.Error()
	return &rewritten{msg: strings.TrimSuffix(msg, nt.Error()) + nt.Hint(tokenizerFlag+" FILE"), err: err}
}

type rewritten struct {
	msg string
	err error
}

func (r *rewritten) Error() string { return r.msg }
func (r *rewritten) Unwrap() error { return r.err }
