package jinja

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

type filterFunc func(r *renderer, v any, args []any, kw *Dict) (any, error)

// filters holds the supported Jinja filters (checked at parse time).
var filters map[string]filterFunc

type testSpec struct {
	args int // number of arguments the test takes
	fn   func(v any, args []any) (bool, error)
}

// arg returns positional argument i, else keyword name, else def.
func arg(args []any, kw *Dict, i int, name string, def any) any {
	if i >= 0 && i < len(args) {
		return args[i]
	}
	if kw != nil {
		if v, ok := kw.m[name]; ok {
			return v
		}
	}
	return def
}

func argBool(args []any, kw *Dict, i int, name string) bool {
	return truthy(arg(args, kw, i, name, false))
}

func (r *renderer) applyFilter(f *filterExpr, v any, sc *scope) (any, error) {
	args, err := r.evalList(f.args, sc)
	if err != nil {
		return nil, err
	}
	kw, err := r.evalKw(f.kwName, f.kwVals, sc)
	if err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case []any:
		err = r.stepN(len(x))
	case *Dict:
		err = r.stepN(x.Len())
	case string:
		err = r.stepN(len(x) / 16)
	}
	if err != nil {
		return nil, err
	}
	out, err := filters[f.name](r, v, args, kw)
	if err != nil {
		var le *LimitError
		var re *RaiseError
		if errors.As(err, &le) || errors.As(err, &re) {
			return nil, err
		}
		return nil, r.errf(f.pos, "filter '%s': %v", f.name, err)
	}
	return out, nil
}

func runTest(name string, v any, args []any) (bool, error) {
	spec := tests[name]
	if len(args) < spec.args {
		return false, fmt.Errorf("needs %d argument(s)", spec.args)
	}
	return spec.fn(v, args)
}

// attrPath follows a dotted attribute path ("a.b.0") like Jinja's attrgetter.
func attrPath(v any, path string) any {
	for _, part := range strings.Split(path, ".") {
		if n, err := strconv.ParseInt(part, 10, 64); err == nil {
			v = getItem(v, n)
		} else {
			v = getItem(v, part)
		}
	}
	return v
}

