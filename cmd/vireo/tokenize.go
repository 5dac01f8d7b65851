package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/internal/cli"
	"github.com/vireo-ai/vireo/runtime/llm"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

// tokenizeCmd is `vireo tokenize MODEL TEXT`: the ids the model's tokenizer gives TEXT
// (read from standard input when there is none), one per line with its spelling, or
// as a JSON list with -ids. Only the tokenizer is read, not the weights.
func tokenizeCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vireo tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ids := fs.Bool("ids", false, "print only the ids, as a JSON list")
	noBOS := fs.Bool("no-bos", false, "do not add the beginning-of-sequence token the model adds by default")
	special := fs.Bool("special", false, "read special-token text in TEXT (<s>, <|eot_id|>) as those tokens (default: as the model's tokenizer does)")
	chat := fs.Bool("chat", false, "tokenize TEXT as a user message rendered through the model's chat template")
	tokPath := fs.String("tokenizer", "", "llama2.c tokenizer.bin for a .bin model (default: tok<vocab>.bin or tokenizer.bin beside it)")
	offline := fs.Bool("offline", false, "never touch the network: Hub names come from the local cache only")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: vireo tokenize [flags] MODEL [TEXT]\n\nPrint the token ids of TEXT (standard input when there is none): one line per token, its id\nand its spelling in the vocabulary, then the count. Only the tokenizer is read, not the weights.\n\n"+modelHelp+"\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("tokenize needs a model: vireo tokenize MODEL TEXT")
	}
	text := strings.Join(pos[1:], " ")
	if len(pos) == 1 {
		b, err := io.ReadAll(io.LimitReader(stdin, 64<<20))
		if err != nil {
			return fmt.Errorf("reading the text from standard input: %w", err)
		}
		text = strings.TrimRight(string(b), "\n")
	}
	path, err := resolveModel(pos[0], *offline, consoleLogger(stderr, zapcore.WarnLevel), stderr)
	if err != nil {
		return err
	}
	l, err := llm.OpenTokenizer(path, *tokPath)
	if err != nil {
		return cli.LoadError(err, "-tokenizer")
	}
	defer l.Close()
	tok := l.Tokenizer
	var out []int32
	if *chat {
		if out, _, err = l.ChatPrompt([]chattemplate.Message{{Role: "user", Content: text}}, true); err != nil {
			return err
		}
	} else {
		opt := tok.DefaultOptions()
		opt.AddBOS = opt.AddBOS && !*noBOS
		opt.ParseSpecial = opt.ParseSpecial || *special
		out = tok.Encode(text, opt)
	}
	if *ids {
		b, _ := json.Marshal(out)
		if out == nil {
			b = []byte("[]")
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	w := len(fmt.Sprint(tok.VocabSize()))
	for _, id := range out {
		fmt.Fprintf(stdout, "%*d  %s\n", w, id, cli.EscapeTerminal(fmt.Sprintf("%q", tok.Spelling(id))))
	}
	fmt.Fprintln(stdout, plural(len(out), "token"))
	return nil
}
