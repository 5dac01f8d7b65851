//go:build !linux

package model

// residentCopy is nil off Linux: the weights stay in the file's mapping.
func residentCopy([]byte) []byte { return nil }
