package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/deployq/deployq/internal/clock"
	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// The pipeline's steps. Each is a method of the job, reads what earlier
// steps recorded in its checkpoint state, records the ids it creates
// there, and is safe to run again: a step whose resource exists already
// (an id in the state, or found by its name after an attempt whose answer
// was lost) does not create a second one.

// step is one step of the pipeline, in the table Pipeline.steps.
type step struct {
	name jobs.Step
	do   func(j *job, ctx context.Context) error
	// save: the step's success is saved at once. The steps that create
	// something (project, authorization, database, deployment) are, so
	// that a redelivery finds their ids instead of looking them up. The
	// others are safe to run again and cost one cheap call each if they
	// do: connecting an already connected database counts as done, an
	// upload is claimed once per team, a READY deployment answers at
	// once (its id and creation time are saved), and a second transfer
	// code is harmless. Their state rides along with the next save: the
	// one before the next creating step, or the terminal one. That spares
	// a round trip to the stream leader for each.
	save bool
}

// pipelineSteps is the pipeline, in order; jobs.Steps names the same
// steps for producers.
func pipelineSteps() []step {
	return []step{
		{jobs.StepCreateProject, (*job).createProject, true},
		{jobs.StepAuthorize, (*job).authorize, true},
		{jobs.StepCreateDatabase, (*job).createDatabase, true},
		{jobs.StepConnectDatabase, (*job).connectDatabase, false},
		{jobs.StepUploadSource, (*job).uploadStep, false},
		{jobs.StepCreateDeployment, (*job).createDeployment, true},
		{jobs.StepWaitReady, (*job).waitReady, false},
		{jobs.StepCreateClaim, (*job).createClaim, false},
	}
}

// fenced is ctx for a creating call: the fence runs again right before
// the call is sent, after its budget wait, so a worker that lost the job
// meanwhile creates nothing.
func (j *job) fenced(ctx context.Context) context.Context {
	return vercel.WithBeforeSend(ctx, j.fence)
}

func (j *job) createProject(ctx context.Context) error {
	ctx = j.fenced(ctx)
	if j.st.ProjectID == "" {
		if err := j.makeProject(ctx); err != nil {
			return err
		}
	}
	if err := j.addDomain(ctx); err != nil {
		var taken *vercel.DomainTakenError
		if errors.As(err, &taken) {
			return domainTaken(taken.Domain, err)
		}
		return err
	}
	return nil
}

// makeProject creates the app's project, or adopts the one an earlier
// attempt created.
func (j *job) makeProject(ctx context.Context) error {
	name := jobs.ProjectName(j.req)
	env := make([]vercel.EnvVar, 0, len(j.req.Env))
	for _, k := range slices.Sorted(maps.Keys(j.req.Env)) {
		env = append(env, vercel.EnvVar{Key: k, Value: j.req.Env[k], Type: "encrypted",
			Target: []string{"production", "preview", "development"}})
	}
	proj, _, err := j.p.api.CreateProject(ctx, vercel.CreateProjectRequest{
		Name: name, Framework: j.req.Framework, EnvironmentVariables: env,
	})
	var apiErr *vercel.APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == 409 {
		// The name is derived from this request's app: a project holding
		// it was created by an earlier attempt whose answer was lost.
		proj, _, err = j.p.api.GetProject(ctx, name)
	}
	if err != nil {
		return err
	}
	j.st.ProjectID, j.st.ProjectName = proj.ID, proj.Name
	return nil
}

func (j *job) region() string {
	if j.req.Region != "" {
		return j.req.Region
	}
	return j.p.cfg.Region
}

