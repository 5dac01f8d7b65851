package jinja

import (
	"fmt"
	"strconv"
	"strings"
)

// maxNesting bounds expression and block nesting so hostile templates fail
// with an error instead of exhausting the stack.
const maxNesting = 200

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(pos Pos, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) isOp(v string) bool   { t := p.peek(); return t.kind == tOp && t.val == v }
func (p *parser) isName(v string) bool { t := p.peek(); return t.kind == tName && t.val == v }

func (p *parser) expectOp(v string) (token, error) {
	t := p.peek()
	if t.kind != tOp || t.val != v {
		return t, p.errAt(t.pos, "expected '%s', got %s", v, t.describe())
	}
	return p.next(), nil
}

func (p *parser) expectKind(k tokKind, what string) (token, error) {
	t := p.peek()
	if t.kind != k {
		return t, p.errAt(t.pos, "expected %s, got %s", what, t.describe())
	}
	return p.next(), nil
}

func (p *parser) expectBlockEnd(stmt string) error {
	t := p.peek()
	if t.kind != tBlockEnd {
		return p.errAt(t.pos, "expected '%%}' to end '%s' tag, got %s", stmt, t.describe())
	}
	p.next()
	return nil
}

func (p *parser) enter(pos Pos) error {
	p.depth++
	if p.depth > maxNesting {
		return p.errAt(pos, "template nested too deeply (more than %d levels)", maxNesting)
	}
	return nil
}
func (p *parser) leave() { p.depth-- }

func parseTemplate(toks []token) ([]node, error) {
	p := &parser{toks: toks}
	body, _, err := p.parseBody("", Pos{})
	return body, err
}

// blockEnds lists which tags end the body of each block statement.
var blockEnds = map[string][]string{
	"if":         {"elif", "else", "endif"},
	"for":        {"else", "endfor"},
	"for-else":   {"endfor"},
	"if-else":    {"endif"},
	"set":        {"endset"},
	"macro":      {"endmacro"},
	"call":       {"endcall"},
	"filter":     {"endfilter"},
	"generation": {"endgeneration"},
}

var endTagNames = map[string]bool{
	"elif": true, "else": true, "endif": true, "endfor": true, "endset": true, "endmacro": true,
	"endcall": true, "endfilter": true, "endgeneration": true, "endraw": true,
}

