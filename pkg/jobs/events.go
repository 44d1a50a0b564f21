package jobs

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EventVersion is the version of the event data schema (docs/EVENTS.md).
const EventVersion = 1

// EventType is an event's CloudEvents type.
type EventType string

// Event types. A request gets one TypeStepCompleted event per pipeline
// step it passes and exactly one terminal event.
const (
	TypeStepCompleted EventType = "dev.deployq.deploy.step_completed"
	TypeSucceeded     EventType = "dev.deployq.deploy.succeeded"
	TypeFailed        EventType = "dev.deployq.deploy.failed"
	TypeRejected      EventType = "dev.deployq.deploy.rejected"
	TypeCancelled     EventType = "dev.deployq.deploy.cancelled"
	// TypeClaimed and TypeExpired are about an app, not a request: its
	// user took it over, or it went unclaimed past its TTL and was
	// deleted. One each per app, on the events subject of the app's id.
	TypeClaimed EventType = "dev.deployq.app.claimed"
	// TypeWaiting says a request's step waits for something outside it
	// (Waiting: WaitingBudget, WaitingBuildSlot); informative, like
	// step_completed, and followed by the step's own event.
	TypeWaiting EventType = "dev.deployq.deploy.waiting"
	TypeExpired EventType = "dev.deployq.app.expired"
)

// eventSource is the CloudEvents source of every event deployq writes.
const eventSource = "/deployq/worker"

// EventDataSchema identifies the schema of Event.Data.
const EventDataSchema = "urn:deployq:schema:event:1"

// Event is a CloudEvents 1.0 event in structured JSON form. Its ID is also
// the Nats-Msg-Id it is published with, so a worker that publishes the same
// event twice (after a crash) leaves one copy in the stream.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            EventType `json:"type"`
	Subject         string    `json:"subject"` // the request id
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	DataSchema      string    `json:"dataschema"`
	Data            EventData `json:"data"`
}

// EventData is the payload of every event type; fields that do not apply
// to a type are omitted.
type EventData struct {
	Version   int    `json:"version"`
	RequestID string `json:"requestId"`
	Tenant    string `json:"tenant"`
	// Step is the step just completed (step_completed) or the step that
	// failed (failed, cancelled).
	Step Step `json:"step,omitempty"`
	// Attempt counts deliveries of the request to a worker, from 1.
	Attempt int `json:"attempt,omitempty"`
	// Run is 2, 3, … for a request replayed from the DLQ; omitted on the
	// first run.
	Run int `json:"run,omitempty"`

	// App is the app the request deployed a version of, AppVersion that
	// version's number (1 made the app).
	App        string `json:"app,omitempty"`
	AppVersion int    `json:"appVersion,omitempty"`

	ProjectID    string `json:"projectId,omitempty"`
	ProjectName  string `json:"projectName,omitempty"`
	StoreID      string `json:"storeId,omitempty"`
	DeploymentID string `json:"deploymentId,omitempty"`
	// URL is the deploy's public URL: the project's production domain.
	URL string `json:"url,omitempty"`
	// DeploymentURL is the deployment's own generated URL; under
	// Vercel's Standard Protection it asks visitors to log in to Vercel,
	// so it is for the platform, not the end user.
	DeploymentURL string `json:"deploymentUrl,omitempty"`
	ClaimCode     string `json:"claimCode,omitempty"`
	ClaimURL      string `json:"claimUrl,omitempty"`

	// Error describes why a request failed or was rejected.
	Error *EventError `json:"error,omitempty"`
	// Cleaned lists the resources deleted after a failure ("database",
	// "project"); resources kept for inspection are not listed.
	Cleaned []string `json:"cleaned,omitempty"`
	// DurationMs is the time from submit to this terminal event.
	DurationMs int64 `json:"durationMs,omitempty"`

	// Waiting is what a waiting event's step waits for, and Endpoint the
	// API endpoint whose budget it waits on.
	Waiting  string `json:"waiting,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`

	// ClaimedVia says how a claim was learned (callback, check);
	// Database what became of the claimed app's database (moved, stayed,
	// or omitted when unknown).
	ClaimedVia string `json:"claimedVia,omitempty"`
	Database   string `json:"database,omitempty"`
}

// EventError is the reason of a failed or rejected request.
type EventError struct {
	Step    Step   `json:"step,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"` // the request field at fault, for rejections
	// RetryAt is, for a request rejected for its tenant's spent quota,
	// when the quota allows another deploy.
	RetryAt *time.Time `json:"retryAt,omitempty"`
	// Logs are a failed build's last log lines (at most FailedLogLines),
	// so a platform can show its user why the build broke.
	Logs []string `json:"logs,omitempty"`
}

// Codes of rejections: a request that was never run.
const (
	// CodeInvalidRequest rejects a request that cannot run as written;
	// Field names the field at fault.
	CodeInvalidRequest = "invalid_request"
	// CodeQuotaExceeded rejects a request that asked for rejection
	// (OverQuotaReject) when its tenant's quota was spent at its turn.
	CodeQuotaExceeded = "quota_exceeded"
)

// Terminal reports whether the event ends its request.
func (e *Event) Terminal() bool { return e.Type.Terminal() }

