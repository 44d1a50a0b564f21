package jobs

// Step names one step of the pipeline. The names are stable: they appear
// in events, checkpoints, metrics labels and the DLQ.
type Step string

// Pipeline steps, in order.
const (
	StepCreateProject    Step = "create_project"
	StepAuthorize        Step = "authorize_integration"
	StepCreateDatabase   Step = "create_database"
	StepConnectDatabase  Step = "connect_database"
	StepUploadSource     Step = "upload_source"
	StepCreateDeployment Step = "create_deployment"
	StepWaitReady        Step = "wait_ready"
	StepCreateClaim      Step = "create_claim"
)

// Steps returns the pipeline's steps in order.
func Steps() []Step {
	return []Step{
		StepCreateProject, StepAuthorize, StepCreateDatabase, StepConnectDatabase,
		StepUploadSource, StepCreateDeployment, StepWaitReady, StepCreateClaim,
	}
}

// nextStep returns the index of the first step after last ("" = none done).
func nextStep(last Step) int {
	for i, s := range Steps() {
		if s == last {
			return i + 1
		}
	}
	return 0
}

// checkpointAfter reports whether a step's success is saved at once. The
// steps that create something (project, authorization, database,
// deployment) are, so that a redelivery finds their ids instead of looking
// them up. The others are safe to run again and cost one cheap call each
// if they do: connecting an already connected database counts as done,
// an upload is claimed once per team, a READY deployment answers at once
// (its id and creation time are saved), and a second transfer code is
// harmless. Their state rides along with the next save: the one before
// the next creating step, or the terminal one. That spares a round trip
// to the stream leader for each.
func checkpointAfter(step Step) bool {
	switch step {
	case StepConnectDatabase, StepUploadSource, StepWaitReady, StepCreateClaim:
		return false
	}
	return true
}