func (j *job) authorize(ctx context.Context) error {
	if j.st.AuthorizationID != "" || j.p.api.StoreRouteDirect() {
		// Stores created through the documented route authorize the
		// billing plan themselves.
		return nil
	}
	auth, ok := j.early.auth.take(ctx)
	j.early.auth = nil
	if !ok {
		var err error
		if auth, err = j.authorization(j.fenced(ctx)); err != nil {
			return err
		}
	}
	switch auth.Status {
	case vercel.AuthorizationSucceeded:
		j.st.AuthorizationID = auth.ID
		return nil
	case vercel.AuthorizationRequiresAction:
		// Vercel asks a person to confirm the team's payment method in a
		// browser (its CLI opens this page and waits). Nobody is there to
		// do it for a queued deploy: say what to do, and where.
		return &StepError{Step: jobs.StepAuthorize, Code: "authorization_requires_action",
			Err: fmt.Errorf("a person must confirm the team's payment method for the Prisma integration on Vercel: open %s in a browser as a team owner, then submit the deploy again",
				vercel.AuthorizationActionURL(j.p.api.TeamID(), auth.ID))}
	case vercel.AuthorizationFailed:
		return &StepError{Step: jobs.StepAuthorize, Code: "authorization_failed",
			Err: fmt.Errorf("the integration's billing authorization %s was refused: change the team's payment method in Vercel's dashboard, then submit the deploy again", auth.ID)}
	}
	return &StepError{Step: jobs.StepAuthorize, Code: "authorization_unknown_status",
		Err: fmt.Errorf("integration authorization %s has status %q, which deployq does not know", auth.ID, auth.Status)}
}

// authorization creates the billing authorization and, while it is
// pending, asks for it again until it is decided.
func (j *job) authorization(ctx context.Context) (*vercel.Authorization, error) {
	meta, _ := json.Marshal(map[string]string{"region": j.region()})
	auth, _, err := j.p.api.AuthorizeIntegration(ctx, vercel.AuthorizeRequest{
		IntegrationIDOrSlug:        "prisma",
		ProductID:                  j.p.cfg.ProductID,
		BillingPlanID:              j.p.cfg.BillingPlan,
		Metadata:                   string(meta),
		IntegrationConfigurationID: j.p.cfg.IntegrationConfigID,
	})
	if err != nil {
		return nil, err
	}
	return j.awaitAuthorization(ctx, auth)
}

// authorizationWait bounds how long a pending authorization is asked
// again within one attempt of the step; past it the step is retried
// (with a new authorization) like any transient failure.
const authorizationWait = 2 * time.Minute

// awaitAuthorization asks a pending authorization again, as Vercel's CLI
// does, until it is decided; each ask spends the authorize budget. The
// asks are spaced from 250 ms, doubling to 5 s.
func (j *job) awaitAuthorization(ctx context.Context, auth *vercel.Authorization) (*vercel.Authorization, error) {
	deadline := j.now().Add(authorizationWait)
	wait := 250 * time.Millisecond
	for auth.Status == vercel.AuthorizationPending {
		if j.now().After(deadline) {
			return nil, fmt.Errorf("integration authorization %s still pending after %s", auth.ID, authorizationWait)
		}
		if err := clock.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(2*wait, 5*time.Second)
		next, _, err := j.p.api.GetAuthorization(ctx, auth.ID)
		if err != nil {
			return nil, err
		}
		auth = next
	}
	return auth, nil
}

func (j *job) createDatabase(ctx context.Context) error {
	ctx = j.fenced(ctx)
	if j.st.StoreID != "" {
		return nil
	}
	name := jobs.StoreName(j.req)
	if j.uncertain {
		// A store may exist from an attempt whose answer was lost; its
		// name is derived from the request id, so it is ours.
		id, err := j.findStore(ctx, name)
		if err != nil {
			return err
		}
		if id != "" {
			j.st.StoreID, j.st.StoreName = id, name
			return nil
		}
	}
	store, _, err := j.p.api.CreateStore(ctx, vercel.CreateStoreRequest{
		Name:                       name,
		IntegrationConfigurationID: j.p.cfg.IntegrationConfigID,
		IntegrationProductIDOrSlug: j.p.cfg.ProductID,
		BillingPlanID:              j.p.cfg.BillingPlan,
		Metadata:                   map[string]any{"region": j.region()},
		AuthorizationID:            j.st.AuthorizationID,
		Source:                     "marketplace",
	})
	if err != nil {
		return err
	}
	j.st.StoreID, j.st.StoreName = store.ID, name
	return nil
}

