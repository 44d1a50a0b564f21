package natsembed

import (
	"context"
	"fmt"
	"log/slog"
)

// logAdapter turns the server's printf-style log calls into slog records
// and hands the first fatal message to Start. Unlike the server's own
// logger, its Fatalf never exits the process.
type logAdapter struct {
	l     *slog.Logger // nil: silent
	fatal chan string  // buffered, capacity 1
}

func (a *logAdapter) debugEnabled() bool {
	return a.l != nil && a.l.Enabled(context.Background(), slog.LevelDebug)
}

func (a *logAdapter) log(level slog.Level, format string, v []any) {
	if a.l != nil {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (a *logAdapter) Noticef(format string, v ...any) { a.log(slog.LevelInfo, format, v) }
func (a *logAdapter) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a *logAdapter) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a *logAdapter) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a *logAdapter) Tracef(format string, v ...any)  { a.log(slog.LevelDebug-4, format, v) }

func (a *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.log(slog.LevelError, "%s", []any{msg})
	select {
	case a.fatal <- msg:
	default: // Start already has one; the first one explains the failure.
	}
}
