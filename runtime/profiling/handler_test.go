package profiling

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/vireo-ai/vireo/runtime/model"
)

// TestHandler serves /debug/vireo/profile while decode passes run: a window of a
// fraction of a second comes back as a pprof profile whose every op has the call
// count of the passes it saw (layer ops once per layer), a second request during a
// window gets 409, and bad parameters get 400.
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

	busy := make(chan int, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // inside the first window
		code, _ := get("seconds=0.1")
		busy <- code
	}()
	code, body := get("seconds=0.5")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	if c := <-busy; c != http.StatusConflict {
		t.Errorf("a request during a window: status %d, want 409", c)
	}
	prof, err := profile.ParseData(body)
	if err != nil {
		t.Fatal(err)
	}
	if err := prof.CheckValid(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]int64{}
	for _, s := range prof.Sample {
		calls[s.Location[0].Line[0].Function.Name] += s.Value[1]
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

	code, body = get("seconds=0.2&format=text&top=3")
	if code != http.StatusOK || !strings.Contains(string(body), "Op profile (cpu backend") || !strings.Contains(string(body), "share of step time") {
		t.Errorf("format=text: status %d:\n%s", code, body)
	}
	code, body = get("seconds=0.2&format=json")
	if code != http.StatusOK || !strings.Contains(string(body), `"summary"`) || !strings.Contains(string(body), `"phase":"decode"`) {
		t.Errorf("format=json: status %d:\n%.400s", code, body)
	}
}
