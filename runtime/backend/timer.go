package backend

// OpTimer is a backend whose ops run asynchronously and that times them on the device
// (CUDA: events with timing). A profiler marks points in a stream's work and reads the
// device time between them once the stream has reached them. A backend without it runs
// its ops synchronously (the CPU), and a host clock around each op times it.
type OpTimer interface {
	NewTimer(s Stream) (Timer, error)
}

// Timer marks points in one stream's work. Its methods are called from one goroutine at
// a time.
type Timer interface {
	// Mark records a mark after the work issued on the stream so far and returns its
	// index: 0, 1, … since the last Reset. It never waits for the device; it fails while
	// the stream captures a graph.
	Mark() (int, error)
	// Elapsed waits until the stream has passed mark j and returns the device time from
	// mark i to mark j, in nanoseconds.
	Elapsed(i, j int) (int64, error)
	// Reset forgets the marks; their events are reused by the next ones. Every mark must
	// have been waited for (Elapsed) or the stream synchronized first.
	Reset()
	// Close frees the timer's events.
	Close() error
}

// Ranger is a backend that annotates the host timeline for a profiler attached to the
// process (NVTX ranges on CUDA: nsys and ncu show them over the kernels they
// launched). Ranges nest per OS thread: a caller locks its goroutine to its thread
// (runtime.LockOSThread) from a push to its pop.
type Ranger interface {
	// RangeID registers a range name (with a display color, 0xRRGGBB) and returns the
	// id Push takes; registering the same name again returns the same id.
	RangeID(name string, color uint32) (int, error)
	// PushRange opens a range of a registered id on the calling thread; PopRange
	// closes the innermost one.
	PushRange(id int)
	PopRange()
}
