// Package jobs is deployq's wire contract and its producer: what a deploy
// request and its events are, where they travel, how a job's checkpoint
// records its progress, and the Client that platforms use to submit and
// follow deploys. The workers that run the requests are in
// pkg/jobs/worker; this package does not depend on them, on Prometheus
// or on the Vercel client, so a producer links NATS and little else.
//
// # Producing
//
// Client.Submit stores a request's source tarball (SourceStore, once per
// tenant and content) and publishes the request on its own subject,
// deploy.requests.<tenant>.<id> (RequestSubject). Submitting an id again
// never deploys twice: the publish expects the subject to be empty, and
// a job that already started is reported as a duplicate. SubmitBatch
// does the same for many requests of one tarball with their round trips
// pipelined. A client made for one tenant's NATS user
// (ClientConfig.Tenant) does all of this with that user's grants alone.
//
// # Following
//
// Every request gets one step_completed event per pipeline step it passes
// and exactly one terminal event: succeeded (with the live URL and the
// claim URL), failed, rejected or cancelled (EventType). Events are
// CloudEvents on deploy.events.<tenant>.<id>; Client.Watch follows them,
// Client.Status reads a job's checkpoint and last event.
//
// # Steering
//
// Client.Cancel stops a queued or running job; Client.Replay runs a
// dead-lettered request again under its id (a new run, whose events carry
// the run number); DeadLetters, DeadLetter and PurgeDeadLetters read and
// clear the dead-letter stream.
//
// # The checkpoint
//
// A job's state (JobState) lives in the DEPLOY_JOBS bucket. Checkpoint
// holds every transition of it (checkpoint.go draws the state machine),
// each a compare-and-set, so the worker, Cancel, Replay and the
// max-deliveries clean-up never overwrite one another, and a worker that
// lost its lease is fenced out (ErrLeaseLost).
//
// # Assets
//
// Setup creates the streams, buckets and the shared consumer, all named
// in subjects.go; each tenant's requests get a consumer of their own
// (Assets.TenantConsumer), which workers create when the tenant first has
// work. docs/ARCHITECTURE.md describes a job's life in full and
// docs/EVENTS.md the events.
package jobs