// findStore looks for the team's store named name: in the team's stores,
// as Vercel's CLI lists them, else in the integration's resources (a
// listing Vercel documents for integration providers). A listing refused
// to this token (403) or not served (404) passes to the next; with none,
// the store is created without looking (and the API refuses the name if
// the lost attempt made it, saying so).
func (j *job) findStore(ctx context.Context, name string) (string, error) {
	listings := []func() ([]vercel.Resource, error){
		func() ([]vercel.Resource, error) { res, _, err := j.p.api.ListStores(ctx); return res, err },
		func() ([]vercel.Resource, error) {
			res, _, err := j.p.api.ListResources(ctx, j.p.cfg.IntegrationConfigID)
			return res, err
		},
	}
	for _, list := range listings {
		res, err := list()
		var apiErr *vercel.APIError
		if errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusForbidden || apiErr.StatusCode == http.StatusNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		for _, x := range res {
			if x.Name == name {
				return x.InternalID, nil
			}
		}
		return "", nil
	}
	j.logger().Warn("the API lists no stores to this token; creating the database without looking")
	return "", nil
}

func (j *job) connectDatabase(ctx context.Context) error {
	// The client treats "already connected" as success, so a retry after a
	// lost answer is harmless.
	_, err := j.p.api.ConnectStore(ctx, vercel.ConnectStoreRequest{
		IntegrationConfigurationID: j.p.cfg.IntegrationConfigID,
		ProductID:                  j.p.cfg.ProductID,
		StoreID:                    j.st.StoreID,
		ProjectID:                  j.st.ProjectID,
	})
	return err
}

func (j *job) uploadKey() string {
	team := j.p.api.TeamID()
	if team == "" {
		team = "personal"
	}
	return team + "." + j.req.Source.SHA1
}

// Values of an upload key.
var (
	uploadInProgress = []byte("uploading")
	uploadDone       = []byte("done")
)

// uploadClaimTTL is how long an "uploading" claim holds others back; a
// claim older than that belongs to a worker that died mid-upload.
const uploadClaimTTL = 2 * time.Minute

// uploadStep takes the early upload (early.go), or uploads.
func (j *job) uploadStep(ctx context.Context) error {
	_, ok := j.early.upload.take(ctx)
	j.early.upload = nil
	if ok {
		return nil
	}
	return j.uploadSource(ctx)
}

// uploadSource sends the tarball to Vercel once per team, fleet-wide: the
// job that creates the team's upload key uploads while jobs needing the
// same tarball wait for it to say done. Should that upload fail or Vercel
// forget the file, create deployment's missing_files round trip uploads it.
func (j *job) uploadSource(ctx context.Context) error {
	if j.p.uploads == nil {
		return j.upload(ctx)
	}
	key := j.uploadKey()
	for range 3 {
		rev, err := j.p.uploads.Create(ctx, key, uploadInProgress)
		if err == nil {
			return j.uploadClaimed(ctx, key, rev)
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("claim upload: %w", err)
		}
		e, err := j.p.uploads.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released meanwhile: try to claim it
		}
		if err != nil {
			return fmt.Errorf("read upload claim: %w", err)
		}
		switch {
		case bytes.Equal(e.Value(), uploadDone):
			return nil
		case j.now().Sub(e.Created()) > uploadClaimTTL:
			rev, err := j.p.uploads.Update(ctx, key, uploadInProgress, e.Revision())
			if err == nil {
				return j.uploadClaimed(ctx, key, rev)
			}
			continue
		}
		if done, err := j.waitUpload(ctx, key); err != nil || done {
			return err
		}
	}
	return nil // the deployment's missing_files round trip covers the rest
}

