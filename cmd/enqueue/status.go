package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/spf13/cobra"
)

// idPattern and tenantPattern are the request's own rules (see
// jobs.Request.Validate). They are checked here because both are used in
// subjects and keys, where "*" or ">" would match other requests.
var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	tenantPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
)

func checkID(id string) error {
	if !idPattern.MatchString(id) {
		return usagef("request id %q: must be 1 to 128 characters of A-Z a-z 0-9 _ -", id)
	}
	return nil
}

func checkTenant(tenant string) error {
	if tenant != "" && !tenantPattern.MatchString(tenant) {
		return usagef("tenant %q: must be 1 to 63 characters of a-z 0-9 _ -, starting with a letter or digit", tenant)
	}
	return nil
}

func statusCommand(ctx context.Context, e env, conn *natsConfig) *cobra.Command {
	var tenant string
	var asJSON bool
	c := &cobra.Command{
		Use:   "status ID [flags]",
		Short: "show a request's job state and last event, or that it is queued",
		Long: `Prints the job's status, the phase it is in, project, URL, claim URL,
attempts, errors and last event; for a request no worker has taken yet,
that it is queued and since when. Exit status 1 when the id is unknown.`,
	}
	c.Flags().StringVar(&tenant, "tenant", "", "the request's tenant (found without it, with one lookup more)")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"state": <job checkpoint>, "last": <last CloudEvent>} as JSON`)
	return command(c, func(pos []string) int { return runStatus(ctx, e, *conn, pos, tenant, asJSON) })
}

func runStatus(ctx context.Context, e env, conn natsConfig, pos []string, tenant string, asJSON bool) int {
	if len(pos) != 1 {
		fmt.Fprintln(e.stderr, "enqueue status: give exactly one request id")
		return exitUsage
	}
	id := pos[0]
	if err := errors.Join(checkID(id), checkTenant(tenant), conn.validate()); err != nil {
		fmt.Fprintf(e.stderr, "enqueue status: %v\n", err)
		return exitUsage
	}
	sess, err := connect(ctx, conn)
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue status: %v\n", err)
		return exitFailed
	}
	defer sess.close()

	st, err := sess.client.Status(ctx, tenant, id)
	if errors.Is(err, jobs.ErrUnknownRequest) {
		fmt.Fprintf(e.stderr, "enqueue status: request %s: %v\n", id, err)

		return exitFailed
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "enqueue status: request %s: %v\n", id, err)
		return exitFailed
	}
	if asJSON {
		data, err := json.Marshal(struct {
			State  *jobs.JobState      `json:"state"`
			Last   *jobs.Event         `json:"last"`
			Queued *jobs.QueuedRequest `json:"queued,omitempty"`
		}{st.State, st.Last, st.Queued})
		if err != nil {
			fmt.Fprintf(e.stderr, "enqueue status: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(e.stdout, "%s\n", data)
		return exitOK
	}
	writeStatus(e.stdout, id, st)
	return exitOK
}

// writeStatus prints what is known of a request, one labelled fact per
// line, leaving out what does not apply yet.
func writeStatus(w io.Writer, id string, st *jobs.JobStatus) {
	s, last := st.State, st.Last
	terminal := last
	if s != nil && s.Terminal != nil {
		terminal = s.Terminal
	}
	if terminal != nil && !terminal.Terminal() {
		terminal = nil
	}
	var rows []detail
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, detail{k, v})
		}
	}
	add("request", id)
	switch {
	case s != nil:
		add("tenant", s.Tenant)
		add("status", string(s.Status))
		if s.Step != "" {
			add("last step", fmt.Sprintf("%s (%d/%d)", s.Step, stepOf(s.Step), len(jobs.Steps())))
		}
		project := s.ProjectID
		if s.ProjectName != "" {
			project += " (" + s.ProjectName + ")"
		}
		add("project", strings.TrimSpace(project))
		add("database", s.StoreID)
		add("deploy", s.DeploymentID)
		add("url", s.PublicURL())
		if s.URL != "" {
			add("deployment url", s.DeploymentURL)
		}
	case st.Queued != nil:
		q := st.Queued
		add("tenant", q.Tenant)
		add("status", "queued: waiting for a worker since "+formatTime(q.Submitted)+" ("+time.Since(q.Submitted).Round(time.Second).String()+")")
		add("stream", fmt.Sprintf("%s #%d (%s)", jobs.StreamRequests, q.Sequence, q.Subject))
	case last != nil:
		add("tenant", last.Data.Tenant)
		if last.Terminal() {
			add("status", last.Short())
		} else {
			add("status", "running")
		}
	}
	if terminal != nil {
		if s == nil || s.PublicURL() == "" {
			add("url", terminal.Data.URL)
		}
		add("claim", terminal.Data.ClaimURL)
	}
	if s != nil {
		add("attempts", strconv.Itoa(s.Attempts)+" failed")
		add("submitted", formatTime(s.SubmittedAt))
		add("updated", formatTime(s.UpdatedAt))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "%-10s %s\n", r.key, r.value)
	}
	if s != nil && len(s.Errors) > 0 {
		fmt.Fprintln(w, "errors")
		for _, ae := range s.Errors {
			fmt.Fprintf(w, "  %s %s %s/%s: %s\n", formatTime(ae.At), ae.Step, ae.Class, ae.Reason, ae.Message)
		}
	}
	if last != nil {
		fmt.Fprintf(w, "%-10s %s %s\n", "last event", formatTime(last.Time), eventLine(last))
		if last.Terminal() {
			writeOutcome(w, last)
		}
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
