package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
)

// eventLine is the one-line form of an event shared by submit and watch:
// "<id> <tenant> step_completed create_project". Id first, so that
// `awk '{print $1}'` and `grep <id>` work on the output.
func eventLine(ev *jobs.Event) string {
	line := ev.Data.RequestID + " " + ev.Data.Tenant + " " + ev.Short()
	if ev.Data.Step != "" {
		line += " " + string(ev.Data.Step)
	}
	if ev.Terminal() && ev.Data.DurationMs > 0 {
		line += " (" + formatMs(ev.Data.DurationMs) + ")"
	}
	if ev.Type == jobs.TypeWaiting {
		line += ": " + waitingText(ev)
	}
	return line
}

// waitingText says what a waiting event's step waits for.
func waitingText(ev *jobs.Event) string {
	switch ev.Data.Waiting {
	case jobs.WaitingBudget:
		return "waiting for API budget: " + ev.Data.Endpoint
	case jobs.WaitingQuota:
		return "held for the tenant's quota"
	case jobs.WaitingBuildSlot:
		return "waiting for a build slot (the team's concurrent builds are full)"
	}
	return "waiting (" + ev.Data.Waiting + ")"
}

func formatMs(ms int64) string {
	return (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond).String()
}

// detail is one labelled fact of a terminal event.
type detail struct{ key, value string }

// outcome lists what a reader needs from a terminal event: where the app
// is and how to claim it, or why there is no app.
func outcome(ev *jobs.Event) []detail {
	d := ev.Data
	var out []detail
	add := func(k, v string) {
		if v != "" {
			out = append(out, detail{k, v})
		}
	}
	switch ev.Type {
	case jobs.TypeSucceeded:
		add("url", d.URL)
		add("claim", d.ClaimURL)
	case jobs.TypeRejected:
		if d.Error != nil {
			add("field", d.Error.Field)
			add("reason", rejectionReason(d.Error))
		}
	default: // failed, cancelled
		if d.Error != nil {
			add("step", string(firstNonEmpty(d.Error.Step, d.Step)))
			add("code", d.Error.Code)
			add("message", d.Error.Message)
		}
		add("cleaned", strings.Join(d.Cleaned, ", "))
	}
	return out
}

// rejectionReason drops the "invalid request: <field>: " prefix the
// worker's message repeats, since the field is shown on its own.
func rejectionReason(e *jobs.EventError) string {
	msg := strings.TrimPrefix(e.Message, "invalid request: ")
	if e.Field != "" {
		msg = strings.TrimPrefix(msg, e.Field+": ")
	}
	return msg
}

// writeOutcome prints the details under an event line, aligned.
func writeOutcome(w io.Writer, ev *jobs.Event) {
	for _, d := range outcome(ev) {
		fmt.Fprintf(w, "  %-8s %s\n", d.key+":", d.value)
	}
}

// inlineOutcome is the same details on one line, for streams (watch):
// url=https://… claim=https://… or code=… message="…".
func inlineOutcome(ev *jobs.Event) string {
	var b strings.Builder
	for _, d := range outcome(ev) {
		b.WriteByte(' ')
		b.WriteString(d.key)
		b.WriteByte('=')
		if strings.ContainsAny(d.value, " \t\n\"") {
			b.WriteString(strconv.Quote(d.value))
		} else {
			b.WriteString(d.value)
		}
	}
	return b.String()
}

func firstNonEmpty[S ~string](s ...S) S {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// stepOf returns a step's 1-based position in the pipeline, 0 if unknown.
func stepOf(step jobs.Step) int {
	for i, s := range jobs.Steps() {
		if s == step {
			return i + 1
		}
	}
	return 0
}