func attrArg(a any) (string, bool) {
	switch x := a.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

func pyStrip(s string, chars any, left, right bool) string {
	var f func(rune) bool
	if cs, ok := chars.(string); ok {
		f = func(r rune) bool { return strings.ContainsRune(cs, r) }
	} else {
		f = isSpace
	}
	if left {
		s = strings.TrimLeftFunc(s, f)
	}
	if right {
		s = strings.TrimRightFunc(s, f)
	}
	return s
}

// pyTitle is Python's str.title().
func pyTitle(s string) string {
	var b strings.Builder
	prevCased := false
	for _, r := range s {
		if prevCased {
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(unicode.ToTitle(r))
		}
		prevCased = unicode.IsLetter(r)
	}
	return b.String()
}

// jinjaTitle is Jinja's title filter: words start after spaces, '-', and
// opening brackets; the rest of each word is lowercased.
func jinjaTitle(s string) string {
	var b strings.Builder
	start := true
	for _, r := range s {
		if isSpace(r) || strings.ContainsRune("-({[<", r) {
			start = true
			b.WriteRune(r)
			continue
		}
		if start {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		start = false
	}
	return b.String()
}

func pyCapitalize(s string) string {
	for i, r := range s {
		return string(unicode.ToUpper(r)) + strings.ToLower(s[i+len(string(r)):])
	}
	return s
}

func pyReplace(s, old, new string, count any) string {
	n := -1
	if c, ok := toInt(count); ok && count != nil {
		n = int(c)
		if n < 0 {
			n = -1
		}
	}
	if old == "" && n != 0 {
		// Python inserts new between every character (and at both ends).
		rs := []rune(s)
		var b strings.Builder
		done := 0
		for i := 0; i <= len(rs); i++ {
			if n < 0 || done < n {
				b.WriteString(new)
				done++
			}
			if i < len(rs) {
				b.WriteRune(rs[i])
			}
		}
		return b.String()
	}
	return strings.Replace(s, old, new, n)
}

// pySplit is Python's str.split(sep=None, maxsplit=-1).
func pySplit(s string, sep any, maxsplit int64) ([]any, error) {
	var parts []string
	if sepStr, ok := sep.(string); ok {
		if sepStr == "" {
			return nil, errors.New("empty separator")
		}
		parts = strings.SplitN(s, sepStr, int(max(maxsplit+1, -1)))
		if maxsplit < 0 {
			parts = strings.Split(s, sepStr)
		}
	} else if sep == nil || isUndefined(sep) {
		rest := strings.TrimLeftFunc(s, isSpace)
		for rest != "" {
			if maxsplit >= 0 && int64(len(parts)) >= maxsplit {
				parts = append(parts, rest)
				break
			}
			i := strings.IndexFunc(rest, isSpace)
			if i < 0 {
				parts = append(parts, rest)
				break
			}
			parts = append(parts, rest[:i])
			rest = strings.TrimLeftFunc(rest[i:], isSpace)
		}
	} else {
		return nil, fmt.Errorf("must be str or None, not %s", TypeName(sep))
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func strList(items []any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = toStr(it)
	}
	return out
}

func startsEnds(s string, args []any, ends bool) (bool, error) {
	if len(args) == 0 {
		return false, errors.New("takes at least 1 argument")
	}
	check := func(p any) (bool, error) {
		ps, ok := p.(string)
		if !ok {
			return false, fmt.Errorf("argument must be str or a tuple of str, not %s", TypeName(p))
		}
		if ends {
			return strings.HasSuffix(s, ps), nil
		}
		return strings.HasPrefix(s, ps), nil
	}
	if l, ok := args[0].([]any); ok {
		for _, p := range l {
			if ok, err := check(p); ok || err != nil {
				return ok, err
			}
		}
		return false, nil
	}
	return check(args[0])
}

// method returns the bound Python method name of v, or nil. Methods that
// mutate (list.append, dict.update, ...) are missing on purpose: transformers
// renders in an ImmutableSandboxedEnvironment, which forbids them.
func method(v any, name string) *callable {
	mk := func(fn func(args []any, kw *Dict) (any, error)) *callable {
		return &callable{name: name, fn: func(_ *renderer, args []any, kw *Dict) (any, error) { return fn(args, kw) }}
	}
	switch x := v.(type) {
	case string:
		switch name {
		case "strip", "lstrip", "rstrip":
			return mk(func(args []any, kw *Dict) (any, error) {
				c := arg(args, kw, 0, "chars", nil)
				return pyStrip(x, c, name != "rstrip", name != "lstrip"), nil
			})
		case "upper":
			return mk(func([]any, *Dict) (any, error) { return strings.ToUpper(x), nil })
		case "lower":
			return mk(func([]any, *Dict) (any, error) { return strings.ToLower(x), nil })
		case "title":
			return mk(func([]any, *Dict) (any, error) { return pyTitle(x), nil })
		case "capitalize":
			return mk(func([]any, *Dict) (any, error) { return pyCapitalize(x), nil })
		case "startswith", "endswith":
			return mk(func(args []any, kw *Dict) (any, error) { return startsEnds(x, args, name == "endswith") })
		case "split":
			return mk(func(args []any, kw *Dict) (any, error) {
				n, ok := toInt(arg(args, kw, 1, "maxsplit", int64(-1)))
				if !ok {
					return nil, errors.New("maxsplit must be an integer")
				}
				return pySplit(x, arg(args, kw, 0, "sep", nil), n)
			})
		case "replace":
			return mk(func(args []any, kw *Dict) (any, error) {
				if len(args) < 2 {
					return nil, errors.New("replace() takes at least 2 arguments")
				}
				o, ok1 := args[0].(string)
				n, ok2 := args[1].(string)
				if !ok1 || !ok2 {
					return nil, errors.New("replace() arguments must be str")
				}
				return pyReplace(x, o, n, arg(args, kw, 2, "count", nil)), nil
			})
		case "join":
			return mk(func(args []any, kw *Dict) (any, error) {
				items, err := iterate(arg(args, kw, 0, "iterable", []any{}))
				if err != nil {
					return nil, err
				}
				return strings.Join(strList(items), x), nil
			})
		case "find", "rfind", "count":
			return mk(func(args []any, kw *Dict) (any, error) {
				sub, ok := arg(args, kw, 0, "sub", nil).(string)
				if !ok {
					return nil, fmt.Errorf("%s() needs a str argument", name)
				}
				var i int
				switch name {
				case "count":
					return int64(strings.Count(x, sub)), nil
				case "find":
					i = strings.Index(x, sub)
				default:
					i = strings.LastIndex(x, sub)
				}
				if i < 0 {
					return int64(-1), nil
				}
				return int64(len([]rune(x[:i]))), nil
			})
		case "splitlines":
			return mk(func([]any, *Dict) (any, error) {
				out := []any{}
				for _, l := range splitLines(x) {
					out = append(out, l)
				}
				return out, nil
			})
		case "isdigit", "isalpha", "isspace", "isalnum":
			return mk(func([]any, *Dict) (any, error) {
				if x == "" {
					return false, nil
				}
				for _, r := range x {
					ok := map[string]bool{"isdigit": unicode.IsDigit(r), "isalpha": unicode.IsLetter(r), "isspace": isSpace(r), "isalnum": unicode.IsLetter(r) || unicode.IsDigit(r)}[name]
					if !ok {
						return false, nil
					}
				}
				return true, nil
			})
		case "islower", "isupper":
			return mk(func([]any, *Dict) (any, error) { return isCase(x, name == "isupper"), nil })
		}
	case *Dict:
		switch name {
		case "items":
			return mk(func([]any, *Dict) (any, error) { return dictItems(x), nil })
		case "keys":
			return mk(func([]any, *Dict) (any, error) { return iterate(x) })
		case "values":
			return mk(func([]any, *Dict) (any, error) {
				out := make([]any, len(x.keys))
				for i, k := range x.keys {
					out[i] = x.m[k]
				}
				return out, nil
			})
		case "get":
			return mk(func(args []any, kw *Dict) (any, error) {
				if len(args) == 0 {
					return nil, errors.New("get() takes at least 1 argument")
				}
				if k, ok := args[0].(string); ok {
					if v, ok := x.m[k]; ok {
						return v, nil
					}
				}
				return arg(args, nil, 1, "", nil), nil
			})
		}
	case []any:
		switch name {
		case "index":
			return mk(func(args []any, kw *Dict) (any, error) {
				for i, e := range x {
					if len(args) > 0 && equal(e, args[0]) {
						return int64(i), nil
					}
				}
				return nil, errors.New("value is not in list")
			})
		case "count":
			return mk(func(args []any, kw *Dict) (any, error) {
				n := int64(0)
				for _, e := range x {
					if len(args) > 0 && equal(e, args[0]) {
						n++
					}
				}
				return n, nil
			})
		}
	}
	return nil
}

// hashKey maps scalars that compare equal in Python (1, 1.0, True) to the
// same string.
func hashKey(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return "s" + x, true
	case nil:
		return "n", true
	case bool, int64, float64:
		f, _ := toNumber(x)
		return "f" + strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}

func isCase(s string, upper bool) bool {
	cased := false
	for _, r := range s {
		if unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) {
			if upper && !unicode.IsUpper(r) || !upper && !unicode.IsLower(r) {
				return false
			}
			cased = true
		}
	}
	return cased
}

func splitLines(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i])
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return out
}

