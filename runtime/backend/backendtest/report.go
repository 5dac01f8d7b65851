package backendtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Status is a case's outcome.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	Skip Status = "SKIP" // the backend said "not supported"; never counted as a pass
)

// Num is a float64 that survives JSON when it is NaN or ±Inf (written as a string).
type Num float64

func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return json.Marshal(f)
}

func (n *Num) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		*n = Num(f)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	f, err := strconv.ParseFloat(s, 64)
	*n = Num(f)
	return err
}

// Result is one case's outcome.
type Result struct {
	Op       string `json:"op"`
	Name     string `json:"name"`
	DType    string `json:"dtype"`              // the activation dtype asked for
	Class    string `json:"class,omitempty"`    // precision class the tolerance came from
	Operands string `json:"operands,omitempty"` // dtypes the backend used, e.g. "kv=f16 out=f16 q=f16"
	Status   Status `json:"status"`
	NMSE     Num    `json:"nmse"`
	Tol      Num    `json:"tol"`
	Detail   string `json:"detail,omitempty"` // why it failed or was skipped
	Kernel   string `json:"kernel,omitempty"` // matmul: the kernel the backend ran (Kerneler)
	Seconds  Num    `json:"seconds"`          // wall time of the case, both backends
	Diags    []Diag `json:"diags,omitempty"`  // failing outputs: where and how they differ
}

// fromErr sets a failure, or a skip when err says "not supported".
func (r *Result) fromErr(what string, err error) {
	r.Status = Fail
	if IsNotSupported(err) {
		r.Status = Skip
	}
	if what != "" {
		r.Detail = what + ": " + err.Error()
	} else {
		r.Detail = err.Error()
	}
}

// Line is the result as one line of text.
func (r Result) Line() string {
	switch r.Status {
	case Skip:
		return fmt.Sprintf("SKIP %s (%s)", r.Name, r.Detail)
	case Pass:
		return fmt.Sprintf("PASS %s nmse=%.3g tol=%.3g [%s]", r.Name, float64(r.NMSE), float64(r.Tol), r.Operands)
	}
	if r.Class == "" { // failed before anything was compared
		return fmt.Sprintf("FAIL %s: %s", r.Name, r.Detail)
	}
	line := fmt.Sprintf("FAIL %s nmse=%.3g tol=%.3g [%s]: %s", r.Name, float64(r.NMSE), float64(r.Tol), r.Operands, r.Detail)
	for _, d := range r.Diags {
		line += fmt.Sprintf("\n    %s: %d of %d elements over %.3g (%d non-finite); max abs %.3g at (%d,%d), max rel %.3g at (%d,%d); kernel %q tile %dx%d",
			d.Output, d.Over, d.Rows*d.Cols, float64(d.ElemTol), d.NonFinite, float64(d.MaxAbs), d.MaxAbsRow, d.MaxAbsCol,
			float64(d.MaxRel), d.MaxRelRow, d.MaxRelCol, d.Kernel, d.TileRows, d.TileCols)
	}
	return line
}

// Counts tallies outcomes.
type Counts struct {
	Pass int `json:"pass"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

func (c *Counts) add(s Status) {
	switch s {
	case Pass:
		c.Pass++
	case Fail:
		c.Fail++
	default:
		c.Skip++
	}
}

// Report is a Run's outcome.
type Report struct {
	Ref     string            `json:"ref"`
	Backend string            `json:"backend"`
	Large   bool              `json:"large"`
	Seed    uint64            `json:"seed"`
	Seconds float64           `json:"seconds"`
	Total   Counts            `json:"total"`
	ByOp    map[string]Counts `json:"by_op"`
	Tols    map[string]Tol    `json:"tolerances"`
	Results []Result          `json:"results"`
}

func (r *Report) summarize() {
	r.Total = Counts{}
	r.ByOp = map[string]Counts{}
	for _, x := range r.Results {
		r.Total.add(x.Status)
		c := r.ByOp[x.Op]
		c.add(x.Status)
		r.ByOp[x.Op] = c
	}
	r.Tols = Tolerances()
}

// Failed reports whether any case failed.
func (r Report) Failed() bool { return r.Total.Fail > 0 }

// Failures returns the failed results.
func (r Report) Failures() []Result {
	var out []Result
	for _, x := range r.Results {
		if x.Status == Fail {
			out = append(out, x)
		}
	}
	return out
}

// Summary is one line: counts overall and per op.
func (r Report) Summary() string {
	var ops []string
	for _, op := range Ops {
		if c, ok := r.ByOp[op]; ok {
			ops = append(ops, fmt.Sprintf("%s %d/%d/%d", op, c.Pass, c.Fail, c.Skip))
		}
	}
	return fmt.Sprintf("%s vs %s: %d pass, %d fail, %d skip (%s pass/fail/skip)", r.Backend, r.Ref, r.Total.Pass, r.Total.Fail, r.Total.Skip, strings.Join(ops, ", "))
}

// Text is one line per case, then the summary.
func (r Report) Text() string {
	var b strings.Builder
	for _, x := range r.Results {
		b.WriteString(x.Line() + "\n")
	}
	return b.String() + r.Summary() + "\n"
}

// WriteJSON writes the report as indented JSON (the form gpu-check.json embeds).
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
