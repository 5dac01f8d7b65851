package version

import (
	"flag"
	"io"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLine(t *testing.T) {
	require.Regexp(t, regexp.MustCompile(`^vireo-check 0\.1\.0-dev \(go1\.\d+\S* \w+/\w+, devices: cpu(, cuda)?\)$`), Line("vireo-check"))
	in := Get()
	require.Equal(t, Version, in.Version)
	require.NotEmpty(t, in.Devices)
}

func TestRequested(t *testing.T) {
	require.True(t, Requested([]string{"--version"}))
	require.True(t, Requested([]string{"-version", "x"}))
	require.False(t, Requested([]string{"ops", "--version"}), "a subcommand's flags are its own")
	require.False(t, Requested(nil))
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	v := Flag(fs)
	require.NoError(t, fs.Parse([]string{"--version"}))
	require.True(t, *v)
}