func dictItems(d *Dict) []any {
	out := make([]any, len(d.keys))
	for i, k := range d.keys {
		out[i] = []any{k, d.m[k]}
	}
	return out
}

func length(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return int64(len([]rune(x))), nil
	case []any:
		return int64(len(x)), nil
	case *Dict:
		return int64(x.Len()), nil
	case Undefined:
		return 0, nil
	}
	return 0, fmt.Errorf("object of type '%s' has no len()", TypeName(v))
}

func sortKey(v any, caseSensitive bool) any {
	if s, ok := v.(string); ok && !caseSensitive {
		return strings.ToLower(s)
	}
	return v
}

// sortItems sorts items stably by key(item) the way Python's sorted does.
func sortItems(items []any, key func(any) any, reverse bool) ([]any, error) {
	out := append([]any(nil), items...)
	var cmpErr error
	sort.SliceStable(out, func(i, j int) bool {
		a, b := key(out[i]), key(out[j])
		if reverse {
			a, b = b, a
		}
		c, err := compare(a, b)
		if err != nil && cmpErr == nil {
			cmpErr = err
		}
		return c < 0
	})
	return out, cmpErr
}

func toIntFilter(v, def any, base int) any {
	switch x := v.(type) {
	case int64:
		return x
	case bool:
		i, _ := toInt(x)
		return i
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return def
		}
		return int64(x)
	case string:
		s := strings.TrimFunc(x, isSpace)
		s = strings.ReplaceAll(s, "_", "")
		if i, err := strconv.ParseInt(s, base, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return int64(f)
		}
	}
	return def
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}

