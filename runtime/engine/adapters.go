package engine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/vireo-ai/vireo/runtime/lora"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/scheduler"
)

// LoRAOptions turn on LoRA adapters (vLLM's --enable-lora and its flags). The zero
// value is off.
//
// Adapters live at three levels. Registered: LoadAdapter read the files once, checked
// them against the model and gave the adapter a name requests use. Resident: its
// matrices are in host memory, at most MaxCPULoRAs adapters, least recently used
// dropped first — but never one a request in flight uses; a request for an adapter
// that is not resident waits while its files are read again on a goroutine of its own
// (never the step loop), and requests for other adapters run meanwhile. In a slot: its
// matrices are in the device's adapter pool (model.LoRASet) of MaxLoRAs slots, which
// every step reads; the scheduler runs at most MaxLoRAs distinct adapters at once, a
// slot is taken by the first step that runs an adapter, and the least recently used
// slot no running request of that step needs is reused.
type LoRAOptions struct {
	MaxLoRAs    int // adapter slots: distinct adapters in one step (vLLM --max-loras); 0: LoRA off
	MaxRank     int // the largest rank an adapter may have (--max-lora-rank; default 16)
	MaxCPULoRAs int // adapters kept in host memory (--max-cpu-loras; default MaxLoRAs, at least MaxLoRAs)
}

// MaxLoRARank bounds LoRAOptions.MaxRank (vLLM's largest is 512).
const MaxLoRARank = 512

// AdapterInfo describes a registered adapter.
type AdapterInfo struct {
	Name     string
	Path     string // as given to LoadAdapter
	Format   string // "peft" or "gguf"
	Rank     int
	Alpha    float64
	RSLoRA   bool
	Targets  []string // the adapted modules (q_proj … down_proj)
	Bytes    int64    // host memory of its matrices
	Resident bool     // its matrices are in host memory now
	Loaded   time.Time
}

// Errors of the adapter API.
var (
	ErrLoRADisabled  = errors.New("engine: LoRA adapters are not enabled")
	ErrAdapterExists = errors.New("engine: an adapter of that name is already loaded")
	ErrNoAdapter     = errors.New("engine: no adapter of that name is loaded")
)

// loraModel is a Model that runs adapters (model.Model).
type loraModel interface {
	NewLoRASet(slots, maxRank int) (*model.LoRASet, error)
	LoadLoRA(set *model.LoRASet, slot int, a *lora.Adapter) error
}

// adapterEntry is one registered adapter (one LoadAdapter: a reload under the same
// name is another entry, with its own id and prefix-cache salt).
type adapterEntry struct {
	name string
	src  lora.Source
	id   uint64 // the scheduler's adapter id
	salt uint64 // the prefix-cache root of its requests
	sum  uint64 // lora.Adapter.Sum of the files as first read
	info AdapterInfo

	// Guarded by adapters.mu.
	host    *lora.Adapter // nil unless resident
	pins    int           // submissions holding it: from Submit to their last event
	loading bool          // a goroutine is reading it
	queued  bool          // in adapters.waiting: its read waits for room among the resident
	pending []*submission // submitted while not resident; they enter the inbox once read
	pendN   int           // their completions
	used    uint64        // host LRU stamp
	removed bool          // unloaded: no new request may name it

	slot int // its slot, -1 if none (the loop's)
}

// adapters is the engine's adapter registry and pools.
type adapters struct {
	e   *Engine
	opt LoRAOptions
	m   loraModel

	mu       sync.Mutex
	byName   map[string]*adapterEntry
	byID     map[uint64]*adapterEntry // registered or still held by requests
	nextID   uint64
	clock    uint64
	resident int             // entries with host (or a read in flight)
	waiting  []*adapterEntry // reads waiting for room, in order
	pendN    int             // completions of pending submissions, all entries
	// read reads an adapter's files (tests replace it to hold a read back).
	read func(src lora.Source) (*lora.Adapter, error)

	// The loop's: the device slots.
	set      *model.LoRASet
	owner    []*adapterEntry
	slotUsed []uint64
	step     uint64
	need     []*adapterEntry // scratch of bind
}

