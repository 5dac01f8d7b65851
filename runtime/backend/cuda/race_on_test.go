//go:build race

package cuda

// raceOn: the race detector slows the single-goroutine kernel models ~10x and finds
// nothing in them; their tests run a reduced set under it.
const raceOn = true
