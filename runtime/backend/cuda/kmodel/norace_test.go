//go:build !race

package kmodel

const raceEnabled = false