// pyFormat is a small subset of Python's "fmt % args": %s %r %d %i %f %x %%.
func pyFormat(f string, args []any) (string, error) {
	var b strings.Builder
	ai := 0
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		j := i + 1
		for j < len(f) && strings.IndexByte("0123456789.-+ ", f[j]) >= 0 {
			j++
		}
		if j >= len(f) {
			return "", errors.New("incomplete format")
		}
		spec, verb := f[i+1:j], f[j]
		i = j
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if ai >= len(args) {
			return "", errors.New("not enough arguments for format string")
		}
		a := args[ai]
		ai++
		switch verb {
		case 's':
			fmt.Fprintf(&b, "%"+spec+"s", toStr(a))
		case 'r':
			var rb strings.Builder
			writeRepr(&rb, a, 0)
			fmt.Fprintf(&b, "%"+spec+"s", rb.String())
		case 'd', 'i':
			n, ok := toNumber(a)
			if !ok {
				return "", fmt.Errorf("%%%c format: a number is required, not %s", verb, TypeName(a))
			}
			fmt.Fprintf(&b, "%"+spec+"d", int64(n))
		case 'f', 'x', 'e', 'g':
			n, ok := toNumber(a)
			if !ok {
				return "", fmt.Errorf("%%%c format: a number is required, not %s", verb, TypeName(a))
			}
			if verb == 'x' {
				fmt.Fprintf(&b, "%"+spec+"x", int64(n))
			} else {
				if verb == 'f' && !strings.Contains(spec, ".") {
					spec += ".6"
				}
				fmt.Fprintf(&b, "%"+spec+string(verb), n)
			}
		default:
			return "", fmt.Errorf("unsupported format character '%c'", verb)
		}
	}
	if ai < len(args) {
		return "", errors.New("not all arguments converted during string formatting")
	}
	return b.String(), nil
}

// selectItems implements select/reject/selectattr/rejectattr.
func selectItems(v any, args []any, attr bool, want bool) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	path := ""
	if attr {
		if len(args) == 0 {
			return nil, errors.New("missing attribute name")
		}
		p, ok := attrArg(args[0])
		if !ok {
			return nil, errors.New("attribute name must be a string")
		}
		path, args = p, args[1:]
	}
	var test func(any) (bool, error)
	if len(args) == 0 {
		test = func(x any) (bool, error) { return truthy(x), nil }
	} else {
		name, ok := args[0].(string)
		if !ok {
			return nil, errors.New("test name must be a string")
		}
		if _, ok := tests[name]; !ok {
			return nil, fmt.Errorf("unknown test '%s'", name)
		}
		rest := args[1:]
		test = func(x any) (bool, error) { return runTest(name, x, rest) }
	}
	out := []any{}
	for _, it := range items {
		x := it
		if attr {
			x = attrPath(it, path)
		}
		ok, err := test(x)
		if err != nil {
			return nil, err
		}
		if ok == want {
			out = append(out, it)
		}
	}
	return out, nil
}

func minMax(v any, args []any, kw *Dict, wantMax bool) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{}, nil
	}
	cs := argBool(args, kw, 0, "case_sensitive")
	attrName, hasAttr := attrArg(arg(args, kw, 1, "attribute", nil))
	key := func(x any) any {
		if hasAttr {
			x = attrPath(x, attrName)
		}
		return sortKey(x, cs)
	}
	best := items[0]
	for _, it := range items[1:] {
		c, err := compare(key(it), key(best))
		if err != nil {
			return nil, err
		}
		if (wantMax && c > 0) || (!wantMax && c < 0) {
			best = it
		}
	}
	return best, nil
}