// setupLoRA checks the LoRA options against the model and allocates the device slots
// (before the KV cache is sized, so it is sized from what they leave).
func setupLoRA(m Model, opt *Options) (*adapters, error) {
	o := &opt.LoRA
	if o.MaxLoRAs <= 0 {
		if o.MaxLoRAs < 0 || o.MaxRank != 0 || o.MaxCPULoRAs != 0 {
			return nil, errors.New("engine: LoRA options without MaxLoRAs (the adapter slots) > 0")
		}
		return nil, nil
	}
	if o.MaxRank == 0 {
		o.MaxRank = 16
	}
	if o.MaxCPULoRAs == 0 {
		o.MaxCPULoRAs = o.MaxLoRAs
	}
	switch {
	case o.MaxRank < 0 || o.MaxRank > MaxLoRARank:
		return nil, fmt.Errorf("engine: max LoRA rank %d outside [1, %d]", o.MaxRank, MaxLoRARank)
	case o.MaxCPULoRAs < o.MaxLoRAs:
		return nil, fmt.Errorf("engine: max CPU LoRAs %d is below max LoRAs %d: every adapter in a slot is also kept in host memory", o.MaxCPULoRAs, o.MaxLoRAs)
	}
	lm, ok := m.(loraModel)
	if !ok {
		return nil, fmt.Errorf("engine: this model (%T) does not run LoRA adapters", m)
	}
	set, err := lm.NewLoRASet(o.MaxLoRAs, o.MaxRank)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	cfg := *m.Spec()
	ad := &adapters{opt: *o, m: lm, set: set, byName: map[string]*adapterEntry{}, byID: map[uint64]*adapterEntry{},
		owner: make([]*adapterEntry, o.MaxLoRAs), slotUsed: make([]uint64, o.MaxLoRAs)}
	ad.read = func(src lora.Source) (*lora.Adapter, error) { return lora.LoadFrom(src, &cfg, o.MaxRank) }
	return ad, nil
}

// validAdapterName refuses names a client could not send back or a log could not show.
func validAdapterName(name string) error {
	switch {
	case name == "":
		return errors.New("an adapter needs a name")
	case len(name) > 256:
		return fmt.Errorf("adapter name of %d bytes (at most 256)", len(name))
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return fmt.Errorf("adapter name %q holds control characters or invalid UTF-8", name)
	}
	return nil
}

