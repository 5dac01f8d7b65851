package profiling

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/pprof/profile"

	"github.com/vireo-ai/vireo/runtime/model"
)

// TestHandler serves /debug/vireo/profile while decode passes run: a window of a
// fraction of a second comes back as a pprof profile whose every op has the call
// count of the passes it saw (layer ops once per layer), a request during an open
// window gets 409, and bad parameters get 400. No check depends on timing: the 409 is
// asked while the test holds a window open, and a window that saw no pass (a loaded
// machine can starve the stepping goroutine) is asked again, up to ten times.
func TestHandler(t *testing.T) {
	m := newTiny(t)
	p := New(Options{Backend: "cpu", NVTX: new(bool)})
	d := newDecoder(t, m)
	lane, err := NewLane(p, m.Backend(), d.ws.Stream(), LaneOptions{Model: "tiny", Layers: m.Config.Layers})
	if err != nil {
		t.Fatal(err)
	}
	defer lane.Close()
	d.ws.SetTracer(lane)
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			d.step(t)
		}
	}()
	defer func() { stop.Store(true); wg.Wait() }()

	srv := httptest.NewServer(Handler(p))
	defer srv.Close()
	get := func(query string) (int, []byte) {
		resp, err := http.Get(srv.URL + "/debug/vireo/profile?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	for _, q := range []string{"seconds=0", "seconds=-1", "seconds=abc", "seconds=3601", "seconds=NaN", "format=xml", "top=-1"} {
		if code, body := get(q); code != http.StatusBadRequest {
			t.Errorf("%s: status %d (%s), want 400", q, code, body)
		}
	}

	// A request while a window is open gets 409: the test holds the window itself, so
	// the check does not depend on when a request's window begins.
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if code, body := get("seconds=0.1"); code != http.StatusConflict {
		t.Errorf("a request during a window: status %d (%s), want 409", code, body)
	}
	p.Stop()

	// A window of half a second normally holds hundreds of passes; on a loaded machine
	// the stepping goroutine can be descheduled for all of it, so an empty window is
	// asked again (the property under test is the counts, not the timing).
	var calls map[string]int64
	for try := 0; try < 10; try++ {
		code, body := get("seconds=0.5")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		prof, err := profile.ParseData(body)
		if err != nil {
			t.Fatal(err)
		}
		if err := prof.CheckValid(); err != nil {
			t.Fatal(err)
		}
		calls = map[string]int64{}
		for _, s := range prof.Sample {
			calls[s.Location[0].Line[0].Function.Name] += s.Value[1]
		}
		if calls[model.OpEmbed.String()] != 0 {
			break
		}
	}
	passes := calls[model.OpEmbed.String()]
	if passes == 0 {
		t.Fatalf("no pass in the window: %v", calls)
	}
	for op := model.Op(0); op < model.NumOps; op++ {
		n := passes
		if op.InLayer() {
			n *= int64(m.Config.Layers)
		}
		if calls[op.String()] != n {
			t.Errorf("%s: %d calls, want %d (%d passes)", op, calls[op.String()], n, passes)
		}
	}

	// The text and JSON forms, each asked again while its window saw no decode pass.
	formats := []struct{ query, want1, want2 string }{
		{"seconds=0.2&format=text&top=3", "Op profile (cpu backend", "share of step time"},
		{"seconds=0.2&format=json", `"summary"`, `"phase":"decode"`},
	}
	for _, f := range formats {
		var code int
		var body []byte
		for try := 0; try < 10; try++ {
			code, body = get(f.query)
			if code != http.StatusOK || strings.Contains(string(body), f.want2) {
				break
			}
		}
		if code != http.StatusOK || !strings.Contains(string(body), f.want1) || !strings.Contains(string(body), f.want2) {
			t.Errorf("%s: status %d:\n%.400s", f.query, code, body)
		}
	}
}
