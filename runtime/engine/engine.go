package engine

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/vireo-ai/vireo/runtime/backend"
	"github.com/vireo-ai/vireo/runtime/grammar"
	"github.com/vireo-ai/vireo/runtime/model"
	"github.com/vireo-ai/vireo/runtime/profiling"
	"github.com/vireo-ai/vireo/runtime/specdec"
	"github.com/vireo-ai/vireo/runtime/tokenizer"
	"github.com/vireo-ai/vireo/scheduler"
)

// Options size the engine. Zero fields take the defaults noted.
type Options struct {
	MaxNumSeqs          int     // sequences per step (default 256)
	MaxNumBatchedTokens int     // tokens per step (default 2048)
	MaxModelLen         int     // prompt + output cap (default: the model's context)
	BlockSize           int     // KV block size in tokens (default 16)
	NumBlocks           int     // KV blocks; 0 sizes the cache from KVCacheBytes
	KVCacheBytes        int64   // KV memory when NumBlocks is 0 (default: the backend's free-memory sizing if it has one, else 1 GiB of f32)
	PrefillStreams      int     // prefill lanes; 1 = chunked prefill on one lane (default 1)
	PrefillChunk        int     // most tokens of one prompt per step (default MaxNumBatchedTokens)
	MaxLongPrefills     int     // long prompts prefilling at once (0: no cap)
	DecodeSteps         int     // K decode steps per round trip when nothing needs scheduling (default 1)
	EnablePrefixCache   bool    // share full prompt blocks between requests
	DisableCUDAGraphs   bool    // issue decode steps op by op even where the backend could replay graphs
	MaxWaiting          int     // completions queued (not yet running) before Submit says ErrQueueFull (0: unbounded)
	EOSIDs              []int32 // tokens that end a completion unless IgnoreEOS (default: the tokenizer's)
	Logger              *zap.Logger
	// Speculative turns on speculative decoding (vLLM's --speculative-config; the zero
	// value is off). Verification passes run eagerly, never as captured graphs.
	Speculative specdec.Config
	// Draft is the draft model of method draft_model, loaded by the caller on the
	// target's backend (Speculative.Model names it); its vocabulary must be the target's.
	Draft *model.Model
	// Profiler, when set, times every op of the engine's passes while one of its
	// windows is open, and opens NVTX ranges around steps, layers and ops when it has
	// them on (runtime/profiling, profile.go); nil: neither, and a pass calls nothing.
	Profiler *profiling.Profiler
	// ModelName names the model in profiles (default "model"; a draft model is "draft").
	ModelName string
	// LoRA turns on LoRA adapters (vLLM's --enable-lora): LoadAdapter registers them and
	// Request.Adapter names one. The zero value is off.
	LoRA LoRAOptions
}

// Model is what the engine runs: a *model.Model, or a stand-in such as
// enginetest.Fake. Its methods are model.Model's.
type Model interface {
	Spec() *model.Config
	Backend() backend.Backend
	NewWorkspace(maxTokens, maxLogitRows int) (*model.Workspace, error)
	NewKVCache(blocks, blockSize int) (*backend.KVCache, error)
	Forward(ws *model.Workspace, kv *backend.KVCache, seqs []model.Seq) ([]float32, error)
	// CaptureDecode records a decode step as a graph (see setupGraphs); an error
	// leaves the engine decoding eagerly, saying why.
	CaptureDecode(ws *model.Workspace, kv *backend.KVCache, rows, maxCtx int) (*model.DecodeGraph, error)
}

// kvSizer is implemented by backends that size the KV cache from device memory (the
// CUDA backend: free memory × its GPU memory utilization).
type kvSizer interface {
	KVBlocks(layers, blockSize, kvHeads, headDim int) (int, error)
}

// Stats is a snapshot of the engine's state, for metrics.
type Stats struct {
	Waiting, Running int
	KVUsage          float64 // fraction of KV blocks in use
	NumBlocks        int
	FreeBlocks       int // blocks free or cached (evictable)
	Scheduler        scheduler.Stats
	LoRA             *LoRAStats // nil when LoRA is off
}

