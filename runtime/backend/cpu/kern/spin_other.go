//go:build !amd64

package kern

func pause() {}
