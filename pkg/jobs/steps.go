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