// Terminal reports whether events of type t end their request.
func (t EventType) Terminal() bool {
	switch t {
	case TypeSucceeded, TypeFailed, TypeRejected, TypeCancelled:
		return true
	}
	return false
}

// HeaderEventType repeats an event's type on its message, so that a
// reader that wants some types only (a platform waiting for outcomes
// skips the eight progress events of each deploy) can pass over the
// others without decoding them. Events from before the header have
// none and must be decoded.
const HeaderEventType = "Deployq-Event-Type"

// Msg is the message that publishes e on its request's subject, with its
// id as the dedup key and its type in HeaderEventType.
func (e *Event) Msg() (*nats.Msg, error) {
	data, err := jsonMarshal(e)
	if err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: EventSubject(e.Data.Tenant, e.Subject), Data: data, Header: make(nats.Header, 2)}
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Header.Set(HeaderEventType, string(e.Type))
	return m, nil
}

// Short returns the last part of the event type ("succeeded", "step_completed").
func (e *Event) Short() string { return e.Type.Short() }

// Short returns the last part of t ("succeeded", "step_completed").
func (t EventType) Short() string {
	s := string(t)
	return s[strings.LastIndexByte(s, '.')+1:]
}

func newEvent(typ EventType, eventID string, at time.Time, data EventData) Event {
	data.Version = EventVersion
	return Event{
		SpecVersion:     "1.0",
		ID:              eventID,
		Source:          eventSource,
		Type:            typ,
		Subject:         data.RequestID,
		Time:            at.UTC(),
		DataContentType: "application/json",
		DataSchema:      EventDataSchema,
		Data:            data,
	}
}

// Event is an event of type typ about the job, as its state stands: the
// one place events are built from a checkpoint. step is the step just
// completed (TypeStepCompleted) or where the job ended (failed, rejected,
// cancelled), "" for a success; attempt counts the deliveries of the
// request's message (0: none, the field is omitted). A success carries
// the live URL and the claim code; its claim URL is the worker's to add.
func (s *JobState) Event(typ EventType, step Step, attempt int, at time.Time) Event {
	data := EventData{RequestID: s.ID, Tenant: s.Tenant, Step: step, Attempt: attempt, Run: runField(s.Run),
		App: s.App, AppVersion: s.AppVersion, ProjectID: s.ProjectID, ProjectName: s.ProjectName, StoreID: s.StoreID, DeploymentID: s.DeploymentID}
	id := terminalEventID(s.Tenant, s.ID, s.Run)
	switch typ {
	case TypeStepCompleted:
		id = stepEventID(s.Tenant, s.ID, s.Run, step)
		data.URL, data.DeploymentURL = s.PublicURL(), s.deploymentURL()
	case TypeSucceeded:
		data.URL, data.DeploymentURL, data.ClaimCode = s.PublicURL(), s.deploymentURL(), s.ClaimCode
	}
	if typ.Terminal() && !s.SubmittedAt.IsZero() {
		data.DurationMs = at.Sub(s.SubmittedAt).Milliseconds()
	}
	return newEvent(typ, id, at, data)
}

// What a waiting event waits for.
const (
	WaitingBudget    = "api_budget" // the fleet's API budget for Endpoint
	WaitingBuildSlot = "build_slot" // the team's concurrent builds are full
	WaitingQuota     = "quota"      // the tenant's quota is spent (before the first step)
)

// WaitingEvent is the event saying that request id's step waits for
// what (WaitingBudget, WaitingBuildSlot), since at. Built from the
// request's identity alone, so it can be made off the job's goroutine.
func WaitingEvent(tenant, id string, run int, step Step, what, endpoint string, at time.Time) Event {
	data := EventData{RequestID: id, Tenant: tenant, Step: step, Run: runField(run), Waiting: what, Endpoint: endpoint}
	eid := tenant + "." + id + ".wait." + string(step) + "." + strconv.FormatInt(at.UnixNano(), 36) + runSuffix(run)
	return newEvent(TypeWaiting, eid, at, data)
}

// runField is the event's run field: omitted for the first run.
func runField(run int) int {
	if run <= 1 {
		return 0
	}
	return run
}

// stepEventID and terminalEventID are the dedup keys of events: one per
// step and one terminal per run of a request, whatever the number of
// deliveries. A replay is a new run with ids of its own. They start with
// the tenant: request ids are scoped by tenant, and one tenant's events
// must never take the dedup keys of another's.
func stepEventID(tenant, requestID string, run int, step Step) string {
	return tenant + "." + requestID + ".step." + string(step) + runSuffix(run)
}

func terminalEventID(tenant, requestID string, run int) string {
	return tenant + "." + requestID + ".terminal" + runSuffix(run)
}

func runSuffix(run int) string {
	if run <= 1 {
		return ""
	}
	return ".r" + strconv.Itoa(run)
}

// DecodeEvent parses an event from the events stream.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	if e.SpecVersion != "1.0" || e.Type == "" {
		return Event{}, fmt.Errorf("decode event: not a deployq CloudEvent (specversion %q, type %q)", e.SpecVersion, e.Type)
	}
	return e, nil
}

// deploymentURL is the deployment's own URL when it is known apart from
// the public one.
func (s *JobState) deploymentURL() string {
	if s.URL == "" {
		return ""
	}
	return s.DeploymentURL
}
