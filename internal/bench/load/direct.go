package load

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
	"github.com/nats-io/nats.go/jetstream"
)

// direct runs item 1(b)'s jobs: what the pipeline does for a job, made
// by this benchmark with no message, checkpoint, lease or event around
// it. Like a worker it looks the tarball up in the source store before
// the first step, claims its upload once per team in DEPLOY_UPLOADS (one
// job uploads, the others find it done), makes the same API calls in the
// same order, and asks for the deployment's state once after creating it
// (a worker's one poll at the build's expected end). It has no retries:
// the simulator of item 1 has no faults and no limits, so a failed call
// fails the job, and the job is counted.
type direct struct {
	api     *vercel.Client
	sources *jobs.SourceStore
	uploads jetstream.KeyValue
	team    string
}

func (d *direct) deploy(ctx context.Context, req *jobs.Request) error {
	if _, err := d.sources.Stat(ctx, req.Tenant, req.Source.SHA1); err != nil {
		return fmt.Errorf("source check: %w", err)
	}
	proj, _, err := d.api.CreateProject(ctx, vercel.CreateProjectRequest{Name: jobs.ProjectName(req), Framework: req.Framework})
	if err != nil {
		return err
	}
	auth, _, err := d.api.AuthorizeIntegration(ctx, vercel.AuthorizeRequest{IntegrationIDOrSlug: "prisma",
		ProductID: productID, BillingPlanID: "partnerEntry", Metadata: `{"region":"iad1"}`, IntegrationConfigurationID: integrationConfigID})
	if err != nil {
		return err
	}
	store, _, err := d.api.CreateStore(ctx, vercel.CreateStoreRequest{Name: jobs.StoreName(req), IntegrationConfigurationID: integrationConfigID,
		IntegrationProductIDOrSlug: productID, BillingPlanID: "partnerEntry", Metadata: map[string]any{"region": "iad1"},
		AuthorizationID: auth.ID, Source: "marketplace"})
	if err != nil {
		return err
	}
	if _, err := d.api.ConnectStore(ctx, vercel.ConnectStoreRequest{IntegrationConfigurationID: integrationConfigID,
		ProductID: productID, StoreID: store.ID, ProjectID: proj.ID}); err != nil {
		return err
	}
	if err := d.upload(ctx, req); err != nil {
		return err
	}
	dep, _, err := d.api.CreateDeploymentUploading(ctx, vercel.CreateDeploymentRequest{Name: proj.Name, Project: proj.ID,
		Files:           []vercel.DeploymentFile{{File: ".vercel/source.tgz", SHA: req.Source.SHA1, Size: req.Source.Size}},
		Target:          "production",
		ProjectSettings: &vercel.ProjectSettings{Framework: req.Framework},
	}, vercel.FileSourceFunc(func(ctx context.Context, sha string) ([]byte, error) { return d.read(ctx, req.Tenant, sha) }))
	if err != nil {
		return err
	}
	for {
		if dep, _, err = d.api.GetDeployment(ctx, dep.ID); err != nil {
			return err
		}
		if dep.ReadyState == "READY" {
			break
		}
		if dep.ReadyState == "ERROR" || dep.ReadyState == "CANCELED" {
			return fmt.Errorf("deployment %s ended %s", dep.ID, dep.ReadyState)
		}
	}
	_, _, err = d.api.CreateTransferRequest(ctx, proj.ID, vercel.TransferRequest{})
	return err
}

// upload sends the tarball unless the team has it: the job that creates
// the team's key in DEPLOY_UPLOADS uploads, the others read it done (in
// item 1 the warm-up's first job uploads, before any timed job).
func (d *direct) upload(ctx context.Context, req *jobs.Request) error {
	key := d.team + "." + req.Source.SHA1
	rev, err := d.uploads.Create(ctx, key, []byte("uploading"))
	if errors.Is(err, jetstream.ErrKeyExists) {
		if e, err := d.uploads.Get(ctx, key); err == nil && string(e.Value()) == "done" {
			return nil
		}
		return d.awaitUpload(ctx, key)
	}
	if err != nil {
		return err
	}
	data, err := d.read(ctx, req.Tenant, req.Source.SHA1)
	if err != nil {
		return err
	}
	if _, err := d.api.UploadFile(ctx, req.Source.SHA1, data); err != nil {
		return err
	}
	_, err = d.uploads.Update(ctx, key, []byte("done"), rev)
	return err
}

// awaitUpload waits until another job's upload of key is done, as a
// worker's job does: it follows the key.
func (d *direct) awaitUpload(ctx context.Context, key string) error {
	w, err := d.uploads.Watch(ctx, key)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e := <-w.Updates():
			if e != nil && string(e.Value()) == "done" {
				return nil
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// read reads a tarball from the source store, as the pipeline's upload
// does.
func (d *direct) read(ctx context.Context, tenant, sha string) ([]byte, error) {
	info, err := d.sources.Stat(ctx, tenant, sha)
	if errors.Is(err, jobs.ErrSourceNotFound) {
		return nil, fmt.Errorf("tarball %s not stored", sha)
	}
	if err != nil {
		return nil, err
	}
	return io.ReadAll(d.sources.Open(ctx, info))
}