// tests holds the supported Jinja tests (checked at parse time).
var tests = map[string]testSpec{
	"defined":     {0, testDefined},
	"undefined":   {0, testUndefined},
	"none":        {0, testNone},
	"boolean":     {0, testBoolean},
	"true":        {0, testTrue},
	"false":       {0, testFalse},
	"integer":     {0, testInteger},
	"float":       {0, testFloat},
	"number":      {0, testNumber},
	"string":      {0, testString},
	"mapping":     {0, testMapping},
	"iterable":    {0, testIterable},
	"sequence":    {0, testIterable},
	"callable":    {0, testCallable},
	"odd":         {0, testOdd},
	"even":        {0, testEven},
	"divisibleby": {1, testDivisibleby},
	"lower":       {0, testLower},
	"upper":       {0, testUpper},
	"escaped":     {0, testEscaped},
	"in":          {1, testIn},
	"sameas":      {1, testSameas},
	"eq":          {1, compareTest("==")},
	"equalto":     {1, compareTest("==")},
	"==":          {1, compareTest("==")},
	"ne":          {1, compareTest("!=")},
	"!=":          {1, compareTest("!=")},
	"lt":          {1, compareTest("<")},
	"lessthan":    {1, compareTest("<")},
	"<":           {1, compareTest("<")},
	"le":          {1, compareTest("<=")},
	"<=":          {1, compareTest("<=")},
	"gt":          {1, compareTest(">")},
	"greaterthan": {1, compareTest(">")},
	">":           {1, compareTest(">")},
	"ge":          {1, compareTest(">=")},
	">=":          {1, compareTest(">=")},
}

// compareTest is the test form of a comparison operator ("x is lt 3").
func compareTest(op string) func(v any, a []any) (bool, error) {
	return func(v any, a []any) (bool, error) { return compareOp(op, v, a[0]) }
}

func init() {
	// Set in init rather than declared: filters such as map call back into the
	// renderer, which reads this table (a declaration would be an initialization cycle).
	filters = map[string]filterFunc{
		"safe":       filterSafe,
		"string":     filterString,
		"trim":       filterTrim,
		"upper":      filterUpper,
		"lower":      filterLower,
		"title":      filterTitle,
		"capitalize": filterCapitalize,
		"replace":    filterReplace,
		"length":     filterLength,
		"first":      filterFirst,
		"last":       filterLast,
		"default":    filterDefault,
		"list":       filterList,
		"items":      filterItems,
		"join":       filterJoin,
		"tojson":     filterTojson,
		"int":        filterInt,
		"float":      filterFloat,
		"abs":        filterAbs,
		"round":      filterRound,
		"reverse":    filterReverse,
		"sort":       filterSort,
		"dictsort":   filterDictsort,
		"unique":     filterUnique,
		"min":        filterMin,
		"max":        filterMax,
		"sum":        filterSum,
		"map":        filterMap,
		"select":     filterSelect,
		"reject":     filterReject,
		"selectattr": filterSelectattr,
		"rejectattr": filterRejectattr,
		"attr":       filterAttr,
		"indent":     filterIndent,
		"escape":     filterEscape,
		"format":     filterFormat,
		"wordcount":  filterWordcount,
		"batch":      filterBatch,
		"d":          filterDefault,
		"count":      filterLength,
		"e":          filterEscape,
		// "strip" is not a Jinja filter; accepted as an alias of trim for templates
		// written against lenient engines.
		"strip": filterTrim,
	}
}

func testDefined(v any, _ []any) (bool, error) {
	return !isUndefined(v), nil
}

func testUndefined(v any, _ []any) (bool, error) {
	return isUndefined(v), nil
}

func testNone(v any, _ []any) (bool, error) {
	return v == nil, nil
}

func testBoolean(v any, _ []any) (bool, error) {
	_, ok := v.(bool)
	return ok, nil
}

func testTrue(v any, _ []any) (bool, error) {
	return v == true, nil
}

func testFalse(v any, _ []any) (bool, error) {
	return v == false, nil
}

func testInteger(v any, _ []any) (bool, error) {
	_, ok := v.(int64)
	return ok, nil
}

func testFloat(v any, _ []any) (bool, error) {
	_, ok := v.(float64)
	return ok, nil
}

