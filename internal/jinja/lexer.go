package jinja

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF        tokKind = iota
	tText               // literal template text
	tVarBegin           // {{
	tVarEnd             // }}
	tBlockBegin         // {%
	tBlockEnd           // %}
	tName               // identifier
	tString             // string literal (value unescaped)
	tInt                // integer literal
	tFloat              // float literal
	tOp                 // operator or punctuation
)

func (k tokKind) String() string {
	switch k {
	case tEOF:
		return "end of template"
	case tText:
		return "text"
	case tVarBegin:
		return "'{{'"
	case tVarEnd:
		return "'}}'"
	case tBlockBegin:
		return "'{%'"
	case tBlockEnd:
		return "'%}'"
	case tName:
		return "name"
	case tString:
		return "string"
	case tInt:
		return "integer"
	case tFloat:
		return "float"
	}
	return "operator"
}

// Pos is a 1-based line and column (in runes) in the template source.
type Pos struct{ Line, Col int }

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

type token struct {
	kind tokKind
	val  string
	pos  Pos
}

func (t token) describe() string {
	switch t.kind {
	case tEOF, tVarBegin, tVarEnd, tBlockBegin, tBlockEnd:
		return t.kind.String()
	case tText:
		return "text"
	case tString:
		return "string " + strconv.Quote(t.val)
	case tName:
		return "'" + t.val + "'"
	}
	return "'" + t.val + "'"
}

// SyntaxError is returned by Parse; it names the position and what was expected.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("jinja: %s: %s", e.Pos, e.Msg) }

type lexer struct {
	src    string
	opts   Options
	pos    int
	toks   []token
	line   int // line of src[lineOff:]
	lineAt int // byte offset where the current line starts
}

// position computes the line:col of byte offset off (lexing is sequential, so
// offsets only grow between calls except for rare look-backs).
func (l *lexer) position(off int) Pos {
	line, start := 1, 0
	if off >= l.lineAt {
		line, start = l.line, l.lineAt
	}
	for i := start; i < off && i < len(l.src); i++ {
		if l.src[i] == '\n' {
			line++
			start = i + 1
		}
	}
	if off >= l.lineAt {
		l.line, l.lineAt = line, start
	}
	return Pos{line, utf8.RuneCountInString(l.src[start:min(off, len(l.src))]) + 1}
}

func (l *lexer) errf(off int, format string, args ...any) error {
	return &SyntaxError{Pos: l.position(off), Msg: fmt.Sprintf(format, args...)}
}

// isSpace is Python's str.isspace for one rune (what Jinja's whitespace control,
// str.strip and trim use).
func isSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

func lex(src string, opts Options) ([]token, error) {
	// Jinja drops a single trailing newline unless keep_trailing_newline is set.
	if !opts.KeepTrailingNewline {
		src = strings.TrimSuffix(src, "\n")
	}
	l := &lexer{src: src, opts: opts, line: 1}
	if err := l.run(); err != nil {
		return nil, err
	}
	return l.toks, nil
}

func (l *lexer) emit(k tokKind, val string, off int) {
	l.toks = append(l.toks, token{kind: k, val: val, pos: l.position(off)})
}

// nextTag finds the next "{{", "{%" or "{#" at or after from.
func (l *lexer) nextTag(from int) int {
	for i := from; i+1 < len(l.src); i++ {
		if l.src[i] == '{' {
			switch l.src[i+1] {
			case '{', '%', '#':
				return i
			}
		}
	}
	return -1
}

