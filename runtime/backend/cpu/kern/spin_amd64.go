package kern

//go:noescape
func pause()
