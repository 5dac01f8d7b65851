//go:build !unix

package model

func dropPages([]byte) {}

func prefault([]byte) {}