// Engine runs requests on one model. Its methods are safe for concurrent use.
type Engine struct {
	m     Model
	cfg   *model.Config // m.Spec()
	tok   *tokenizer.Tokenizer
	opt   Options
	log   *zap.Logger
	kv    *backend.KVCache
	sched *scheduler.Scheduler

	decode *lane
	lanes  []*lane
	fences *fences
	groups []group // scratch of run

	graphs    GraphMode
	graphsWhy string

	vocabOnce sync.Once
	vocab     *grammar.Vocab // the tokenizer as constraints see it, built on first use
	vocabErr  error
	graphSet  *graphSet // the decode lane's captured steps, in GraphsReplay

	spec *speculator // nil: no speculative decoding
	ad   *adapters   // nil: LoRA off

	// Admission. Submit checks and reserves room in the waiting queue under inMu in one
	// step, and the loop hands completions on from the inbox under the same lock, so
	// the cap holds however many goroutines submit at once.
	inMu   sync.Mutex    // guards inbox, inboxN and queued
	inbox  []*submission // submitted, not yet seen by the loop
	inboxN int           // completions in inbox
	// queued counts the completions not yet running: in the inbox, deferred behind
	// their first sibling, or waiting in the scheduler (preempted ones included). The
	// loop recounts it after each step; between recounts it still counts what the
	// step admitted (erring high for new intake) and not what the step preempted.
	queued   int
	wake     chan struct{} // capacity 1: the inbox has work
	quit     chan struct{}
	done     chan struct{}
	closed   atomic.Bool
	nextID   atomic.Uint64
	mu       sync.Mutex // guards stats
	stats    Stats
	closeErr error

	// loop state (owned by the loop goroutine)
	live     map[string]*completion
	deferred []*completion // siblings waiting for their first completion's prefill
	reqs     map[*outbox][]*completion
	results  []scheduler.Result
	ended    []*scheduler.Request
	hook     func(stage string) // tests: called on the loop after each Step ("step") and Commit ("commit")

	obsMu     sync.Mutex // serializes OnStep
	observers atomic.Pointer[[]func(StepStats)]
}

type submission struct {
	ctx     context.Context
	req     *Request
	out     *outbox
	queued  time.Time
	adapter *adapterEntry // held from Submit to the request's last event; nil: the base model
}

// StepStats is what one engine step (one scheduler plan, whose decode group may run
// several passes with DecodeSteps) computed: vLLM's iteration counts.
type StepStats struct {
	PromptTokens     int // prompt tokens computed (prefill chunks; prefix-cache hits not counted)
	GenerationTokens int // tokens sampled
}

// OnStep registers f to be called on the engine's loop after every step that ran
// work. f must return quickly and must not call the engine.
func (e *Engine) OnStep(f func(StepStats)) {
	e.obsMu.Lock()
	defer e.obsMu.Unlock()
	var fs []func(StepStats)
	if p := e.observers.Load(); p != nil {
		fs = append(fs, *p...)
	}
	fs = append(fs, f)
	e.observers.Store(&fs)
}

// observeStep tells the OnStep observers what a committed plan computed (loop).
func (e *Engine) observeStep(p *scheduler.Plan, results []scheduler.Result) {
	fs := e.observers.Load()
	if fs == nil {
		return
	}
	st := StepStats{PromptTokens: p.NumPrefillTokens}
	for i := range results {
		st.GenerationTokens += len(results[i].Tokens)
	}
	for _, f := range *fs {
		f(st)
	}
}

// New builds an engine on a loaded model and starts its step loop.
func New(m Model, tok *tokenizer.Tokenizer, opt Options) (*Engine, error) {
	e, err := build(m, tok, opt)
	if err != nil {
		return nil, err
	}
	go e.loop()
	return e, nil
}

