//go:build race

package kmodel

// raceEnabled trims the emulation matrix under the race detector (the emulator is
// single-goroutine: the detector has nothing to find in it, and CI runs -race).
const raceEnabled = true