func (j *job) uploadClaimed(ctx context.Context, key string, rev uint64) error {
	if err := j.upload(ctx); err != nil {
		// Give the claim back so another job uploads instead of waiting.
		_ = j.p.uploads.Delete(context.WithoutCancel(ctx), key, jetstream.LastRevision(rev))
		return err
	}
	// Best effort: a lost "done" costs waiting jobs one claim TTL at most.
	_, _ = j.p.uploads.Update(ctx, key, uploadDone, rev)
	return nil
}

func (j *job) upload(ctx context.Context) error {
	data, err := j.p.readSource(ctx, j.req.Tenant, j.req.Source)
	if err != nil {
		return err
	}
	_, err = j.p.api.UploadFile(ctx, j.req.Source.SHA1, data)
	return err
}

// waitUpload follows another job's upload of the same tarball. It reports
// done when it finished, false when it was given back (so this job may
// claim it) or the claim outlived its TTL.
func (j *job) waitUpload(ctx context.Context, key string) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, uploadClaimTTL)
	defer cancel()
	w, err := j.p.uploads.Watch(wctx, key)
	if err != nil {
		return false, fmt.Errorf("watch upload claim: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e := <-w.Updates():
			switch {
			case e == nil:
			case e.Operation() != jetstream.KeyValuePut:
				return false, nil
			case bytes.Equal(e.Value(), uploadDone):
				return true, nil
			}
		case <-wctx.Done():
			if ctx.Err() != nil {
				return false, context.Cause(ctx)
			}
			return false, nil
		}
	}
}

const metaRequestID = "deployqRequestId"

func (j *job) createDeployment(ctx context.Context) error {
	ctx = j.fenced(ctx)
	if j.st.DeploymentID != "" {
		return nil
	}
	if j.uncertain {
		// A create whose answer was lost started a build; find it by the
		// request id it carries in meta rather than start a second one.
		list, _, err := j.p.api.ListDeployments(ctx, vercel.ListDeploymentsOptions{ProjectID: j.st.ProjectID, Limit: 20})
		if err != nil {
			return err
		}
		for _, d := range list {
			if d.Meta[metaRequestID] == j.req.ID {
				j.st.DeploymentID, j.st.DeployedAt = d.ID, j.now()
				return nil
			}
		}
	}
	req := vercel.CreateDeploymentRequest{
		Name:    j.st.ProjectName,
		Project: j.st.ProjectID,
		Files: []vercel.DeploymentFile{{
			File: ".vercel/source.tgz", SHA: j.req.Source.SHA1, Size: j.req.Source.Size,
		}},
		Target: j.p.cfg.Target,
		Meta:   map[string]string{metaRequestID: j.req.ID, "deployqTenant": j.req.Tenant},
	}
	// A project's first deployment must carry projectSettings; without a
	// framework preset they say "Other".
	req.ProjectSettings = &vercel.ProjectSettings{Framework: j.req.Framework}
	// The missing_files round trip asks for files by SHA-1: this
	// request's tenant's.
	files := vercel.FileSourceFunc(func(ctx context.Context, sha string) ([]byte, error) {
		return j.p.readSource(ctx, j.req.Tenant, jobs.SourceRef{SHA1: sha})
	})
	d, _, err := j.p.api.CreateDeploymentUploading(ctx, req, files)
	if err != nil {
		return err
	}
	j.st.DeploymentID, j.st.DeployedAt = d.ID, j.now()
	return nil
}

func (j *job) createClaim(ctx context.Context) error {
	if j.st.ClaimCode != "" {
		return nil
	}
	code, ok := j.early.claim.take(ctx)
	j.early.claim = nil
	if ok {
		j.st.ClaimCode, j.st.ClaimIssuedAt = code, j.now()
		return nil
	}
	tc, _, err := j.p.api.CreateTransferRequest(ctx, j.st.ProjectID, j.w.transferRequest(j.req.Tenant, j.req.AppID()))
	if err != nil {
		return err
	}
	j.st.ClaimCode, j.st.ClaimIssuedAt = tc.Code, j.now()
	return nil
}
