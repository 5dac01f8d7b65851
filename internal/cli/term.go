package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// IsTerminal reports whether f is a terminal (a character device): where a progress
// bar is drawn, the chat starts by itself, and generated text is escaped.
func IsTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	fi, err := file.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// EscapeTerminal makes generated text safe to show on a terminal: bytes that are not
// UTF-8 become \xNN, and control characters other than newline and tab (escape
// sequences, carriage returns, backspaces, C1 controls) become \xNN or \u00NN, so a
// model cannot move the cursor, retitle the window or hide text. Other text is
// unchanged; a pipe or file gets the bytes as generated instead.
func EscapeTerminal(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || isControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func isControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// textWriter writes generated text, escaped on a terminal.
type textWriter struct {
	w   io.Writer
	tty bool
}

// NewTextWriter returns a writer for generated text to w: escaped (EscapeTerminal)
// when w is a terminal, the bytes as they are otherwise.
func NewTextWriter(w io.Writer) io.StringWriter { return &textWriter{w: w, tty: IsTerminal(w)} }

func (t *textWriter) WriteString(s string) (int, error) {
	if t.tty {
		s = EscapeTerminal(s)
	}
	return io.WriteString(t.w, s)
}
