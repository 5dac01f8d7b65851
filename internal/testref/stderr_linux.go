package testref

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// goStderr opens the standard error of the go command that runs this test binary,
// when the parent is the go command and its standard error is a terminal or a pipe.
func goStderr() *os.File {
	ppid := os.Getppid()
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ppid))
	if err != nil || strings.TrimSpace(string(comm)) != "go" {
		return nil
	}
	path := fmt.Sprintf("/proc/%d/fd/2", ppid)
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	// A terminal or a pipe takes the line as it comes; a regular file only when the go
	// command appends to it too (>>), else its next write would land on our line.
	if fi.Mode()&(os.ModeCharDevice|os.ModeNamedPipe) == 0 && !(fi.Mode().IsRegular() && appends(ppid)) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil
	}
	return f
}

// appends reports whether process pid's standard error was opened with O_APPEND.
func appends(pid int) bool {
	info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/2", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && flags&syscall.O_APPEND != 0
		}
	}
	return false
}
