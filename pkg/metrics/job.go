package metrics

import (
	"time"
)

// Outcomes of a job, the values of the "outcome" label on the job metrics.
// Any other value is recorded as OutcomeOther.
const (
	OutcomeSuccess    = "success"
	OutcomeFailure    = "failure"
	OutcomeRejected   = "rejected"
	OutcomeCancelled  = "cancelled"
	OutcomeDeadLetter = "dead_letter"
	// OutcomeDuplicate is a message dropped because its request id
	// belongs to a job that already exists (a producer's late retry).
	OutcomeDuplicate = "duplicate"
	// OutcomeOther stands in for any value outside the lists above, so a
	// caller's mistake cannot create new series.
	OutcomeOther = other
)

// other replaces any label value outside its label's bounded set.
const other = "other"

// Outcomes of a pipeline step, the values of the "outcome" label of
// deployq_pipeline_step_duration_seconds. Any other value is recorded as
// OutcomeOther.
const (
	StepSuccess = "success"
	StepFailure = "failure"
	// StepRetry marks a step that failed in a way the pipeline will retry.
	StepRetry = "retry"
)

var outcomes = [...]string{OutcomeSuccess, OutcomeFailure, OutcomeRejected, OutcomeCancelled, OutcomeDeadLetter, OutcomeDuplicate}

func jobOutcome(o string) string {
	switch o {
	case OutcomeSuccess, OutcomeFailure, OutcomeRejected, OutcomeCancelled, OutcomeDeadLetter, OutcomeDuplicate:
		return o
	}
	return other
}

func stepOutcome(o string) string {
	switch o {
	case StepSuccess, StepFailure, StepRetry:
		return o
	}
	return other
}

// JobStarted records that a job began running. Pair every call with one
// JobFinished, or deployq_jobs_in_flight drifts.
func (m *Metrics) JobStarted() {
	if m == nil {
		return
	}
	m.jobsInFlight.Inc()
}

// JobFinished records the end of a job started with JobStarted: its outcome
// (one of the Outcome constants), the delivery attempts it took, and d, the
// time from enqueue to result.
func (m *Metrics) JobFinished(outcome string, attempts int, d time.Duration) {
	if m == nil {
		return
	}
	o := jobOutcome(outcome)
	m.jobsInFlight.Dec()
	m.jobsProcessed.WithLabelValues(o).Inc()
	// A counter panics on a negative add; a job with no recorded
	// delivery count simply adds nothing.
	if attempts > 0 {
		m.jobAttempts.WithLabelValues(o).Add(float64(attempts))
	}
	m.jobDuration.WithLabelValues(o).Observe(seconds(d))
	if o == OutcomeSuccess {
		// Only successes count: "last completed" answers whether the
		// worker still gets work done, which failures do not show.
		m.lastJobCompleted.SetToCurrentTime()
	}
}

// JobHandedBack records that a job started with JobStarted stopped without
// an outcome: it was handed back for another delivery (shutdown, lost
// lease, NATS trouble) and will be counted when some worker finishes it.
func (m *Metrics) JobHandedBack() {
	if m == nil {
		return
	}
	m.jobsInFlight.Dec()
}

// QueueWait records how long a request waited from publication to its first
// pipeline step.
func (m *Metrics) QueueWait(d time.Duration) {
	if m == nil {
		return
	}
	m.queueWait.Observe(seconds(d))
}

// StepFinished records one run of a pipeline step. step comes from the
// pipeline's fixed list of step names; outcome is StepSuccess, StepFailure
// or StepRetry.
func (m *Metrics) StepFinished(step, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.stepDuration.WithLabelValues(m.steps.value(step), stepOutcome(outcome)).Observe(seconds(d))
}

// Redelivered records that a request arrived again because an earlier
// delivery was neither acknowledged nor finished in time.
func (m *Metrics) Redelivered() {
	if m == nil {
		return
	}
	m.redeliveries.Inc()
}

// DeadLettered records that a request was moved to the dead-letter stream.
// reason comes from the caller's fixed list, such as "max_deliveries".
func (m *Metrics) DeadLettered(reason string) {
	if m == nil {
		return
	}
	m.deadLettered.WithLabelValues(m.reasons.value(reason)).Inc()
}

// DeclareDeadLetterReasons creates the dead-letter series of each reason at
// zero. A counter that first appears with the value 1 hides that first
// dead letter from increase() and rate(), and so from the alerts on them;
// the worker declares its reasons when it starts.
func (m *Metrics) DeclareDeadLetterReasons(reasons ...string) {
	if m == nil {
		return
	}
	for _, r := range reasons {
		m.deadLettered.WithLabelValues(m.reasons.value(r))
	}
}
