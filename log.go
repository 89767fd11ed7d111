package main

import (
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/lmittmann/tint"
)

func newLogger(w io.Writer, c logConfig) *slog.Logger {
	var level slog.Level
	// The enum tag restricts the text to names UnmarshalText knows.
	_ = level.UnmarshalText([]byte(c.Level))
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	case "logfmt":
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return slog.New(tint.NewHandler(w, &tint.Options{
		Level:      level,
		TimeFormat: time.RFC3339,
		NoColor:    !isTerminal(w),
	}))
}

// isTerminal reports whether w is a character device (a terminal), where
// colour helps; in a file, a pipe or journald escape codes are noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