func testNumber(v any, _ []any) (bool, error) {
	_, ok := toNumber(v)
	return ok, nil
}

func testString(v any, _ []any) (bool, error) {
	_, ok := v.(string)
	return ok, nil
}

func testMapping(v any, _ []any) (bool, error) {
	_, ok := v.(*Dict)
	return ok, nil
}

func testIterable(v any, _ []any) (bool, error) {
	switch v.(type) {
	case string, []any, *Dict, Undefined:
		return true, nil
	}
	return false, nil
}

func testCallable(v any, _ []any) (bool, error) {
	_, ok := v.(*callable)
	return ok, nil
}

func testOdd(v any, _ []any) (bool, error) {
	i, ok := v.(int64)
	if !ok {
		return false, fmt.Errorf("'%s' is not an integer", TypeName(v))
	}
	return i%2 != 0, nil
}

func testEven(v any, _ []any) (bool, error) {
	i, ok := v.(int64)
	if !ok {
		return false, fmt.Errorf("'%s' is not an integer", TypeName(v))
	}
	return i%2 == 0, nil
}

func testDivisibleby(v any, a []any) (bool, error) {
	x, ok1 := toInt(v)
	y, ok2 := toInt(a[0])
	if !ok1 || !ok2 || y == 0 {
		return false, errors.New("needs non-zero integers")
	}
	return x%y == 0, nil
}

func testLower(v any, _ []any) (bool, error) {
	s, ok := v.(string)
	return ok && isCase(s, false), nil
}

func testUpper(v any, _ []any) (bool, error) {
	s, ok := v.(string)
	return ok && isCase(s, true), nil
}

func testEscaped(v any, _ []any) (bool, error) {
	return false, nil
}

func testIn(v any, a []any) (bool, error) {
	return contains(a[0], v)
}

func testSameas(v any, a []any) (bool, error) {
	switch v.(type) {
	case nil, bool, Undefined:
		return v == a[0], nil
	}
	return equal(v, a[0]) && TypeName(v) == TypeName(a[0]), nil
}

func filterSafe(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return v, nil
}

func filterString(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return toStr(v), nil
}

func filterTrim(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	return pyStrip(toStr(v), arg(args, kw, 0, "chars", nil), true, true), nil
}

func filterUpper(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return strings.ToUpper(toStr(v)), nil
}

func filterLower(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return strings.ToLower(toStr(v)), nil
}

func filterTitle(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return jinjaTitle(toStr(v)), nil
}

func filterCapitalize(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return pyCapitalize(toStr(v)), nil
}

func filterReplace(r *renderer, v any, args []any, kw *Dict) (any, error) {
	if len(args) < 2 {
		return nil, errors.New("needs old and new strings")
	}
	src, old, new := toStr(v), toStr(args[0]), toStr(args[1])
	n := len(src) + 1
	if old != "" {
		n = strings.Count(src, old)
	}
	if err := r.checkLen(len(src) + n*len(new)); err != nil {
		return nil, err
	}
	return pyReplace(src, old, new, arg(args, kw, 2, "count", nil)), nil
}

func filterLength(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return length(v)
}

func filterFirst(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{}, nil
	}
	return items[0], nil
}

func filterLast(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return Undefined{}, nil
	}
	return items[len(items)-1], nil
}

func filterDefault(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	def := arg(args, kw, 0, "default_value", "")
	if isUndefined(v) || (argBool(args, kw, 1, "boolean") && !truthy(v)) {
		return def, nil
	}
	return v, nil
}

func filterList(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	items, err := iterate(v)
	return append([]any{}, items...), err
}

func filterItems(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	switch x := v.(type) {
	case *Dict:
		return dictItems(x), nil
	case Undefined:
		return []any{}, nil
	}
	return nil, fmt.Errorf("can only get item pairs from a mapping, not %s", TypeName(v))
}

func filterJoin(r *renderer, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	sep := toStr(arg(args, kw, 0, "d", ""))
	if a, ok := attrArg(arg(args, kw, 1, "attribute", nil)); ok {
		for i, it := range items {
			items[i] = attrPath(it, a)
		}
	}
	s := strings.Join(strList(items), sep)
	return s, r.checkLen(len(s))
}

