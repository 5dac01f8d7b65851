// Package version says which Vireo a binary is: every command's --version, `vireo
// version`, and anything else that reports the build (logs, reports).
package version

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/vireo-ai/vireo/runtime/backend/device"
)

// Version is the release this source tree is. Release builds may set it with
// -ldflags "-X github.com/vireo-ai/vireo/internal/version.Version=v0.2.0"; a module
// installed by tag (go install …@v0.2.0) reports the tag instead.
var Version = "0.1.0-dev"

// Info is what a binary knows about its own build.
type Info struct {
	Version   string   `json:"version"`
	Commit    string   `json:"commit,omitempty"` // VCS revision, when the build recorded it
	Modified  bool     `json:"modified,omitempty"`
	GoVersion string   `json:"go_version"`
	Platform  string   `json:"platform"` // GOOS/GOARCH
	Devices   []string `json:"devices"`  // backends this binary can open (cuda only with the cuda tag)
}

// Get reads the build information.
func Get() Info {
	in := Info{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Devices: device.Names()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = strings.TrimPrefix(v, "v")
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	return in
}

// Line is the one line --version prints: "vireo 0.1.0-dev (commit 2147ef9c, go1.26.0
// linux/amd64, devices: cpu)".
func Line(binary string) string {
	in := Get()
	var parts []string
	if in.Commit != "" {
		c := in.Commit[:min(12, len(in.Commit))]
		if in.Modified {
			c += ", modified"
		}
		parts = append(parts, "commit "+c)
	}
	parts = append(parts, in.GoVersion+" "+in.Platform, "devices: "+strings.Join(in.Devices, ", "))
	return fmt.Sprintf("%s %s (%s)", binary, in.Version, strings.Join(parts, ", "))
}

// Requested reports whether a command line is a request for the version alone:
// --version or -version as its first argument. Commands with flags also register
// Flag, so the version flag is found wherever it stands among them.
func Requested(args []string) bool {
	return len(args) > 0 && (args[0] == "--version" || args[0] == "-version")
}

// Flag registers -version on a flag set; the command prints Line and exits 0 when
// it is set.
func Flag(fs *flag.FlagSet) *bool {
	return fs.Bool("version", false, "print the version and exit")
}