// build makes an engine whose loop is not started yet (tests set hooks first).
func build(m Model, tok *tokenizer.Tokenizer, opt Options) (*Engine, error) {
	c := m.Spec()
	if opt.MaxNumSeqs <= 0 {
		opt.MaxNumSeqs = 256
		if opt.MaxNumBatchedTokens > 0 {
			opt.MaxNumSeqs = min(opt.MaxNumSeqs, opt.MaxNumBatchedTokens)
		}
	}
	if opt.MaxNumBatchedTokens <= 0 {
		opt.MaxNumBatchedTokens = max(2048, opt.MaxNumSeqs)
	}
	explicitLen := opt.MaxModelLen > 0
	if opt.MaxModelLen <= 0 || opt.MaxModelLen > c.MaxSeqLen {
		opt.MaxModelLen = c.MaxSeqLen
	}
	if opt.BlockSize <= 0 {
		opt.BlockSize = model.DefaultBlockSize
	}
	if opt.PrefillStreams <= 0 {
		opt.PrefillStreams = 1
	}
	if opt.DecodeSteps <= 0 {
		opt.DecodeSteps = 1
	}
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.EOSIDs == nil {
		opt.EOSIDs = tok.EOSIDs()
	}
	for _, id := range opt.EOSIDs {
		if id < 0 || int(id) >= c.VocabSize {
			return nil, fmt.Errorf("engine: end-of-sequence id %d outside the vocabulary of %d", id, c.VocabSize)
		}
	}
	sp, err := setupSpec(m, &opt)
	if err != nil {
		return nil, err
	}
	ad, err := setupLoRA(m, &opt) // before the KV cache takes what memory is left
	if err != nil {
		return nil, err
	}
	if opt.NumBlocks <= 0 {
		perBlock := int64(c.Layers) * 2 * int64(c.KVHeads*c.HeadDim*opt.BlockSize) * 4
		var draftBlock int64 // a draft model's cache has as many blocks, addressed alike
		if opt.Draft != nil {
			draftBlock = specdec.KVBytesPerBlock(opt.Draft, opt.BlockSize)
		}
		if ks, ok := m.Backend().(kvSizer); ok && opt.KVCacheBytes <= 0 {
			n, err := ks.KVBlocks(c.Layers, opt.BlockSize, c.KVHeads, c.HeadDim)
			if err != nil {
				return nil, fmt.Errorf("engine: sizing the KV cache from device memory: %w", err)
			}
			opt.NumBlocks = int(int64(n) * perBlock / (perBlock + draftBlock))
		} else {
			if opt.KVCacheBytes <= 0 {
				opt.KVCacheBytes = 1 << 30
			}
			opt.NumBlocks = int(opt.KVCacheBytes / (perBlock + draftBlock))
		}
		// No more than every sequence at full length needs.
		opt.NumBlocks = min(opt.NumBlocks, opt.MaxNumSeqs*((opt.MaxModelLen+opt.BlockSize-1)/opt.BlockSize))
	}
	if opt.NumBlocks < 2 {
		return nil, fmt.Errorf("engine: a KV cache of %d blocks is too small", opt.NumBlocks)
	}
	// One sequence at MaxModelLen must fit the cache, or requests would end early for
	// want of blocks (the scheduler caps each at what the cache holds).
	if held := opt.NumBlocks * opt.BlockSize; opt.MaxModelLen > held {
		if explicitLen {
			return nil, fmt.Errorf("engine: the KV cache is too small for max_model_len: it holds %d tokens (%d blocks of %d), max_model_len is %d; give the cache more memory or lower max_model_len to at most %d",
				held, opt.NumBlocks, opt.BlockSize, opt.MaxModelLen, held)
		}
		opt.Logger.Warn("the KV cache is too small for the model's context: max_model_len capped to what the cache holds (give the cache more memory to serve the whole context)",
			zap.Int("context", opt.MaxModelLen), zap.Int("max_model_len", held), zap.Int("kv_blocks", opt.NumBlocks), zap.Int("kv_block_size", opt.BlockSize))
		opt.MaxModelLen = held
	}
	scfg := scheduler.Config{
		MaxNumBatchedTokens: opt.MaxNumBatchedTokens, MaxNumSeqs: opt.MaxNumSeqs, BlockSize: opt.BlockSize,
		NumBlocks: opt.NumBlocks, MaxLongPrefills: opt.MaxLongPrefills, PrefillChunk: opt.PrefillChunk,
		EnablePrefixCache: opt.EnablePrefixCache, DecodeSteps: opt.DecodeSteps, PrefillLanes: opt.PrefillStreams,
		MaxModelLen: opt.MaxModelLen, MaxAdapters: opt.LoRA.MaxLoRAs,
	}
	specTokens := sp.specTokens(opt.MaxNumSeqs)
	if sp != nil {
		scfg.SpecTokens, scfg.MaxSpecTokens = sp.cfg.NumSpeculativeTokens, specTokens
	}
	sched, err := scheduler.New(scfg)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	kv, err := m.NewKVCache(opt.NumBlocks, opt.BlockSize)
	if err != nil {
		return nil, fmt.Errorf("engine: kv cache: %w", err)
	}
	e := &Engine{m: m, cfg: c, tok: tok, opt: opt, log: opt.Logger, kv: kv, sched: sched, spec: sp, ad: ad,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		live: map[string]*completion{}, reqs: map[*outbox][]*completion{}}
	e.fences = newFences(m.Backend(), sched.Pool())
	if ad != nil {
		ad.e = e
	}
	// The decode lane computes one position per sequence, plus the drafted positions of
	// verification passes, each with its logits.
	if e.decode, err = e.newLane(opt.MaxNumSeqs+specTokens, opt.MaxNumSeqs+specTokens); err != nil {
		return nil, err
	}
	for i := 0; i < opt.PrefillStreams; i++ {
		l, err := e.newLane(opt.MaxNumBatchedTokens, min(opt.MaxNumBatchedTokens, opt.MaxNumSeqs))
		if err != nil {
			return nil, err
		}
		e.lanes = append(e.lanes, l)
	}
	if sp != nil && opt.Draft != nil {
		if sp.drafter, err = specdec.NewDrafter(opt.Draft, opt.NumBlocks, opt.BlockSize); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		if sp.dws, err = sp.drafter.NewWorkspace(e.decode.stream, opt.MaxNumSeqs+specTokens, opt.MaxNumSeqs); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		for _, l := range e.lanes {
			if l.dws, err = sp.drafter.NewWorkspace(l.stream, opt.MaxNumBatchedTokens, 1); err != nil {
				return nil, fmt.Errorf("engine: %w", err)
			}
		}
	}
	if err := e.setupProfiling(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.graphs, e.graphsWhy = e.setupGraphs()
	e.logGraphs()
	e.publishStats()
	return e, nil
}

func (e *Engine) newLane(tokens, logitRows int) (*lane, error) {
	ws, err := e.m.NewWorkspace(tokens, logitRows)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if e.ad != nil {
		ws.SetLoRA(e.ad.set)
	}
	return &lane{ws: ws, stream: ws.Stream()}, nil
}

// Options returns the effective options (defaults filled in).
func (e *Engine) Options() Options { return e.opt }

// Graphs says whether decode steps replay captured graphs, and why (not).
func (e *Engine) Graphs() (GraphMode, string) { return e.graphs, e.graphsWhy }

// Tokenizer is the model's tokenizer.
func (e *Engine) Tokenizer() *tokenizer.Tokenizer { return e.tok }

// Vocab is the tokenizer's vocabulary as constraints see it (with the engine's
// end-of-sequence ids), built on first use.
func (e *Engine) Vocab() (*grammar.Vocab, error) {
	e.vocabOnce.Do(func() {
		pieces := make([]string, e.tok.VocabSize())
		for i := range pieces {
			pieces[i] = e.tok.Piece(int32(i))
		}
		e.vocab, e.vocabErr = grammar.NewVocab(pieces, e.opt.EOSIDs)
	})
	return e.vocab, e.vocabErr
}

// Model is the model the engine runs.
func (e *Engine) Model() Model { return e.m }

// Stats returns the state after the last step.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

// Submit queues a request and returns its events at once: tokens as they are
// generated, each completion ending with an event whose Finish is set; the channel
// closes after the last. Cancelling ctx aborts the request. Invalid requests fail here
// (ErrInvalid, naming the problem); so does a full queue (ErrQueueFull) or a closed
// engine. Submit never waits for the step in flight.
func (e *Engine) Submit(ctx context.Context, r *Request) (<-chan Event, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if err := r.validate(e.cfg.VocabSize, e.opt.MaxModelLen); err != nil {
		return nil, err
	}
	if r.Constraint != nil {
		v, err := e.Vocab()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		// Build the constraint's tables for this vocabulary here, on the caller's
		// goroutine, not on the step loop (a no-op once built).
		r.Constraint.Prepare(v)
	}
	rc := *r
	if rc.N == 0 {
		rc.N = 1
	}
	if first := min(len(rc.Prompt), e.sched.Config().PrefillChunk); (first+e.opt.BlockSize-1)/e.opt.BlockSize > e.opt.NumBlocks {
		return nil, fmt.Errorf("%w: the first %d prompt tokens need more KV blocks than the cache's %d", ErrInvalid, first, e.opt.NumBlocks)
	}
	if e.opt.MaxWaiting > 0 && rc.N > e.opt.MaxWaiting {
		// Never room, however idle the engine: not a reason to retry.
		return nil, fmt.Errorf("%w: n=%d completions can never fit the waiting queue, which holds %d (MaxWaiting)", ErrInvalid, rc.N, e.opt.MaxWaiting)
	}
	if rc.ID == "" {
		rc.ID = fmt.Sprintf("req-%d", e.nextID.Add(1))
	}
	var ent *adapterEntry
	if rc.Adapter != "" {
		if e.ad == nil {
			return nil, fmt.Errorf("%w: adapter %q: %v", ErrInvalid, rc.Adapter, ErrLoRADisabled)
		}
		var err error
		if ent, err = e.ad.acquire(rc.Adapter); err != nil {
			return nil, err
		}
	}
	e.inMu.Lock()
	switch {
	case e.closed.Load():
		e.inMu.Unlock()
		e.ad.release(ent)
		return nil, ErrClosed
	case e.opt.MaxWaiting > 0 && e.queued+rc.N > e.opt.MaxWaiting:
		e.inMu.Unlock()
		e.ad.release(ent)
		return nil, ErrQueueFull
	}
	s := &submission{ctx: ctx, req: &rc, out: newOutbox(ctx, rc.N), queued: time.Now(), adapter: ent}
	e.queued += rc.N
	if ent == nil || e.ad.hold(ent, s) {
		e.inbox = append(e.inbox, s)
		e.inboxN += rc.N
	} // else it waits for its adapter's read, and enters the inbox after it
	e.inMu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return s.out.out, nil
}

// Close aborts every request and stops the loop.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		<-e.done
		return e.closeErr
	}
	close(e.quit)
	<-e.done
	if err := e.closeProfiling(); err != nil {
		e.log.Warn("closing the profiling lanes", zap.Error(err))
	}
	return e.closeErr
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.LittleEndian.Uint64(b[:])
}