func (l *lexer) run() error {
	trimNext := false // strip leading whitespace of the next text (after "-}}" etc.)
	for l.pos < len(l.src) {
		textStart := l.pos
		tagAt := l.nextTag(l.pos)
		end := tagAt
		if end < 0 {
			end = len(l.src)
		}
		text := l.src[l.pos:end]
		if trimNext {
			text = strings.TrimLeftFunc(text, isSpace)
			textStart = end - len(text)
			trimNext = false
		}
		if tagAt >= 0 {
			kind := l.src[tagAt+1]
			mod := byte(0)
			if tagAt+2 < len(l.src) && (l.src[tagAt+2] == '-' || l.src[tagAt+2] == '+') {
				mod = l.src[tagAt+2]
			}
			switch {
			case mod == '-':
				text = strings.TrimRightFunc(text, isSpace)
			case mod != '+' && kind != '{' && l.opts.LstripBlocks:
				// lstrip_blocks: drop spaces and tabs between the start of the line and a block or comment tag.
				nl := strings.LastIndexByte(text, '\n') + 1
				lineStart := nl > 0 || textStart == 0 || l.src[textStart-1] == '\n'
				if lineStart && strings.Trim(text[nl:], " \t") == "" {
					text = text[:nl]
				}
			}
		}
		if text != "" {
			l.emit(tText, text, textStart)
		}
		if tagAt < 0 {
			l.pos = len(l.src)
			break
		}
		l.pos = tagAt + 2
		hasMod := tagAt+2 < len(l.src) && (l.src[tagAt+2] == '-' || l.src[tagAt+2] == '+')
		if hasMod {
			l.pos++
		}
		var err error
		switch l.src[tagAt+1] {
		case '#':
			err = l.comment(tagAt, &trimNext)
		case '{':
			l.emit(tVarBegin, "{{", tagAt)
			err = l.inside(tagAt, "}}", tVarEnd, &trimNext)
		case '%':
			if l.isRaw() {
				err = l.raw(tagAt, &trimNext)
			} else {
				l.emit(tBlockBegin, "{%", tagAt)
				err = l.inside(tagAt, "%}", tBlockEnd, &trimNext)
			}
		}
		if err != nil {
			return err
		}
	}
	l.emit(tEOF, "", len(l.src))
	return nil
}

// afterBlockEnd applies trim_blocks: the first newline after a block or comment
// tag is removed.
func (l *lexer) afterBlockEnd(mod byte, trimNext *bool) {
	if mod == '-' {
		*trimNext = true
		return
	}
	if mod != '+' && l.opts.TrimBlocks && l.pos < len(l.src) && l.src[l.pos] == '\n' {
		l.pos++
	}
}

func (l *lexer) comment(start int, trimNext *bool) error {
	i := strings.Index(l.src[l.pos:], "#}")
	if i < 0 {
		return l.errf(start, "unclosed comment: expected '#}' before end of template")
	}
	end := l.pos + i
	mod := byte(0)
	if end > l.pos && (l.src[end-1] == '-' || l.src[end-1] == '+') {
		mod = l.src[end-1]
	}
	l.pos = end + 2
	l.afterBlockEnd(mod, trimNext)
	return nil
}

// isRaw reports whether the block tag starting at l.pos is {% raw %}.
func (l *lexer) isRaw() bool {
	s := strings.TrimLeft(l.src[l.pos:], " \t\r\n")
	if !strings.HasPrefix(s, "raw") {
		return false
	}
	s = strings.TrimLeft(s[3:], " \t\r\n")
	return strings.HasPrefix(s, "%}") || strings.HasPrefix(s, "-%}") || strings.HasPrefix(s, "+%}")
}

func (l *lexer) raw(start int, trimNext *bool) error {
	close := strings.Index(l.src[l.pos:], "%}")
	mod := l.src[l.pos+close-1]
	l.pos += close + 2
	l.afterBlockEnd(mod, trimNext)
	bodyStart := l.pos
	for {
		i := strings.Index(l.src[l.pos:], "{%")
		if i < 0 {
			return l.errf(start, "unclosed 'raw' block: expected {%% endraw %%}")
		}
		tagAt := l.pos + i
		j := tagAt + 2
		tagMod := byte(0)
		if j < len(l.src) && (l.src[j] == '-' || l.src[j] == '+') {
			tagMod = l.src[j]
			j++
		}
		rest := strings.TrimLeft(l.src[j:], " \t\r\n")
		if !strings.HasPrefix(rest, "endraw") {
			l.pos = tagAt + 2
			continue
		}
		rest2 := strings.TrimLeft(rest[6:], " \t\r\n")
		closeLen := 0
		endMod := byte(0)
		switch {
		case strings.HasPrefix(rest2, "%}"):
			closeLen = 2
		case strings.HasPrefix(rest2, "-%}"), strings.HasPrefix(rest2, "+%}"):
			closeLen, endMod = 3, rest2[0]
		default:
			l.pos = tagAt + 2
			continue
		}
		body := l.src[bodyStart:tagAt]
		if *trimNext {
			body = strings.TrimLeftFunc(body, isSpace)
			*trimNext = false
		}
		if tagMod == '-' {
			body = strings.TrimRightFunc(body, isSpace)
		} else if tagMod != '+' && l.opts.LstripBlocks {
			nl := strings.LastIndexByte(body, '\n') + 1
			if nl > 0 && strings.Trim(body[nl:], " \t") == "" {
				body = body[:nl]
			}
		}
		if body != "" {
			l.emit(tText, body, bodyStart)
		}
		l.pos = len(l.src) - len(rest2) + closeLen
		l.afterBlockEnd(endMod, trimNext)
		return nil
	}
}

