//go:build cuda

package main

import (
	"context"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/hub"
)

// resolveModel turns a model argument into a local path: a path as is, else a Hugging
// Face Hub name from the cache, else downloaded (runtime/hub). Logs go to stderr; the
// JSON result goes to stdout.
func resolveModel(arg string, offline bool) (string, error) {
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(os.Stderr), zapcore.InfoLevel))
	return hub.Resolve(context.Background(), arg, hub.CommandConfig(offline, log, os.Stderr))
}