// intake admits everything submitted since the last call (loop goroutine).
func (e *Engine) intake() {
	e.inMu.Lock()
	in := e.inbox
	e.inbox = nil
	e.inboxN = 0 // still in queued: they wait in the scheduler now, until a recount
	e.inMu.Unlock()
	for _, s := range in {
		if err := e.admit(s); err != nil {
			e.ad.release(s.adapter)
			for i := 0; i < s.req.N; i++ {
				s.out.push(Event{Index: i, Finish: FinishError, Err: err, Time: time.Now()})
			}
		}
	}
}

// admit hands a submission's completions to the scheduler.
func (e *Engine) admit(s *submission) error {
	r := s.req
	seed := randomSeed()
	if r.Seed != nil {
		seed = *r.Seed
	}
	var cs []*completion
	for i := 0; i < r.N; i++ {
		id := r.ID
		if r.N > 1 {
			id = fmt.Sprintf("%s/%d", r.ID, i)
		}
		if _, dup := e.live[id]; dup {
			e.abortAll(cs, FinishAbort, nil)
			return fmt.Errorf("%w: request id %q is already running", ErrInvalid, id)
		}
		c := &completion{req: r, ctx: s.ctx, out: s.out, index: i, id: id, queued: s.queued, adapter: s.adapter,
			seed: seed + uint64(i)*0x9e3779b97f4a7c15, stream: e.tok.NewStream(false),
			history: append(make([]int32, 0, len(r.Prompt)+r.MaxTokens), r.Prompt...)}
		if r.Constraint != nil {
			c.matcher = r.Constraint.NewMatcher(e.vocab)
		}
		if i > 0 && e.opt.EnablePrefixCache {
			// Siblings wait for the first completion's prefill, then find the
			// prompt's full blocks in the prefix cache and share them.
			c.leader = cs[0]
			e.deferred = append(e.deferred, c)
		} else if err := e.schedule(c); err != nil {
			e.abortAll(cs, FinishAbort, nil)
			return err
		}
		e.live[id] = c
		cs = append(cs, c)
	}
	e.reqs[s.out] = cs
	return nil
}