// inside lexes the expression tokens of a {{ }} or {% %} tag up to its closer.
func (l *lexer) inside(start int, closer string, closeKind tokKind, trimNext *bool) error {
	depth := 0 // open '{' of dict literals: "}}" inside one is not a closer
	for {
		for l.pos < len(l.src) {
			r, n := utf8.DecodeRuneInString(l.src[l.pos:])
			if !isSpace(r) {
				break
			}
			l.pos += n
		}
		if l.pos >= len(l.src) {
			return l.errf(start, "unclosed tag: expected '%s' before end of template", closer)
		}
		s := l.src[l.pos:]
		if depth == 0 {
			if strings.HasPrefix(s, closer) {
				l.emit(closeKind, closer, l.pos)
				l.pos += 2
				if closeKind == tBlockEnd {
					l.afterBlockEnd(0, trimNext)
				}
				return nil
			}
			if (s[0] == '-' || s[0] == '+') && strings.HasPrefix(s[1:], closer) {
				l.emit(closeKind, closer, l.pos)
				l.pos += 3
				if closeKind == tBlockEnd || s[0] == '-' {
					l.afterBlockEnd(s[0], trimNext)
				}
				return nil
			}
		}
		c := s[0]
		switch {
		case c == '"' || c == '\'':
			v, n, err := l.str(s)
			if err != nil {
				return err
			}
			l.emit(tString, v, l.pos)
			l.pos += n
		case c >= '0' && c <= '9':
			n := 0
			for n < len(s) && (s[n] >= '0' && s[n] <= '9' || s[n] == '_') {
				n++
			}
			kind := tInt
			prevDot := len(l.toks) > 0 && l.toks[len(l.toks)-1].kind == tOp && l.toks[len(l.toks)-1].val == "."
			if !prevDot {
				if n+1 < len(s) && s[n] == '.' && s[n+1] >= '0' && s[n+1] <= '9' {
					kind = tFloat
					n++
					for n < len(s) && (s[n] >= '0' && s[n] <= '9' || s[n] == '_') {
						n++
					}
				}
				if n < len(s) && (s[n] == 'e' || s[n] == 'E') {
					m := n + 1
					if m < len(s) && (s[m] == '+' || s[m] == '-') {
						m++
					}
					if m < len(s) && s[m] >= '0' && s[m] <= '9' {
						for m < len(s) && s[m] >= '0' && s[m] <= '9' {
							m++
						}
						kind, n = tFloat, m
					}
				}
			}
			l.emit(kind, strings.ReplaceAll(s[:n], "_", ""), l.pos)
			l.pos += n
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			n := 0
			for n < len(s) {
				r, sz := utf8.DecodeRuneInString(s[n:])
				if !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
					break
				}
				n += sz
			}
			if n == 0 {
				r, _ := utf8.DecodeRuneInString(s)
				return l.errf(l.pos, "unexpected character %q", r)
			}
			l.emit(tName, s[:n], l.pos)
			l.pos += n
		default:
			op := ""
			for _, cand := range []string{"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"} {
				if strings.HasPrefix(s, cand) {
					op = cand
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(s)
				return l.errf(l.pos, "unexpected character %q inside tag", r)
			}
			switch op {
			case "{":
				depth++
			case "}":
				if depth > 0 {
					depth--
				}
			}
			l.emit(tOp, op, l.pos)
			l.pos += len(op)
		}
	}
}

// str reads a Python-style string literal at the start of s.
func (l *lexer) str(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	i := 1
	for i < len(s) {
		c := s[i]
		if c == q {
			return b.String(), i + 1, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(s) {
			break
		}
		e := s[i+1]
		i += 2
		switch e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case 'a':
			b.WriteByte('\a')
		case '\\', '\'', '"':
			b.WriteByte(e)
		case '\n':
			// line continuation
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if i+n > len(s) {
				return "", 0, l.errf(l.pos+i-2, "truncated \\%c escape in string literal", e)
			}
			v, err := strconv.ParseUint(s[i:i+n], 16, 32)
			if err != nil || v > unicode.MaxRune {
				return "", 0, l.errf(l.pos+i-2, "invalid \\%c escape in string literal", e)
			}
			b.WriteRune(rune(v))
			i += n
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(e - '0')
			for k := 0; k < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; k++ {
				v = v*8 + int(s[i]-'0')
				i++
			}
			b.WriteRune(rune(v))
		default:
			// Python keeps unknown escapes verbatim.
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
	return "", 0, l.errf(l.pos, "unterminated string literal: expected closing %c", q)
}
