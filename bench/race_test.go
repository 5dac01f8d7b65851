//go:build race

package bench

// The race detector slows the forward pass' Go loops about tenfold; heavy tests
// scale down under it.
const raceEnabled = true
