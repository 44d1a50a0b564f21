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

// PhaseAfter names what a running request does once step is done (""
// before the first): the step in progress, as a person would say it.
// The CLI's live table and the console show it.
func PhaseAfter(step Step) string {
	switch step {
	case "":
		return "creating project"
	case StepCreateProject:
		return "authorizing Prisma"
	case StepAuthorize:
		return "creating database"
	case StepCreateDatabase:
		return "connecting database"
	case StepConnectDatabase:
		return "uploading source"
	case StepUploadSource:
		return "creating deployment"
	case StepCreateDeployment:
		return "building"
	case StepWaitReady:
		return "issuing claim code"
	}
	return "finishing"
}
