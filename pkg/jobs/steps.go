package jobs

// Pipeline steps, in order. The names are stable: they appear in events,
// checkpoints, metrics labels and the DLQ.
const (
	StepCreateProject    = "create_project"
	StepAuthorize        = "authorize_integration"
	StepCreateDatabase   = "create_database"
	StepConnectDatabase  = "connect_database"
	StepUploadSource     = "upload_source"
	StepCreateDeployment = "create_deployment"
	StepWaitReady        = "wait_ready"
	StepCreateClaim      = "create_claim"
)

// Steps returns the pipeline's steps in order.
func Steps() []string {
	return []string{
		StepCreateProject, StepAuthorize, StepCreateDatabase, StepConnectDatabase,
		StepUploadSource, StepCreateDeployment, StepWaitReady, StepCreateClaim,
	}
}

// nextStep returns the index of the first step after last ("" = none done).
func nextStep(last string) int {
	for i, s := range Steps() {
		if s == last {
			return i + 1
		}
	}
	return 0
}
