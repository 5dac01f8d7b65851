package grammar

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"unicode"
)

// Regexes arrive in ECMAScript syntax (JSON Schema's "pattern", vLLM's guided_regex)
// and are parsed with Go's regexp/syntax after a translation of the few constructs
// whose meaning differs: \uXXXX and \u{X} escapes, \s and \S (Unicode white space in
// ECMAScript, ASCII in RE2) and "." (which excludes \r, U+2028 and U+2029 too in
// ECMAScript). Lookaround, backreferences, word boundaries and anchors anywhere but at
// the ends of the pattern (or of its top-level alternatives) are refused.

// jsSpace is ECMAScript's \s as class members.
const jsSpace = `\t\n\x0B\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}`

// RegexError is a pattern that cannot be compiled.
type RegexError struct {
	Pattern string
	Msg     string
}

func (e *RegexError) Error() string { return fmt.Sprintf("regex %q: %s", e.Pattern, e.Msg) }

// translateJS rewrites an ECMAScript pattern into RE2 syntax with the same meaning.
func translateJS(p string) (string, error) {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			if i+1 >= len(p) {
				return "", fmt.Errorf("trailing backslash")
			}
			n := p[i+1]
			i++
			switch n {
			case 'u':
				if i+1 < len(p) && p[i+1] == '{' {
					end := strings.IndexByte(p[i+1:], '}')
					if end < 0 {
						return "", fmt.Errorf(`unterminated \u{...} escape`)
					}
					hex := p[i+2 : i+1+end]
					if !isHex(hex) || len(hex) == 0 || len(hex) > 6 {
						return "", fmt.Errorf(`bad \u{%s} escape`, hex)
					}
					b.WriteString(`\x{` + hex + `}`)
					i += 1 + end
				} else {
					if i+5 > len(p) || !isHex(p[i+1:i+5]) {
						return "", fmt.Errorf(`\u must be followed by four hex digits`)
					}
					b.WriteString(`\x{` + p[i+1:i+5] + `}`)
					i += 4
				}
			case 's':
				if inClass {
					b.WriteString(jsSpace)
				} else {
					b.WriteString("[" + jsSpace + "]")
				}
			case 'S':
				if inClass {
					return "", fmt.Errorf(`\S inside a character class is not supported`)
				}
				b.WriteString("[^" + jsSpace + "]")
			case 'b':
				if inClass {
					b.WriteString(`\x08`)
				} else {
					return "", fmt.Errorf(`word boundaries (\b) are not supported`)
				}
			case 'B':
				return "", fmt.Errorf(`word boundaries (\B) are not supported`)
			case 'k':
				return "", fmt.Errorf("backreferences are not supported")
			case 'c':
				return "", fmt.Errorf(`control escapes (\c) are not supported`)
			case '0':
				b.WriteString(`\x00`)
			case '/':
				b.WriteByte('/')
			case '1', '2', '3', '4', '5', '6', '7', '8', '9':
				return "", fmt.Errorf("backreferences are not supported")
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte('[')
			if strings.HasPrefix(p[i+1:], "^]") || strings.HasPrefix(p[i+1:], "]") {
				return "", fmt.Errorf("empty character classes ([] and [^]) are not supported")
			}
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(']')
		case c == '[' && inClass:
			b.WriteString(`\[`) // a literal "[" inside a class (RE2 would read "[:")
		case c == '.' && !inClass:
			b.WriteString(`[^\n\r\x{2028}\x{2029}]`)
		case c == '(' && !inClass && strings.HasPrefix(p[i:], "(?"):
			rest := p[i+2:]
			switch {
			case strings.HasPrefix(rest, ":"), strings.HasPrefix(rest, "<") && !strings.HasPrefix(rest, "<=") && !strings.HasPrefix(rest, "<!"):
				b.WriteByte('(')
			default:
				return "", fmt.Errorf("lookaround and inline flags ((?=, (?!, (?<=, (?<!, (?i)) are not supported")
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// parseJSRegex parses an ECMAScript pattern.
func parseJSRegex(pattern string) (*syntax.Regexp, error) {
	t, err := translateJS(pattern)
	if err != nil {
		return nil, &RegexError{pattern, err.Error()}
	}
	re, err := syntax.Parse(t, syntax.ClassNL|syntax.OneLine|syntax.PerlX|syntax.UnicodeGroups)
	if err != nil {
		msg := err.Error()
		if e, ok := err.(*syntax.Error); ok {
			msg = fmt.Sprintf("%s: %s", e.Code, e.Expr)
		}
		return nil, &RegexError{pattern, msg}
	}
	return re.Simplify(), nil
}

// anyChar is every character (as rune ranges).
var anyChar = []rune{0, 0x10FFFF}

// regexFrag compiles a parsed regex into the NFA. Anchors must have been removed.
func (a *nfa) regexFrag(re *syntax.Regexp, enc encoding) (frag, error) {
	switch re.Op {
	case syntax.OpNoMatch:
		return a.none(), nil
	case syntax.OpEmptyMatch:
		return a.empty(), nil
	case syntax.OpLiteral:
		var parts []frag
		for _, r := range re.Rune {
			rs := []rune{r, r}
			if re.Flags&syntax.FoldCase != 0 {
				rs = foldRanges(r)
			}
			parts = append(parts, a.runes(rs, enc))
		}
		return a.seq(parts...), nil
	case syntax.OpCharClass:
		return a.runes(re.Rune, enc), nil
	case syntax.OpAnyCharNotNL:
		return a.runes([]rune{0, '\n' - 1, '\n' + 1, '\r' - 1, '\r' + 1, 0x2027, 0x202A, 0x10FFFF}, enc), nil
	case syntax.OpAnyChar:
		return a.runes(anyChar, enc), nil
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return frag{}, fmt.Errorf("anchors (^, $) are supported only at the start and end of the pattern or of its top-level alternatives")
	case syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return frag{}, fmt.Errorf("word boundaries are not supported")
	case syntax.OpCapture:
		return a.regexFrag(re.Sub[0], enc)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		f, err := a.regexFrag(re.Sub[0], enc)
		if err != nil {
			return frag{}, err
		}
		switch re.Op {
		case syntax.OpStar:
			return a.star(f), nil
		case syntax.OpPlus:
			return a.plus(f), nil
		}
		return a.opt(f), nil
	case syntax.OpRepeat:
		var err error
		f := a.repeat(func() frag {
			if err != nil {
				return a.empty()
			}
			var g frag
			g, err = a.regexFrag(re.Sub[0], enc)
			return g
		}, re.Min, re.Max)
		return f, err
	case syntax.OpConcat, syntax.OpAlternate:
		var parts []frag
		for _, s := range re.Sub {
			f, err := a.regexFrag(s, enc)
			if err != nil {
				return frag{}, err
			}
			parts = append(parts, f)
		}
		if re.Op == syntax.OpConcat {
			return a.seq(parts...), nil
		}
		return a.alt(parts...), nil
	}
	return frag{}, fmt.Errorf("unsupported regex construct %v", re.Op)
}

// foldRanges is r with its simple case folds, as sorted ranges.
func foldRanges(r rune) []rune {
	set := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		set = append(set, f)
	}
	sortRunes(set)
	out := make([]rune, 0, 2*len(set))
	for _, c := range set {
		out = append(out, c, c)
	}
	return out
}

func sortRunes(s []rune) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// searchFrag compiles a pattern with ECMAScript search semantics: unless anchored, it
// may match anywhere in the string, so the language is (any)* P (any)*. full makes
// the match span the whole string (guided_regex).
func (a *nfa) searchFrag(pattern string, enc encoding, full bool) (frag, error) {
	re, err := parseJSRegex(pattern)
	if err != nil {
		return frag{}, err
	}
	branches := []*syntax.Regexp{re}
	if re.Op == syntax.OpAlternate {
		branches = re.Sub
	}
	var alts []frag
	for _, br := range branches {
		begin, end := full, full
		subs := []*syntax.Regexp{br}
		if br.Op == syntax.OpConcat {
			subs = br.Sub
		}
		for len(subs) > 0 && isBegin(subs[0]) {
			begin = true
			subs = subs[1:]
		}
		for len(subs) > 0 && isEnd(subs[len(subs)-1]) {
			end = true
			subs = subs[:len(subs)-1]
		}
		var parts []frag
		if !begin {
			parts = append(parts, a.star(a.runes(anyChar, enc)))
		}
		for _, s := range subs {
			f, err := a.regexFrag(s, enc)
			if err != nil {
				return frag{}, &RegexError{pattern, err.Error()}
			}
			parts = append(parts, f)
		}
		if !end {
			parts = append(parts, a.star(a.runes(anyChar, enc)))
		}
		alts = append(alts, a.seq(parts...))
	}
	return a.alt(alts...), nil
}

func isBegin(re *syntax.Regexp) bool {
	return re.Op == syntax.OpBeginText || re.Op == syntax.OpBeginLine
}

func isEnd(re *syntax.Regexp) bool {
	return re.Op == syntax.OpEndText || re.Op == syntax.OpEndLine
}
