package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deployq/deployq/pkg/jobs"
	"golang.org/x/term"
)

// display shows a batch as it is submitted and runs. Calls come from one
// goroutine.
type display interface {
	begin()
	submitted(t *tracked)
	// event is called for every event of a tracked request, after t is
	// updated with it.
	event(t *tracked, ev *jobs.Event)
	warn(err error)
	// tick is called every second while the batch runs.
	tick()
	end(s summary)
}

// terminal describes stdout when it is an interactive terminal.
type terminal struct{ width, height int }

// stdoutTerminal reports whether stdout is a terminal that understands
// cursor movement. Only a real *os.File can be one, so tests writing to a
// buffer always get plain output.
func stdoutTerminal(e env) (terminal, bool) {
	f, ok := e.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || e.getenv("TERM") == "dumb" {
		return terminal{}, false
	}
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		w, h = 80, 24
	}
	return terminal{width: w, height: h}, true
}

func newDisplay(e env, o batchOptions, reqs []*tracked) display {
	if o.json {
		return &jsonDisplay{stdout: e.stdout, stderr: e.stderr, cmd: o.cmd, wait: o.wait}
	}
	// Redrawing in place needs every line on screen at once; a batch
	// taller than the terminal gets the plain log instead.
	if tty, ok := stdoutTerminal(e); ok && o.wait && len(reqs) < tty.height-1 {
		d := newTTYDisplay(e.stdout, e.stderr, tty.width, reqs)
		d.cmd = o.cmd
		// Colour on a terminal, unless NO_COLOR says otherwise
		// (https://no-color.org: set to anything, it turns colour off).
		d.color = e.getenv("NO_COLOR") == ""
		return d
	}
	return &plainDisplay{stdout: e.stdout, stderr: e.stderr, cmd: o.cmd, verb: o.verb, wait: o.wait}
}

// submissionNote says what a duplicate submit means; empty for a new one.
func submissionNote(sub *jobs.Submitted) string {
	switch {
	case !sub.Duplicate:
		return ""
	case sub.Existing != nil:
		note := "duplicate: a job with this id is already " + string(sub.Existing.Status)
		if sub.Existing.Step != "" {
			note += " (last step " + string(sub.Existing.Step) + ")"
		}
		return note + "; nothing new will run"
	}
	return "duplicate: this id was already submitted; nothing new will run"
}

// plainDisplay writes one line per submit and per event, for logs, pipes
// and CI: "<id> <tenant> step_completed create_project", with the
// outcome's details under each terminal event.
type plainDisplay struct {
	stdout, stderr io.Writer
	cmd, verb      string
	wait           bool
}

func (d *plainDisplay) begin() {}

func (d *plainDisplay) submitted(t *tracked) {
	line := t.req.ID + " " + t.req.Tenant + " " + d.verb
	if t.run > 1 {
		line += " (run " + strconv.Itoa(t.run) + ")"
	}
	if note := submissionNote(t.sub); note != "" {
		line = t.req.ID + " " + t.req.Tenant + " " + note
	}
	fmt.Fprintln(d.stdout, line)
}

func (d *plainDisplay) tick() {}

func (d *plainDisplay) event(t *tracked, ev *jobs.Event) {
	if t.sub != nil && t.sub.Duplicate {
		// A duplicate's steps are the earlier job's history, not a new
		// run: only its outcome is shown, marked as the earlier one's.
		if !ev.Terminal() {
			return
		}
		fmt.Fprintln(d.stdout, eventLine(ev)+" (duplicate: the earlier job's outcome)")
		writeOutcome(d.stdout, ev)
		return
	}
	fmt.Fprintln(d.stdout, eventLine(ev))
	if ev.Terminal() {
		writeOutcome(d.stdout, ev)
	}
}

func (d *plainDisplay) warn(err error) {
	fmt.Fprintf(d.stderr, "enqueue %s: warning: %v\n", d.cmd, err)
}

