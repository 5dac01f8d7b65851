package benchcmd

import (
	"context"
	"io"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/vireo-ai/vireo/runtime/hub"
)

// resolveModel turns a model argument into a local path: a path or synthetic name as
// is, else a Hugging Face Hub name from the cache, else downloaded (runtime/hub).
func resolveModel(ctx context.Context, path string, offline bool, stderr io.Writer) (string, error) {
	log := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(stderr), zapcore.InfoLevel))
	return hub.Resolve(ctx, path, hub.CommandConfig(offline, log, stderr))
}