func filterTojson(r *renderer, v any, args []any, kw *Dict) (any, error) {
	o := jsonOpts{ensureASCII: truthy(arg(args, kw, -1, "ensure_ascii", false)), sortKeys: truthy(arg(args, kw, -1, "sort_keys", false))}
	switch ind := arg(args, kw, 0, "indent", nil).(type) {
	case nil:
	case int64:
		o.hasIndent, o.indent = true, strings.Repeat(" ", int(max(0, min(ind, 64))))
	case string:
		o.hasIndent, o.indent = true, ind
	default:
		return nil, fmt.Errorf("indent must be an integer or string, not %s", TypeName(ind))
	}
	if sep := arg(args, kw, -1, "separators", nil); sep != nil {
		l, ok := sep.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("separators must be a pair of strings")
		}
		o.itemSep, o.keySep = toStr(l[0]), toStr(l[1])
	}
	s, err := toJSON(v, o)
	if err != nil {
		return nil, err
	}
	return s, r.checkLen(len(s))
}

func filterInt(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	base, _ := toInt(arg(args, kw, 1, "base", int64(10)))
	if base < 2 || base > 36 {
		base = 10
	}
	return toIntFilter(v, arg(args, kw, 0, "default", int64(0)), int(base)), nil
}

func filterFloat(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	def := arg(args, kw, 0, "default", 0.0)
	switch x := v.(type) {
	case int64, bool:
		f, _ := toNumber(x)
		return f, nil
	case float64:
		return x, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimFunc(x, isSpace), 64); err == nil {
			return f, nil
		}
	}
	return def, nil
}

func filterAbs(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return -x, nil
		}
		return x, nil
	case float64:
		return math.Abs(x), nil
	case bool:
		i, _ := toInt(x)
		return i, nil
	}
	return nil, fmt.Errorf("bad operand type for abs(): '%s'", TypeName(v))
}

func filterRound(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	f, ok := toNumber(v)
	if !ok {
		return nil, fmt.Errorf("cannot round %s", TypeName(v))
	}
	p, _ := toInt(arg(args, kw, 0, "precision", int64(0)))
	m, _ := arg(args, kw, 1, "method", "common").(string)
	scale := math.Pow(10, float64(p))
	switch m {
	case "common":
		return math.RoundToEven(f*scale) / scale, nil
	case "ceil":
		return math.Ceil(f*scale) / scale, nil
	case "floor":
		return math.Floor(f*scale) / scale, nil
	}
	return nil, errors.New("method must be common, ceil or floor")
}

func filterReverse(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	if s, ok := v.(string); ok {
		rs := []rune(s)
		for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
			rs[i], rs[j] = rs[j], rs[i]
		}
		return string(rs), nil
	}
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[len(items)-1-i] = it
	}
	return out, nil
}

func filterSort(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	rev := argBool(args, kw, 0, "reverse")
	cs := argBool(args, kw, 1, "case_sensitive")
	attrName, hasAttr := attrArg(arg(args, kw, 2, "attribute", nil))
	return sortItems(items, func(x any) any {
		if hasAttr {
			x = attrPath(x, attrName)
		}
		return sortKey(x, cs)
	}, rev)
}

func filterDictsort(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	d, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("dictsort needs a mapping, not %s", TypeName(v))
	}
	cs := argBool(args, kw, 0, "case_sensitive")
	by, _ := arg(args, kw, 1, "by", "key").(string)
	idx := 0
	switch by {
	case "key":
	case "value":
		idx = 1
	default:
		return nil, errors.New("you can only sort by either 'key' or 'value'")
	}
	return sortItems(dictItems(d), func(x any) any { return sortKey(x.([]any)[idx], cs) }, argBool(args, kw, 2, "reverse"))
}

func filterUnique(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	cs := argBool(args, kw, 0, "case_sensitive")
	attrName, hasAttr := attrArg(arg(args, kw, 1, "attribute", nil))
	var seen []any                // keys that cannot go in the map
	seenKeys := map[string]bool{} // hashable keys, by a type-normalised string
	out := []any{}
next:
	for _, it := range items {
		k := it
		if hasAttr {
			k = attrPath(it, attrName)
		}
		k = sortKey(k, cs)
		if hk, ok := hashKey(k); ok {
			if seenKeys[hk] {
				continue
			}
			seenKeys[hk] = true
			out = append(out, it)
			continue
		}
		if len(seen) > 10000 {
			return nil, errors.New("too many unhashable items")
		}
		for _, s := range seen {
			if equal(s, k) {
				continue next
			}
		}
		seen = append(seen, k)
		out = append(out, it)
	}
	return out, nil
}

