package version

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"os"
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

// TestLicense: the repository carries the Apache License 2.0, verbatim (the text at
// apache.org/licenses/LICENSE-2.0.txt).
func TestLicense(t *testing.T) {
	data, err := os.ReadFile("../../LICENSE")
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30", hex.EncodeToString(sum[:]))
}
