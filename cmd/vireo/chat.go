package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/internal/cli"
	"github.com/vireo-ai/vireo/runtime/tokenizer/chattemplate"
)

const chatHelp = `  /bye           leave (Ctrl-D too)
  /clear         forget the conversation (the -system message stays)
  /help, /?      this list
  """            start or end a message of several lines
  Ctrl-C         stop the reply being written (on a terminal)
`

// chat is the interactive mode: read a message, render the whole conversation with
// the chat template, prefill only what the cache does not already hold, stream the
// reply, and keep it in the history. When the conversation outgrows the context the
// oldest exchanges are dropped, and the chat says so.
func (g *generator) chat(stdin io.Reader, stdout, stderr io.Writer, log *zap.Logger) error {
	in := bufio.NewReader(stdin)
	tty := cli.IsTerminal(stdin)
	var generating atomic.Bool
	if tty {
		// Ctrl-C stops a reply; at the prompt it says how to leave.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		defer signal.Stop(sig)
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				select {
				case <-done:
					return
				case <-sig:
					if generating.Load() {
						g.interrupted.Store(true)
					} else {
						fmt.Fprint(stdout, "\n(/bye or Ctrl-D leaves)\n>>> ")
					}
				}
			}
		}()
	}
	var system []chattemplate.Message
	if g.o.system != "" {
		system = []chattemplate.Message{{Role: "system", Content: g.o.system}}
	}
	if g.m.ChatTemplate == "" {
		log.Info("the model has no chat template: messages go as plain \"role: content\" lines")
	}
	fmt.Fprintf(stderr, "Chatting with %s (context %d tokens). /bye or Ctrl-D leaves, /help lists the commands.\n", g.m.Path, g.ctx)
	msgs := append([]chattemplate.Message(nil), system...)
	for {
		fmt.Fprint(stdout, ">>> ")
		text, err := readMessage(in, stdout)
		if errors.Is(err, io.EOF) && text == "" {
			fmt.Fprintln(stdout)
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		text = strings.TrimSpace(text)
		switch {
		case text == "":
			continue
		case text == "/bye" || text == "/exit" || text == "/quit":
			return nil
		case text == "/clear":
			msgs = append(msgs[:0], system...)
			fmt.Fprintln(stdout, "(the conversation is forgotten)")
			continue
		case text == "/help" || text == "/?":
			fmt.Fprint(stdout, chatHelp)
			continue
		case strings.HasPrefix(text, "/") && !strings.Contains(strings.Fields(text)[0][1:], "/"):
			fmt.Fprintf(stdout, "unknown command %s (/help lists them)\n", strings.Fields(text)[0])
			continue
		}
		msgs = append(msgs, chattemplate.Message{Role: "user", Content: text})
		prompt, dropped, err := g.fit(msgs, len(system))
		if err != nil {
			fmt.Fprintf(stdout, "%v\n", err)
			msgs = msgs[:len(msgs)-1]
			continue
		}
		if dropped > 0 {
			msgs = append(msgs[:len(system)], msgs[len(system)+dropped:]...)
			fmt.Fprintf(stderr, "(context full (%d tokens): the oldest %s of the conversation are forgotten)\n", g.ctx, plural(dropped, "message"))
		}
		cached := commonPrefix(g.fed, prompt)
		if cached == len(prompt) {
			cached-- // the last token is fed again for its logits
		}
		g.interrupted.Store(false)
		generating.Store(true)
		limit := g.o.maxTokens // -1: to the reply's end or the context's
		r, err := g.generate(prompt, cached, limit)
		generating.Store(false)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout)
		msgs = append(msgs, chattemplate.Message{Role: "assistant", Content: g.m.Tokenizer.Decode(r.ids)})
		switch {
		case g.o.verbose:
			fmt.Fprintln(stderr, r.speedLine(limit >= 0))
		case r.stop != "stop":
			fmt.Fprintf(stderr, "(stopped: %s)\n", r.stopText(limit >= 0))
		}
	}
}

// fit renders the conversation and, while it leaves no room for a reply, forgets the
// oldest messages after the system ones (keep) — never the newest — returning the
// prompt and how many messages were dropped.
func (g *generator) fit(msgs []chattemplate.Message, keep int) ([]int32, int, error) {
	for dropped := 0; ; dropped++ {
		conv := append(append([]chattemplate.Message(nil), msgs[:keep]...), msgs[keep+dropped:]...)
		prompt, _, err := g.m.ChatPrompt(conv, true)
		if err != nil {
			return nil, 0, err
		}
		if len(prompt) < g.ctx {
			return prompt, dropped, nil
		}
		if keep+dropped == len(msgs)-1 {
			return nil, 0, fmt.Errorf("the message is too long: with the template it takes %d tokens, and the context holds %d (-ctx-size)", len(prompt), g.ctx)
		}
	}
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// readMessage reads one line, or several between lines that start and end with """
// (as Ollama's chat takes them).
func readMessage(in *bufio.Reader, stdout io.Writer) (string, error) {
	line, err := in.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(strings.TrimSpace(line), `"""`) {
		return line, err
	}
	first := strings.TrimPrefix(strings.TrimSpace(line), `"""`)
	if strings.HasSuffix(first, `"""`) && len(first) >= 3 {
		return strings.TrimSuffix(first, `"""`), err
	}
	parts := []string{first}
	for err == nil {
		fmt.Fprint(stdout, "... ")
		line, err = in.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if i := strings.Index(line, `"""`); i >= 0 {
			parts = append(parts, line[:i])
			return strings.TrimLeft(strings.Join(parts, "\n"), "\n"), nil
		}
		parts = append(parts, line)
	}
	return strings.TrimLeft(strings.Join(parts, "\n"), "\n"), err
}
