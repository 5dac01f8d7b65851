package jinja

// Statement nodes.
type (
	node interface{}

	textNode   struct{ text string }
	outputNode struct {
		pos  Pos
		expr expr
	}
	ifNode struct {
		pos    Pos
		conds  []expr   // if, elif, elif...
		bodies [][]node // one per cond
		els    []node
	}
	forNode struct {
		pos     Pos
		targets []string // one name, or several for tuple unpacking
		iter    expr
		cond    expr // optional "if" filter
		body    []node
		els     []node
	}
	setNode struct {
		pos     Pos
		targets []string // names, or a single name when attr != ""
		attr    string   // for {% set ns.attr = ... %}
		value   expr     // nil for a block set
		body    []node
		filters []*filterExpr // block set filters: {% set x | trim %}
	}
	macroNode struct {
		pos      Pos
		name     string
		params   []string
		defaults []expr // nil where no default
		body     []node
	}
	callBlockNode struct {
		pos      Pos
		call     *callExpr
		params   []string
		defaults []expr
		body     []node
	}
	filterBlockNode struct {
		pos     Pos
		filters []*filterExpr
		body    []node
	}
	breakNode    struct{ pos Pos }
	continueNode struct{ pos Pos }
)

// Expression nodes.
type (
	expr interface{ position() Pos }

	literal struct {
		pos Pos
		val any
	}
	nameExpr struct {
		pos  Pos
		name string
	}
	listExpr struct {
		pos   Pos
		items []expr
	}
	dictExpr struct {
		pos  Pos
		keys []expr
		vals []expr
	}
	attrExpr struct {
		pos  Pos
		obj  expr
		name string
	}
	itemExpr struct {
		pos Pos
		obj expr
		key expr
	}
	sliceExpr struct {
		pos               Pos
		obj               expr
		start, stop, step expr // nil when omitted
	}
	callExpr struct {
		pos    Pos
		fn     expr
		args   []expr
		kwName []string
		kwVals []expr
	}
	filterExpr struct {
		pos    Pos
		obj    expr // nil inside filter blocks / block sets
		name   string
		args   []expr
		kwName []string
		kwVals []expr
	}
	testExpr struct {
		pos    Pos
		obj    expr
		name   string
		negate bool
		args   []expr
	}
	unaryExpr struct {
		pos Pos
		op  string // "not", "-", "+"
		x   expr
	}
	binExpr struct {
		pos  Pos
		op   string
		l, r expr
	}
	// compareExpr is a (possibly chained) comparison: a < b <= c.
	compareExpr struct {
		pos  Pos
		l    expr
		ops  []string
		rest []expr
	}
	condExpr struct {
		pos           Pos
		cond, yes, no expr // no may be nil: undefined
	}
)

func (e *literal) position() Pos     { return e.pos }
func (e *nameExpr) position() Pos    { return e.pos }
func (e *listExpr) position() Pos    { return e.pos }
func (e *dictExpr) position() Pos    { return e.pos }
func (e *attrExpr) position() Pos    { return e.pos }
func (e *itemExpr) position() Pos    { return e.pos }
func (e *sliceExpr) position() Pos   { return e.pos }
func (e *callExpr) position() Pos    { return e.pos }
func (e *filterExpr) position() Pos  { return e.pos }
func (e *testExpr) position() Pos    { return e.pos }
func (e *unaryExpr) position() Pos   { return e.pos }
func (e *binExpr) position() Pos     { return e.pos }
func (e *compareExpr) position() Pos { return e.pos }
func (e *condExpr) position() Pos    { return e.pos }