// LoadAdapter reads the adapter at src (a PEFT directory or a GGUF adapter file),
// checks it against the model and the maximum rank, and registers it as name, for
// requests to run with (Request.Adapter). The files are read on the caller's
// goroutine; the step loop is never held. A name already registered is refused
// (ErrAdapterExists) unless replace is set: then the new adapter takes the name and
// requests already running with the old one finish with it. Nothing of an adapter
// that fails to load stays.
func (e *Engine) LoadAdapter(name string, src lora.Source, replace bool) (AdapterInfo, error) {
	ad := e.ad
	if ad == nil {
		return AdapterInfo{}, ErrLoRADisabled
	}
	if err := validAdapterName(name); err != nil {
		return AdapterInfo{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if e.closed.Load() {
		return AdapterInfo{}, ErrClosed
	}
	ad.mu.Lock()
	_, exists := ad.byName[name]
	ad.mu.Unlock()
	if exists && !replace {
		return AdapterInfo{}, fmt.Errorf("%w: %q", ErrAdapterExists, name)
	}
	a, err := ad.read(src)
	if err != nil {
		return AdapterInfo{}, err
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	old := ad.byName[name]
	if old != nil && !replace {
		return AdapterInfo{}, fmt.Errorf("%w: %q", ErrAdapterExists, name)
	}
	ad.nextID++
	x := ad.nextID * 0x9e3779b97f4a7c15
	ent := &adapterEntry{name: name, src: src, id: ad.nextID, salt: x ^ x>>29 | 1, sum: a.Sum(), slot: -1}
	var targets []string
	for _, t := range a.Targets() {
		targets = append(targets, t.String())
	}
	ent.info = AdapterInfo{Name: name, Path: src.Path, Format: a.Format, Rank: a.Rank, Alpha: a.Alpha, RSLoRA: a.RSLoRA,
		Targets: targets, Bytes: a.Bytes(), Loaded: time.Now()}
	if old != nil {
		ad.unregister(old)
	}
	ad.byName[name] = ent
	ad.byID[ent.id] = ent
	if ad.makeRoom() {
		ent.host = a
		ad.resident++
	}
	ad.clock++
	ent.used = ad.clock
	return ent.infoLocked(), nil
}

// UnloadAdapter unregisters an adapter: new requests may no longer name it; requests
// already submitted finish with it, and its memory is freed after them.
func (e *Engine) UnloadAdapter(name string) error {
	ad := e.ad
	if ad == nil {
		return ErrLoRADisabled
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ent := ad.byName[name]
	if ent == nil {
		return fmt.Errorf("%w: %q", ErrNoAdapter, name)
	}
	ad.unregister(ent)
	return nil
}

// Adapters lists the registered adapters by name (nil when LoRA is off).
func (e *Engine) Adapters() []AdapterInfo {
	ad := e.ad
	if ad == nil {
		return nil
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	out := make([]AdapterInfo, 0, len(ad.byName))
	for _, ent := range ad.byName {
		out = append(out, ent.infoLocked())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Adapter describes the adapter registered as name.
func (e *Engine) Adapter(name string) (AdapterInfo, bool) {
	ad := e.ad
	if ad == nil {
		return AdapterInfo{}, false
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ent := ad.byName[name]
	if ent == nil {
		return AdapterInfo{}, false
	}
	return ent.infoLocked(), true
}

func (ent *adapterEntry) infoLocked() AdapterInfo {
	info := ent.info
	info.Resident = ent.host != nil
	info.Targets = slices.Clone(info.Targets)
	return info
}

// unregister takes ent's name away (mu held); its memory goes with its last request.
func (ad *adapters) unregister(ent *adapterEntry) {
	if ad.byName[ent.name] == ent {
		delete(ad.byName, ent.name)
	}
	ent.removed = true
	if ent.pins == 0 {
		ad.forget(ent)
	}
}

// forget drops an unregistered adapter nothing holds (mu held).
func (ad *adapters) forget(ent *adapterEntry) {
	delete(ad.byID, ent.id)
	if ent.host != nil {
		ent.host = nil
		ad.resident--
		ad.startWaiting()
	}
}

// makeRoom makes room for one more resident adapter, dropping the least recently used
// one no request holds if need be (mu held). false: every resident adapter is held.
func (ad *adapters) makeRoom() bool {
	if ad.resident < ad.opt.MaxCPULoRAs {
		return true
	}
	var lru *adapterEntry
	for _, ent := range ad.byID {
		if ent.host != nil && ent.pins == 0 && (lru == nil || ent.used < lru.used) {
			lru = ent
		}
	}
	if lru == nil {
		return false
	}
	lru.host = nil
	ad.resident--
	return true
}

// acquire pins the adapter named for a submission (Submit).
func (ad *adapters) acquire(name string) (*adapterEntry, error) {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ent := ad.byName[name]
	if ent == nil {
		return nil, fmt.Errorf("%w: adapter %q is not loaded (%w)", ErrInvalid, name, ErrNoAdapter)
	}
	ent.pins++
	ad.clock++
	ent.used = ad.clock
	return ent, nil
}

// release unpins an adapter a submission held.
func (ad *adapters) release(ent *adapterEntry) {
	if ent == nil {
		return
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	ad.unpin(ent, 1)
}

func (ad *adapters) unpin(ent *adapterEntry, n int) {
	ent.pins -= n
	if ent.pins > 0 {
		return
	}
	if ent.removed {
		ad.forget(ent)
	}
	ad.startWaiting()
}

// hold decides, under inMu, what a submission for ent does: go to the inbox (true:
// the adapter is resident), or wait while it is read (false).
func (ad *adapters) hold(ent *adapterEntry, s *submission) bool {
	ad.mu.Lock()
	defer ad.mu.Unlock()
	if ent.host != nil {
		return true
	}
	ent.pending = append(ent.pending, s)
	ent.pendN += s.req.N
	ad.pendN += s.req.N
	if !ent.loading && !ent.queued {
		ent.queued = true
		ad.waiting = append(ad.waiting, ent)
		ad.startWaiting()
	}
	return false
}

// startWaiting starts the reads waiting for room, in order, while there is some (mu
// held).
func (ad *adapters) startWaiting() {
	for len(ad.waiting) > 0 {
		ent := ad.waiting[0]
		if ent.host == nil && !ad.makeRoom() {
			return
		}
		ad.waiting = ad.waiting[1:]
		ent.queued = false
		if ent.host != nil {
			go ad.e.admitPending(ad.takePending(ent), nil) // not under mu: admitPending takes inMu
			continue
		}
		ent.loading = true
		ad.resident++ // the room is held for it
		go ad.load(ent)
	}
}

// takePending takes ent's pending submissions (mu held).
func (ad *adapters) takePending(ent *adapterEntry) []*submission {
	p := ent.pending
	ad.pendN -= ent.pendN
	ent.pending, ent.pendN = nil, 0
	return p
}

// load reads ent's files again on its own goroutine and hands its pending
// submissions on: to the inbox, or an error.
func (ad *adapters) load(ent *adapterEntry) {
	a, err := ad.read(ent.src)
	if err == nil && a.Sum() != ent.sum {
		err = fmt.Errorf("adapter %q: the files at %s changed since it was loaded; load it again (load_inplace) to use them", ent.name, ent.src.Path)
	}
	ad.mu.Lock()
	ent.loading = false
	if err != nil {
		ad.resident--
	} else {
		ent.host = a
	}
	pend := ad.takePending(ent)
	if err != nil {
		ad.unpin(ent, len(pend))
	}
	ad.mu.Unlock()
	ad.e.admitPending(pend, err)
}

// failPending ends every submission waiting for an adapter (the engine is closing).
func (ad *adapters) failPending(err error) {
	ad.mu.Lock()
	var all []*submission
	for _, ent := range ad.byID {
		p := ad.takePending(ent)
		ad.unpin(ent, len(p))
		all = append(all, p...)
	}
	ad.mu.Unlock()
	for _, s := range all {
		for i := 0; i < s.req.N; i++ {
			s.out.push(Event{Index: i, Finish: FinishAbort, Err: err, Time: time.Now()})
		}
	}
}

// pendingCompletions counts the completions waiting for an adapter's read.
func (ad *adapters) pendingCompletions() int {
	if ad == nil {
		return 0
	}
	ad.mu.Lock()
	defer ad.mu.Unlock()
	return ad.pendN
}

// admitPending hands submissions whose adapter was read to the loop, or ends them with
// the read's error.
func (e *Engine) admitPending(subs []*submission, err error) {
	if len(subs) == 0 {
		return
	}
	if err != nil {
		for _, s := range subs {
			for i := 0; i < s.req.N; i++ {
				s.out.push(Event{Index: i, Finish: FinishError, Err: err, Time: time.Now()})
			}
		}
		return
	}
	e.inMu.Lock()
	if e.closed.Load() {
		e.inMu.Unlock()
		for _, s := range subs {
			e.ad.release(s.adapter)
			for i := 0; i < s.req.N; i++ {
				s.out.push(Event{Index: i, Finish: FinishAbort, Err: ErrClosed, Time: time.Now()})
			}
		}
		return
	}
	for _, s := range subs {
		e.inbox = append(e.inbox, s)
		e.inboxN += s.req.N
	}
	e.inMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// bind puts the adapters of a plan's requests into slots before the plan runs (loop):
// an adapter already in a slot keeps it; another takes a free slot, or the least
// recently used one whose adapter no request of this plan needs (the scheduler runs
// at most as many adapters as there are slots). A slot is rewritten only once the work
// in flight on every lane is done.
func (e *Engine) bindSlots(p *scheduler.Plan) error {
	ad := e.ad
	if ad == nil {
		return nil
	}
	ad.step++
	ad.need = ad.need[:0]
	note := func(r *scheduler.Request) {
		if c := e.live[r.ID()]; c != nil && c.adapter != nil && !slices.Contains(ad.need, c.adapter) {
			ad.need = append(ad.need, c.adapter)
		}
	}
	for _, it := range p.Decode {
		note(it.Req)
	}
	for _, g := range p.Prefill {
		for _, it := range g.Items {
			note(it.Req)
		}
	}
	synced := false
	for _, ent := range ad.need {
		if ent.slot >= 0 {
			ad.slotUsed[ent.slot] = ad.step
			continue
		}
		slot := slices.Index(ad.owner, nil)
		if slot < 0 {
			for s, o := range ad.owner {
				if !slices.Contains(ad.need, o) && (slot < 0 || ad.slotUsed[s] < ad.slotUsed[slot]) {
					slot = s
				}
			}
		}
		if slot < 0 {
			return fmt.Errorf("engine: no adapter slot free for %q: %d adapters in one step for %d slots", ent.name, len(ad.need), len(ad.owner))
		}
		if !synced {
			// Passes still queued may read the slot: wait for every lane first.
			if err := e.syncLanes(); err != nil {
				return err
			}
			synced = true
		}
		if o := ad.owner[slot]; o != nil {
			o.slot = -1
			ad.owner[slot] = nil
		}
		ad.mu.Lock()
		host := ent.host
		ad.mu.Unlock()
		if host == nil {
			return fmt.Errorf("engine: adapter %q is not in host memory", ent.name) // held entries stay resident
		}
		if err := ad.m.LoadLoRA(ad.set, slot, host); err != nil {
			return fmt.Errorf("engine: adapter %q into slot %d: %w", ent.name, slot, err)
		}
		ad.owner[slot], ent.slot, ad.slotUsed[slot] = ent, slot, ad.step
	}
	return nil
}

// syncLanes waits until every lane's queued work has run.
func (e *Engine) syncLanes() error {
	be := e.m.Backend()
	var errs []error
	errs = append(errs, be.Sync(e.decode.stream))
	for _, l := range e.lanes {
		errs = append(errs, be.Sync(l.stream))
	}
	return errors.Join(errs...)
}

// loraSlot is a completion's Seq.LoRA: its adapter's slot + 1, or 0.
func (c *completion) loraSlot() int {
	if c == nil || c.adapter == nil {
		return 0
	}
	return c.adapter.slot + 1
}

// LoRAStats are the adapter counts vLLM's vllm:lora_requests_info reports.
type LoRAStats struct {
	MaxLoRAs int
	Running  []string // adapters of running requests, by name
	Waiting  []string // adapters of requests waiting (queued, or for their adapter's read)
}

// loraStats fills LoRAStats from the scheduler and the pending reads (loop).
func (e *Engine) loraStats() *LoRAStats {
	ad := e.ad
	if ad == nil {
		return nil
	}
	run := e.sched.RunningAdapters(nil)
	wait := e.sched.WaitingAdapters(nil)
	for _, c := range e.deferred {
		if c.adapter != nil && !slices.Contains(wait, c.adapter.id) {
			wait = append(wait, c.adapter.id)
		}
	}
	st := &LoRAStats{MaxLoRAs: ad.opt.MaxLoRAs}
	ad.mu.Lock()
	for _, ent := range ad.byID {
		if len(ent.pending) > 0 && !slices.Contains(wait, ent.id) {
			wait = append(wait, ent.id)
		}
	}
	for _, id := range run {
		if ent := ad.byID[id]; ent != nil {
			st.Running = append(st.Running, ent.name)
		}
	}
	for _, id := range wait {
		if ent := ad.byID[id]; ent != nil && !slices.Contains(st.Waiting, ent.name) {
			st.Waiting = append(st.Waiting, ent.name)
		}
	}
	ad.mu.Unlock()
	sort.Strings(st.Running)
	sort.Strings(st.Waiting)
	return st
}

// hasAdapter reports whether a decode group has a row with an adapter: such a group
// runs eagerly (captured decode steps carry no adapter slots).
func (e *Engine) hasAdapter(items []scheduler.DecodeItem) bool {
	if e.ad == nil {
		return false
	}
	for _, it := range items {
		if c := e.live[it.Req.ID()]; c != nil && c.adapter != nil {
			return true
		}
	}
	return false
}
