package kern

func init() {
	for _, f := range QFormats {
		_ = f
	}
}