// parseBody parses nodes until one of the end tags of block opened at openPos
// (or end of template when block is ""). It returns the end tag it stopped at,
// with its "{%" and name consumed.
func (p *parser) parseBody(block string, openPos Pos) ([]node, string, error) {
	ends := blockEnds[block]
	var out []node
	for {
		t := p.peek()
		switch t.kind {
		case tEOF:
			if block == "" {
				return out, "", nil
			}
			name := strings.TrimSuffix(strings.TrimSuffix(block, "-else"), "-else")
			return nil, "", p.errAt(t.pos, "unclosed '%s' block opened at %s: expected {%% %s %%}", name, openPos, ends[len(ends)-1])
		case tText:
			p.next()
			out = append(out, &textNode{text: t.val})
		case tVarBegin:
			p.next()
			e, err := p.parseTupleOrExpr()
			if err != nil {
				return nil, "", err
			}
			if _, err := p.expectKind(tVarEnd, "'}}'"); err != nil {
				return nil, "", err
			}
			out = append(out, &outputNode{pos: t.pos, expr: e})
		case tBlockBegin:
			nt := p.peekAt(1)
			if nt.kind != tName {
				return nil, "", p.errAt(nt.pos, "expected a statement name after '{%%', got %s", nt.describe())
			}
			for _, e := range ends {
				if nt.val == e {
					p.next()
					p.next()
					return out, e, nil
				}
			}
			if endTagNames[nt.val] {
				if block == "" {
					return nil, "", p.errAt(nt.pos, "unexpected '%s': no open block to close", nt.val)
				}
				name := strings.TrimSuffix(block, "-else")
				return nil, "", p.errAt(nt.pos, "unexpected '%s': expected %s (to close '%s' opened at %s)", nt.val, quoteList(ends), name, openPos)
			}
			n, err := p.parseStatement()
			if err != nil {
				return nil, "", err
			}
			if n != nil {
				out = append(out, n...)
			}
		default:
			return nil, "", p.errAt(t.pos, "unexpected %s", t.describe())
		}
	}
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "'" + x + "'"
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// parseStatement parses a {% name ... %} statement; "{%" is the current token.
func (p *parser) parseStatement() ([]node, error) {
	open := p.next()
	if err := p.enter(open.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	nt := p.next()
	switch nt.val {
	case "if":
		n, err := p.parseIf(open.pos)
		return []node{n}, err
	case "for":
		n, err := p.parseFor(open.pos)
		return []node{n}, err
	case "set":
		n, err := p.parseSet(open.pos)
		return []node{n}, err
	case "macro":
		n, err := p.parseMacro(open.pos)
		return []node{n}, err
	case "call":
		n, err := p.parseCallBlock(open.pos)
		return []node{n}, err
	case "filter":
		fs, err := p.parseFilterChain(nil)
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd("filter"); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody("filter", open.pos)
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd("endfilter"); err != nil {
			return nil, err
		}
		return []node{&filterBlockNode{pos: open.pos, filters: fs, body: body}}, nil
	case "break", "continue":
		if err := p.expectBlockEnd(nt.val); err != nil {
			return nil, err
		}
		if nt.val == "break" {
			return []node{&breakNode{pos: open.pos}}, nil
		}
		return []node{&continueNode{pos: open.pos}}, nil
	case "generation":
		// transformers' AssistantTracker extension: {% generation %} marks
		// assistant text for masks; for rendering it is a plain block.
		if err := p.expectBlockEnd("generation"); err != nil {
			return nil, err
		}
		body, _, err := p.parseBody("generation", open.pos)
		if err != nil {
			return nil, err
		}
		return body, p.expectBlockEnd("endgeneration")
	case "do":
		e, err := p.parseTupleOrExpr()
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd("do"); err != nil {
			return nil, err
		}
		return []node{&setNode{pos: open.pos, value: e}}, nil
	case "include", "import", "from", "extends", "block", "with", "autoescape", "trans":
		return nil, p.errAt(nt.pos, "unsupported statement '%s' (chat templates are self-contained)", nt.val)
	}
	return nil, p.errAt(nt.pos, "unknown statement '%s'; expected if, for, set, macro, call, filter, break, continue or raw", nt.val)
}

func (p *parser) parseIf(openPos Pos) (node, error) {
	n := &ifNode{pos: openPos}
	block := "if"
	for {
		cond, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		if err := p.expectBlockEnd("if"); err != nil {
			return nil, err
		}
		body, end, err := p.parseBody(block, openPos)
		if err != nil {
			return nil, err
		}
		n.conds = append(n.conds, cond)
		n.bodies = append(n.bodies, body)
		switch end {
		case "elif":
			continue
		case "else":
			if err := p.expectBlockEnd("else"); err != nil {
				return nil, err
			}
			els, _, err := p.parseBody("if-else", openPos)
			if err != nil {
				return nil, err
			}
			n.els = els
		}
		return n, p.expectBlockEnd("endif")
	}
}

func (p *parser) parseTargets() ([]string, error) {
	paren := false
	if p.isOp("(") {
		p.next()
		paren = true
	}
	var names []string
	for {
		t, err := p.expectKind(tName, "a variable name")
		if err != nil {
			return nil, err
		}
		names = append(names, t.val)
		if !p.isOp(",") {
			break
		}
		p.next()
		if paren && p.isOp(")") {
			break
		}
		if p.peek().kind != tName {
			break
		}
	}
	if paren {
		if _, err := p.expectOp(")"); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func (p *parser) parseFor(openPos Pos) (node, error) {
	n := &forNode{pos: openPos}
	var err error
	if n.targets, err = p.parseTargets(); err != nil {
		return nil, err
	}
	if !p.isName("in") {
		t := p.peek()
		return nil, p.errAt(t.pos, "expected 'in' after the loop variable, got %s", t.describe())
	}
	p.next()
	if n.iter, err = p.parseOr(); err != nil {
		return nil, err
	}
	if p.isOp(",") { // for x in a, b
		items := []expr{n.iter}
		for p.isOp(",") {
			p.next()
			e, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			items = append(items, e)
		}
		n.iter = &listExpr{pos: n.iter.position(), items: items}
	}
	if p.isName("if") {
		p.next()
		if n.cond, err = p.parseOr(); err != nil {
			return nil, err
		}
	}
	if p.isName("recursive") {
		return nil, p.errAt(p.peek().pos, "recursive loops are not supported")
	}
	if err := p.expectBlockEnd("for"); err != nil {
		return nil, err
	}
	body, end, err := p.parseBody("for", openPos)
	if err != nil {
		return nil, err
	}
	n.body = body
	if end == "else" {
		if err := p.expectBlockEnd("else"); err != nil {
			return nil, err
		}
		if n.els, _, err = p.parseBody("for-else", openPos); err != nil {
			return nil, err
		}
	}
	return n, p.expectBlockEnd("endfor")
}

func (p *parser) parseSet(openPos Pos) (node, error) {
	n := &setNode{pos: openPos}
	first, err := p.expectKind(tName, "a variable name after 'set'")
	if err != nil {
		return nil, err
	}
	n.targets = []string{first.val}
	switch {
	case p.isOp("."):
		p.next()
		a, err := p.expectKind(tName, "an attribute name")
		if err != nil {
			return nil, err
		}
		n.attr = a.val
	case p.isOp(","):
		for p.isOp(",") {
			p.next()
			if p.isOp("=") {
				break
			}
			t, err := p.expectKind(tName, "a variable name")
			if err != nil {
				return nil, err
			}
			n.targets = append(n.targets, t.val)
		}
	}
	if p.isOp("=") {
		p.next()
		if n.value, err = p.parseTupleOrExpr(); err != nil {
			return nil, err
		}
		return n, p.expectBlockEnd("set")
	}
	if n.attr != "" || len(n.targets) > 1 {
		t := p.peek()
		return nil, p.errAt(t.pos, "expected '=' in set, got %s", t.describe())
	}
	// Block set: {% set x %}...{% endset %}, optionally with filters.
	if p.isOp("|") {
		if n.filters, err = p.parseFilterChain(nil); err != nil {
			return nil, err
		}
	}
	if p.peek().kind != tBlockEnd {
		t := p.peek()
		return nil, p.errAt(t.pos, "expected '=' or '%%}' in set, got %s", t.describe())
	}
	p.next()
	if n.body, _, err = p.parseBody("set", openPos); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd("endset")
}

func (p *parser) parseParams() ([]string, []expr, error) {
	if _, err := p.expectOp("("); err != nil {
		return nil, nil, err
	}
	var names []string
	var defs []expr
	seenDefault := false
	for !p.isOp(")") {
		t, err := p.expectKind(tName, "a parameter name")
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			if n == t.val {
				return nil, nil, p.errAt(t.pos, "duplicate parameter '%s'", t.val)
			}
		}
		names = append(names, t.val)
		var def expr
		if p.isOp("=") {
			p.next()
			if def, err = p.parseExpr(); err != nil {
				return nil, nil, err
			}
			seenDefault = true
		} else if seenDefault {
			return nil, nil, p.errAt(t.pos, "non-default parameter '%s' follows a default one", t.val)
		}
		defs = append(defs, def)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if _, err := p.expectOp(")"); err != nil {
		return nil, nil, err
	}
	return names, defs, nil
}

func (p *parser) parseMacro(openPos Pos) (node, error) {
	name, err := p.expectKind(tName, "a macro name")
	if err != nil {
		return nil, err
	}
	n := &macroNode{pos: openPos, name: name.val}
	if n.params, n.defaults, err = p.parseParams(); err != nil {
		return nil, err
	}
	if err := p.expectBlockEnd("macro"); err != nil {
		return nil, err
	}
	if n.body, _, err = p.parseBody("macro", openPos); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd("endmacro")
}

func (p *parser) parseCallBlock(openPos Pos) (node, error) {
	n := &callBlockNode{pos: openPos}
	var err error
	if p.isOp("(") {
		if n.params, n.defaults, err = p.parseParams(); err != nil {
			return nil, err
		}
	}
	e, err := p.parseExpr()
	if err != nil {
		return nil, err
	}
	c, ok := e.(*callExpr)
	if !ok {
		return nil, p.errAt(e.position(), "expected a macro call after 'call'")
	}
	n.call = c
	if err := p.expectBlockEnd("call"); err != nil {
		return nil, err
	}
	if n.body, _, err = p.parseBody("call", openPos); err != nil {
		return nil, err
	}
	return n, p.expectBlockEnd("endcall")
}

// parseFilterChain parses "name(args) | name ..." (after the first "|" when
// obj is nil and the chain starts a filter block).
func (p *parser) parseFilterChain(obj expr) ([]*filterExpr, error) {
	var out []*filterExpr
	if p.isOp("|") {
		p.next()
	}
	for {
		f, err := p.parseFilter(obj)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
		if !p.isOp("|") {
			return out, nil
		}
		p.next()
	}
}

func (p *parser) parseFilter(obj expr) (*filterExpr, error) {
	t, err := p.expectKind(tName, "a filter name")
	if err != nil {
		return nil, err
	}
	if _, ok := filters[t.val]; !ok {
		return nil, p.errAt(t.pos, "unknown filter '%s'", t.val)
	}
	f := &filterExpr{pos: t.pos, obj: obj, name: t.val}
	if p.isOp("(") {
		f.args, f.kwName, f.kwVals, err = p.parseCallArgs()
		if err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (p *parser) parseCallArgs() ([]expr, []string, []expr, error) {
	if _, err := p.expectOp("("); err != nil {
		return nil, nil, nil, err
	}
	var args, kwVals []expr
	var kwNames []string
	for !p.isOp(")") {
		if p.peek().kind == tName && p.peekAt(1).kind == tOp && p.peekAt(1).val == "=" {
			name := p.next()
			p.next()
			v, err := p.parseExpr()
			if err != nil {
				return nil, nil, nil, err
			}
			for _, k := range kwNames {
				if k == name.val {
					return nil, nil, nil, p.errAt(name.pos, "keyword argument '%s' repeated", name.val)
				}
			}
			kwNames = append(kwNames, name.val)
			kwVals = append(kwVals, v)
		} else {
			if p.isOp("*") || p.isOp("**") {
				return nil, nil, nil, p.errAt(p.peek().pos, "argument unpacking with '%s' is not supported", p.peek().val)
			}
			v, err := p.parseExpr()
			if err != nil {
				return nil, nil, nil, err
			}
			if len(kwNames) > 0 {
				return nil, nil, nil, p.errAt(v.position(), "positional argument follows keyword argument")
			}
			args = append(args, v)
		}
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if _, err := p.expectOp(")"); err != nil {
		return nil, nil, nil, err
	}
	return args, kwNames, kwVals, nil
}

// parseTupleOrExpr parses an expression or an unparenthesised tuple (a, b).
func (p *parser) parseTupleOrExpr() (expr, error) {
	e, err := p.parseExpr()
	if err != nil || !p.isOp(",") {
		return e, err
	}
	items := []expr{e}
	for p.isOp(",") {
		p.next()
		if t := p.peek(); t.kind == tBlockEnd || t.kind == tVarEnd {
			break
		}
		x, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		items = append(items, x)
	}
	return &listExpr{pos: e.position(), items: items}, nil
}

func (p *parser) parseExpr() (expr, error) {
	t := p.peek()
	if err := p.enter(t.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.isName("if") {
		pos := p.next().pos
		cond, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		c := &condExpr{pos: pos, cond: cond, yes: e}
		if p.isName("else") {
			p.next()
			if c.no, err = p.parseExpr(); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	return e, nil
}

func (p *parser) parseOr() (expr, error) {
	l, err := p.parseAnd()
	for err == nil && p.isName("or") {
		pos := p.next().pos
		var r expr
		if r, err = p.parseAnd(); err == nil {
			l = &binExpr{pos: pos, op: "or", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseAnd() (expr, error) {
	l, err := p.parseNot()
	for err == nil && p.isName("and") {
		pos := p.next().pos
		var r expr
		if r, err = p.parseNot(); err == nil {
			l = &binExpr{pos: pos, op: "and", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseNot() (expr, error) {
	if p.isName("not") {
		t := p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		defer p.leave()
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{pos: t.pos, op: "not", x: x}, nil
	}
	return p.parseCompare()
}

func (p *parser) parseCompare() (expr, error) {
	l, err := p.parseMath1()
	if err != nil {
		return nil, err
	}
	var c *compareExpr
	for {
		t := p.peek()
		op := ""
		switch {
		case t.kind == tOp && (t.val == "==" || t.val == "!=" || t.val == "<" || t.val == ">" || t.val == "<=" || t.val == ">="):
			op = t.val
			p.next()
		case p.isName("in"):
			op = "in"
			p.next()
		case p.isName("not") && p.peekAt(1).kind == tName && p.peekAt(1).val == "in":
			op = "not in"
			p.next()
			p.next()
		}
		if op == "" {
			break
		}
		r, err := p.parseMath1()
		if err != nil {
			return nil, err
		}
		if c == nil {
			c = &compareExpr{pos: t.pos, l: l}
		}
		c.ops = append(c.ops, op)
		c.rest = append(c.rest, r)
	}
	if c == nil {
		return l, nil
	}
	return c, nil
}

func (p *parser) parseMath1() (expr, error) {
	l, err := p.parseConcat()
	for err == nil && (p.isOp("+") || p.isOp("-")) {
		t := p.next()
		var r expr
		if r, err = p.parseConcat(); err == nil {
			l = &binExpr{pos: t.pos, op: t.val, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseConcat() (expr, error) {
	l, err := p.parseMath2()
	for err == nil && p.isOp("~") {
		t := p.next()
		var r expr
		if r, err = p.parseMath2(); err == nil {
			l = &binExpr{pos: t.pos, op: "~", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseMath2() (expr, error) {
	l, err := p.parsePow()
	for err == nil && (p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%")) {
		t := p.next()
		var r expr
		if r, err = p.parsePow(); err == nil {
			l = &binExpr{pos: t.pos, op: t.val, l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parsePow() (expr, error) {
	l, err := p.parseUnary(true)
	for err == nil && p.isOp("**") {
		t := p.next()
		var r expr
		if r, err = p.parseUnary(true); err == nil {
			l = &binExpr{pos: t.pos, op: "**", l: l, r: r}
		}
	}
	return l, err
}

func (p *parser) parseUnary(withFilter bool) (expr, error) {
	t := p.peek()
	if err := p.enter(t.pos); err != nil {
		return nil, err
	}
	defer p.leave()
	var e expr
	var err error
	if t.kind == tOp && (t.val == "-" || t.val == "+") {
		p.next()
		x, err := p.parseUnary(false)
		if err != nil {
			return nil, err
		}
		e = &unaryExpr{pos: t.pos, op: t.val, x: x}
	} else {
		if e, err = p.parsePrimary(); err != nil {
			return nil, err
		}
	}
	if e, err = p.parsePostfix(e); err != nil {
		return nil, err
	}
	if withFilter {
		return p.parseFilterExpr(e)
	}
	return e, nil
}

func (p *parser) parseFilterExpr(e expr) (expr, error) {
	for {
		switch {
		case p.isOp("|"):
			p.next()
			f, err := p.parseFilter(e)
			if err != nil {
				return nil, err
			}
			e = f
		case p.isName("is"):
			p.next()
			te := &testExpr{obj: e}
			if p.isName("not") {
				p.next()
				te.negate = true
			}
			t := p.peek()
			if t.kind != tName {
				return nil, p.errAt(t.pos, "expected a test name after 'is', got %s", t.describe())
			}
			p.next()
			te.pos, te.name = t.pos, t.val
			spec, ok := tests[t.val]
			if !ok {
				return nil, p.errAt(t.pos, "unknown test '%s'", t.val)
			}
			if p.isOp("(") {
				args, kwn, _, err := p.parseCallArgs()
				if err != nil {
					return nil, err
				}
				if len(kwn) > 0 {
					return nil, p.errAt(t.pos, "test '%s' takes no keyword arguments", t.val)
				}
				te.args = args
			} else if spec.args > 0 {
				nt := p.peek()
				if nt.kind == tName || nt.kind == tString || nt.kind == tInt || nt.kind == tFloat || (nt.kind == tOp && (nt.val == "(" || nt.val == "[" || nt.val == "{" || nt.val == "-")) {
					a, err := p.parseUnary(false)
					if err != nil {
						return nil, err
					}
					te.args = []expr{a}
				}
			}
			e = te
		case p.isOp("("):
			var err error
			if e, err = p.parsePostfix(e); err != nil {
				return nil, err
			}
		default:
			return e, nil
		}
	}
}

func (p *parser) parsePostfix(e expr) (expr, error) {
	for {
		t := p.peek()
		if t.kind != tOp {
			return e, nil
		}
		switch t.val {
		case ".":
			p.next()
			a := p.next()
			switch a.kind {
			case tName:
				e = &attrExpr{pos: a.pos, obj: e, name: a.val}
			case tInt:
				n, _ := strconv.ParseInt(a.val, 10, 64)
				e = &itemExpr{pos: a.pos, obj: e, key: &literal{pos: a.pos, val: n}}
			default:
				return nil, p.errAt(a.pos, "expected an attribute name after '.', got %s", a.describe())
			}
		case "[":
			p.next()
			s, err := p.parseSubscript(e, t.pos)
			if err != nil {
				return nil, err
			}
			if _, err := p.expectOp("]"); err != nil {
				return nil, err
			}
			e = s
		case "(":
			args, kwn, kwv, err := p.parseCallArgs()
			if err != nil {
				return nil, err
			}
			e = &callExpr{pos: e.position(), fn: e, args: args, kwName: kwn, kwVals: kwv}
		default:
			return e, nil
		}
	}
}

func (p *parser) parseSubscript(obj expr, pos Pos) (expr, error) {
	var parts [3]expr
	n := 0
	isSlice := false
	for {
		if p.isOp(":") {
			p.next()
			isSlice = true
			n++
			if n > 2 {
				return nil, p.errAt(p.peek().pos, "too many ':' in slice")
			}
			continue
		}
		if p.isOp("]") {
			break
		}
		if parts[n] != nil {
			t := p.peek()
			return nil, p.errAt(t.pos, "expected ':' or ']' in subscript, got %s", t.describe())
		}
		e, err := p.parseExpr()
		if err != nil {
			return nil, err
		}
		parts[n] = e
	}
	if !isSlice {
		if parts[0] == nil {
			return nil, p.errAt(p.peek().pos, "expected an index inside '[]'")
		}
		return &itemExpr{pos: pos, obj: obj, key: parts[0]}, nil
	}
	return &sliceExpr{pos: pos, obj: obj, start: parts[0], stop: parts[1], step: parts[2]}, nil
}

func (p *parser) parsePrimary() (expr, error) {
	t := p.next()
	switch t.kind {
	case tName:
		switch t.val {
		case "true", "True":
			return &literal{pos: t.pos, val: true}, nil
		case "false", "False":
			return &literal{pos: t.pos, val: false}, nil
		case "none", "None":
			return &literal{pos: t.pos, val: nil}, nil
		}
		return &nameExpr{pos: t.pos, name: t.val}, nil
	case tString:
		s := t.val
		for p.peek().kind == tString {
			s += p.next().val
		}
		return &literal{pos: t.pos, val: s}, nil
	case tInt:
		n, err := strconv.ParseInt(t.val, 10, 64)
		if err != nil {
			f, _ := strconv.ParseFloat(t.val, 64)
			return &literal{pos: t.pos, val: f}, nil
		}
		return &literal{pos: t.pos, val: n}, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.val, 64)
		if err != nil {
			return nil, p.errAt(t.pos, "invalid number %s", t.val)
		}
		return &literal{pos: t.pos, val: f}, nil
	case tOp:
		switch t.val {
		case "(":
			if p.isOp(")") {
				p.next()
				return &listExpr{pos: t.pos}, nil
			}
			e, err := p.parseExpr()
			if err != nil {
				return nil, err
			}
			if p.isOp(",") {
				items := []expr{e}
				for p.isOp(",") {
					p.next()
					if p.isOp(")") {
						break
					}
					x, err := p.parseExpr()
					if err != nil {
						return nil, err
					}
					items = append(items, x)
				}
				e = &listExpr{pos: t.pos, items: items}
			}
			if _, err := p.expectOp(")"); err != nil {
				return nil, err
			}
			return e, nil
		case "[":
			l := &listExpr{pos: t.pos}
			for !p.isOp("]") {
				e, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				l.items = append(l.items, e)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			if _, err := p.expectOp("]"); err != nil {
				return nil, err
			}
			return l, nil
		case "{":
			d := &dictExpr{pos: t.pos}
			for !p.isOp("}") {
				k, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				if _, err := p.expectOp(":"); err != nil {
					return nil, err
				}
				v, err := p.parseExpr()
				if err != nil {
					return nil, err
				}
				d.keys = append(d.keys, k)
				d.vals = append(d.vals, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			if _, err := p.expectOp("}"); err != nil {
				return nil, err
			}
			return d, nil
		}
	}
	return nil, p.errAt(t.pos, "expected an expression, got %s", t.describe())
}
