package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
)

// Resolve turns a model argument into a path for the loader, in this order:
//
//  1. "", synthetic:<shape> and anything that exists on disk are returned as they are;
//     so is an argument that is plainly a path (./x, /x, ~/x, dir/file.gguf), so the
//     loader reports it missing;
//  2. a repo id found complete in the cache is used with no network request at all;
//  3. otherwise it is downloaded (Pull), unless cfg.Offline, which is an error that
//     says what the cache lacks.
func Resolve(ctx context.Context, arg string, cfg Config) (string, error) {
	if arg == "" || strings.HasPrefix(arg, "synthetic:") {
		return arg, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return arg, nil
	}
	if looksLikePath(arg) {
		return arg, nil
	}
	ref, err := ParseRef(arg)
	if err != nil {
		if !strings.Contains(arg, "/") {
			return arg, nil // a bare name: a missing local file, for the loader to report
		}
		return "", fmt.Errorf("%q is not a local file or folder, and %v", arg, err)
	}
	log := cfg.log()
	p, miss := Lookup(cfg, ref)
	if miss == nil {
		log.Info("model found in the Hub cache", zap.String("model", arg), zap.String("path", p))
		return p, nil
	}
	if cfg.Offline {
		return "", newErr(ErrOffline, fmt.Sprintf("%s: offline mode (--offline or HF_HUB_OFFLINE=1), and %v. Download it first with `vireo pull %s` where there is network, or copy the cache folder over",
			arg, miss, arg), nil)
	}
	log.Info("model not in the Hub cache: downloading", zap.String("model", arg), zap.String("why", miss.Error()), zap.String("cache", cfg.CacheDir))
	res, err := Pull(ctx, cfg, ref)
	if errors.Is(err, ErrRepoNotFound) {
		return "", fmt.Errorf("no file or folder %q here, and as a Hub name: %w", arg, err)
	}
	if err != nil {
		return "", err
	}
	return res.Path, nil
}

// CommandConfig is what a command uses: the environment (FromEnv), offline also when
// the command's --offline flag says so, log lines to log, and a progress bar on stderr
// when stderr is a terminal.
func CommandConfig(offline bool, log *zap.Logger, stderr io.Writer) Config {
	c := FromEnv()
	c.Offline = c.Offline || offline
	c.Logger = log
	if IsTerminal(stderr) {
		c.Progress = stderr
	}
	return c
}