func (d *plainDisplay) end(s summary) {
	if d.wait {
		fmt.Fprintln(d.stdout, s)
	}
}

// jsonDisplay keeps stdout machine-readable: with --wait, exactly one line
// per request, its terminal CloudEvent as received; without, one line per
// submit. Anything else goes to stderr.
type jsonDisplay struct {
	stdout, stderr io.Writer
	cmd            string
	wait           bool
}

// submission is the JSON form of a submit or a replay (without --wait).
type submission struct {
	ID        string         `json:"id"`
	Tenant    string         `json:"tenant"`
	Subject   string         `json:"subject"`
	Sequence  uint64         `json:"sequence,omitempty"`
	Duplicate bool           `json:"duplicate"`
	Existing  *jobs.JobState `json:"existing,omitempty"`
	Source    jobs.SourceRef `json:"source"`
	// Run is the run a replay started.
	Run int `json:"run,omitempty"`
}

func (d *jsonDisplay) begin() {}

func (d *jsonDisplay) submitted(t *tracked) {
	if d.wait {
		if note := submissionNote(t.sub); note != "" {
			fmt.Fprintf(d.stderr, "enqueue %s: %s: %s\n", d.cmd, t.req.ID, note)
		}
		return
	}
	data, err := json.Marshal(submission{
		ID: t.sub.ID, Tenant: t.sub.Tenant, Subject: t.sub.Subject, Sequence: t.sub.Sequence,
		Duplicate: t.sub.Duplicate, Existing: t.sub.Existing, Source: t.req.Source, Run: t.run,
	})
	if err != nil {
		d.warn(err)
		return
	}
	fmt.Fprintf(d.stdout, "%s\n", data)
}

func (d *jsonDisplay) event(t *tracked, ev *jobs.Event) {
	if !d.wait || !ev.Terminal() {
		return
	}
	// One event per line, whatever the publisher's formatting.
	var line bytes.Buffer
	if err := json.Compact(&line, t.endRaw); err != nil {
		d.warn(fmt.Errorf("terminal event of %s: %w", t.req.ID, err))
		return
	}
	line.WriteByte('\n')
	_, _ = d.stdout.Write(line.Bytes())
}

func (d *jsonDisplay) warn(err error) { fmt.Fprintf(d.stderr, "enqueue %s: warning: %v\n", d.cmd, err) }

func (d *jsonDisplay) end(summary) {}

func (d *jsonDisplay) tick() {}

// ttyDisplay keeps one line per request on screen and rewrites them in
// place as events arrive: "[5/8] upload_source", then the outcome. The
// URLs and failure reasons follow the table once every request ended.
type ttyDisplay struct {
	out, stderr io.Writer
	cmd         string
	width       int
	reqs        []*tracked
	drawn       int // lines of the table on screen, to move back over
	idW         int
	tenantW     int
	// Warnings wait until the table is done: writing them while it is
	// redrawn would leave it misaligned.
	warnings []error
	// color paints outcomes: green succeeded, red failed or rejected,
	// yellow a duplicate's, dim what waits.
	color bool
}

func newTTYDisplay(out, stderr io.Writer, width int, reqs []*tracked) *ttyDisplay {
	d := &ttyDisplay{out: out, stderr: stderr, cmd: "submit", width: width, reqs: reqs}
	for _, t := range reqs {
		d.idW = max(d.idW, len(t.req.ID))
		d.tenantW = max(d.tenantW, len(t.req.Tenant))
	}
	d.idW = min(d.idW, 40)
	return d
}

func (d *ttyDisplay) begin()                      { d.redraw() }
func (d *ttyDisplay) submitted(*tracked)          { d.redraw() }
func (d *ttyDisplay) event(*tracked, *jobs.Event) { d.redraw() }
func (d *ttyDisplay) warn(err error)              { d.warnings = append(d.warnings, err) }
func (d *ttyDisplay) tick()                       { d.redraw() }

