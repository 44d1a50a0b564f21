// Package clip bounds what an error quotes of its input: a field name, a
// bad value or a path from a request may be as large as a message, and
// the error travels into events, dead letters, NATS terminate reasons and
// logs.
package clip

import "unicode/utf8"

// Bounds on what an error quotes.
const (
	// Field bounds a quoted name: a JSON field, a path in a tarball.
	Field = 128
	// Reason bounds a whole reason.
	Reason = 512
)

// String shortens s to at most n bytes, on a rune boundary, marking the
// cut with an ellipsis.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