func filterMin(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	return minMax(v, args, kw, false)
}

func filterMax(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	return minMax(v, args, kw, true)
}

func filterSum(r *renderer, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	attrName, hasAttr := attrArg(arg(args, kw, 0, "attribute", nil))
	total := arg(args, kw, 1, "start", int64(0))
	for _, it := range items {
		if hasAttr {
			it = attrPath(it, attrName)
		}
		if total, err = r.arith("+", total, it); err != nil {
			return nil, err
		}
	}
	return total, nil
}

func filterMap(r *renderer, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(items))
	if a, ok := attrArg(arg(nil, kw, -1, "attribute", nil)); ok {
		def, hasDef := any(nil), false
		if kw != nil {
			def, hasDef = kw.m["default"]
		}
		for i, it := range items {
			x := attrPath(it, a)
			if isUndefined(x) && hasDef {
				x = def
			}
			out[i] = x
		}
		return out, nil
	}
	if len(args) == 0 {
		return nil, errors.New("map needs a filter name or attribute=")
	}
	name, ok := args[0].(string)
	f, known := filters[name]
	if !ok || !known {
		return nil, fmt.Errorf("unknown filter %s", toStr(args[0]))
	}
	for i, it := range items {
		if out[i], err = f(r, it, args[1:], kw); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func filterSelect(_ *renderer, v any, args []any, _ *Dict) (any, error) {
	return selectItems(v, args, false, true)
}

func filterReject(_ *renderer, v any, args []any, _ *Dict) (any, error) {
	return selectItems(v, args, false, false)
}

func filterSelectattr(_ *renderer, v any, args []any, _ *Dict) (any, error) {
	return selectItems(v, args, true, true)
}

func filterRejectattr(_ *renderer, v any, args []any, _ *Dict) (any, error) {
	return selectItems(v, args, true, false)
}

func filterAttr(_ *renderer, v any, args []any, _ *Dict) (any, error) {
	if len(args) == 0 {
		return nil, errors.New("needs an attribute name")
	}
	return getAttr(v, toStr(args[0])), nil
}

func filterIndent(r *renderer, v any, args []any, kw *Dict) (any, error) {
	s := toStr(v)
	var ind string
	switch w := arg(args, kw, 0, "width", int64(4)).(type) {
	case string:
		ind = w
	default:
		n, _ := toInt(w)
		ind = strings.Repeat(" ", int(max(0, min(n, 256))))
	}
	first := argBool(args, kw, 1, "first")
	blank := argBool(args, kw, 2, "blank")
	lines := splitLines(s + "\n")
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		if (i > 0 || first) && (blank || l != "") {
			b.WriteString(ind)
		}
		b.WriteString(l)
	}
	out := b.String()
	return out, r.checkLen(len(out))
}

func filterEscape(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return htmlEscape(toStr(v)), nil
}

func filterFormat(_ *renderer, v any, args []any, _ *Dict) (any, error) {
	return pyFormat(toStr(v), args)
}

func filterWordcount(_ *renderer, v any, _ []any, _ *Dict) (any, error) {
	return int64(len(strings.FieldsFunc(toStr(v), func(r rune) bool { return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') }))), nil
}

func filterBatch(_ *renderer, v any, args []any, kw *Dict) (any, error) {
	items, err := iterate(v)
	if err != nil {
		return nil, err
	}
	n, ok := toInt(arg(args, kw, 0, "linecount", nil))
	if !ok || n <= 0 {
		return nil, errors.New("linecount must be a positive integer")
	}
	fill, hasFill := any(nil), len(args) > 1
	if hasFill {
		fill = args[1]
	}
	out := []any{}
	for i := 0; i < len(items); i += int(n) {
		row := append([]any{}, items[i:min(len(items), i+int(n))]...)
		for hasFill && int64(len(row)) < n {
			row = append(row, fill)
		}
		out = append(out, row)
	}
	return out, nil
}