// schedule hands a completion to the scheduler.
func (e *Engine) schedule(c *completion) error {
	r := c.req
	nr := scheduler.NewRequest{ID: c.id, Prompt: r.Prompt, MaxNewTokens: r.MaxTokens, Deadline: r.Deadline}
	if c.adapter != nil {
		nr.Adapter, nr.CacheSalt = c.adapter.id, c.adapter.salt
	}
	sr, err := e.sched.Add(nr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	c.sreq = sr
	return nil
}

// admitSiblings schedules the deferred siblings whose first completion has finished
// its prefill (or ended).
func (e *Engine) admitSiblings() {
	k := 0
	for _, c := range e.deferred {
		switch {
		case c.done:
			continue // cancelled while waiting
		case c.leader.made == 0 && !c.leader.done:
			e.deferred[k] = c
			k++
			continue
		}
		c.leader = nil
		if err := e.schedule(c); err != nil {
			e.finish(c, Event{}, FinishError, err)
		}
	}
	clear(e.deferred[k:])
	e.deferred = e.deferred[:k]
}

// finish delivers a completion's last event and forgets it.
func (e *Engine) finish(c *completion, ev Event, why FinishReason, err error) {
	if c.done {
		return
	}
	c.done = true
	ev.Index, ev.Finish, ev.Err = c.index, why, err
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Text += c.pending
	c.pending = ""
	ev.Usage = &Usage{PromptTokens: len(c.req.Prompt), CompletionTokens: c.made}
	ev.Timing = &Timing{Queued: c.queued, Scheduled: c.scheduled}
	c.out.push(ev)
	delete(e.live, c.id)
	cs := e.reqs[c.out]
	for _, o := range cs {
		if !o.done {
			return
		}
	}
	delete(e.reqs, c.out)
	e.ad.release(c.adapter)
}

func (e *Engine) abortAll(cs []*completion, why FinishReason, err error) {
	for _, c := range cs {
		if !c.done {
			e.sched.Cancel(c.id)
			e.finish(c, Event{}, why, err)
		}
	}
}

// markScheduled records when each completion of a plan first entered a step: its
// first step is always a prefill chunk (loop).
func (e *Engine) markScheduled(p *scheduler.Plan, now time.Time) {
	for _, g := range p.Prefill {
		for _, it := range g.Items {
			if c, ok := e.live[it.Req.ID()]; ok && c.scheduled.IsZero() {
				c.scheduled = now
			}
		}
	}
}

func (e *Engine) publishStats() {
	pool := e.sched.Pool()
	st := Stats{Waiting: e.sched.NumWaiting(), Running: e.sched.NumRunning(), KVUsage: e.sched.Usage(),
		NumBlocks: pool.NumBlocks(), FreeBlocks: pool.NumAvailable(), Scheduler: e.sched.Stats(), LoRA: e.loraStats()}
	e.mu.Lock()
	e.stats = st
	e.mu.Unlock()
	e.inMu.Lock()
	e.queued = e.inboxN + st.Waiting + len(e.deferred) + e.ad.pendingCompletions()
	e.inMu.Unlock()
}