func (d *ttyDisplay) end(s summary) {
	d.redraw()
	var b strings.Builder
	for _, t := range d.reqs {
		if t.end == nil {
			continue
		}
		fmt.Fprintf(&b, "\n%s\n", eventLine(t.end))
		writeOutcome(&b, t.end)
	}
	fmt.Fprintf(&b, "\n%s\n", s)
	_, _ = io.WriteString(d.out, b.String())
	for _, err := range d.warnings {
		fmt.Fprintf(d.stderr, "enqueue %s: warning: %v\n", d.cmd, err)
	}
}

// redraw writes the whole table in one write, so the terminal never shows
// half a frame.
func (d *ttyDisplay) redraw() {
	var b strings.Builder
	if d.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", d.drawn) // back to the table's first line
	}
	for _, t := range d.reqs {
		line := fmt.Sprintf("%-*s  %-*s  %s", d.idW, t.req.ID, d.tenantW, t.req.Tenant, progressText(t))
		b.WriteString("\r\x1b[2K") // clear what the previous frame left
		// A line that wraps takes two rows and breaks the count above;
		// the colour's escapes take no room.
		line = truncate(line, d.width-1)
		if c := colorOf(t); d.color && c != "" {
			line = c + line + "\x1b[0m"
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	d.drawn = len(d.reqs)
	_, _ = io.WriteString(d.out, b.String())
}

// colorOf is the SGR sequence a request's line is painted with.
func colorOf(t *tracked) string {
	switch {
	case t.end != nil && t.sub != nil && t.sub.Duplicate:
		return "\x1b[33m" // yellow
	case t.end != nil && t.end.Type == jobs.TypeSucceeded:
		return "\x1b[32m" // green
	case t.end != nil, t.err != nil:
		return "\x1b[31m" // red
	case t.steps == 0:
		return "\x1b[2m" // dim: not started
	}
	return ""
}

// elapsed is how long ago since was, in whole seconds.
func elapsed(since time.Time) string {
	if since.IsZero() {
		return ""
	}
	return " " + time.Since(since).Round(time.Second).String()
}

// progressText is a request's state in a few words.
func progressText(t *tracked) string {
	if ev := t.end; ev != nil {
		d := ev.Data
		if t.sub != nil && t.sub.Duplicate {
			return "= duplicate of an earlier job: " + ev.Short() + "  " + d.URL
		}
		switch ev.Type {
		case jobs.TypeSucceeded:
			return "✓ succeeded  " + d.URL
		case jobs.TypeRejected:
			if d.Error != nil {
				return "✗ rejected: " + strings.TrimPrefix(d.Error.Message, "invalid request: ")
			}
			return "✗ rejected"
		}
		text := "✗ " + ev.Short()
		if d.Error != nil {
			text += " at " + string(firstNonEmpty(d.Error.Step, d.Step)) + ": " + d.Error.Code
		}
		return text
	}
	switch {
	case t.err != nil:
		return "✗ " + t.err.Error()
	case t.waiting != "":
		return fmt.Sprintf("[%d/%d] %s%s", min(t.steps+1, len(jobs.Steps())), len(jobs.Steps()), t.waiting, elapsed(t.waitSince))
	case t.steps > 0 && t.steps < len(jobs.Steps()):
		// The step in progress and how long it has taken so far: a build
		// shows "building 12s", not the step before it, frozen.
		return fmt.Sprintf("[%d/%d] %s%s", t.steps+1, len(jobs.Steps()), jobs.PhaseAfter(t.step), elapsed(t.since))
	case t.steps > 0:
		return fmt.Sprintf("[%d/%d] %s", t.steps, len(jobs.Steps()), t.step)
	case t.state == stateWaiting:
		return "submitting"
	case t.sub != nil && t.sub.Duplicate:
		return "queued (duplicate id)"
	}
	return "queued" + elapsed(t.since)
}

func truncate(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:max(width-1, 0)]) + "…"
}
