package kern

// Pause is a spin-wait hint: the x86 PAUSE instruction (tens of cycles), which frees
// the core's shared resources for its hyper-thread sibling and keeps a polling loop
// from flooding the memory pipeline. Elsewhere it does nothing.
func Pause() { pause() }
