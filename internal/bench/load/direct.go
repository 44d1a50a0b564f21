package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/deployq/deployq/pkg/jobs"
	"github.com/deployq/deployq/pkg/vercel"
)

// direct runs item 1(b)'s jobs: the pipeline's API calls in the
// pipeline's order, made by this benchmark with no message, checkpoint,
// lease or event around them, reading the tarball from the source store
// as a worker does. It is what a platform calling Vercel itself would
// run; it has no retries, since the simulator of item 1 has no faults and
// no limits (a failed call fails the job, and the job is counted).
type direct struct {
	api     *vercel.Client
	sources *jobs.SourceStore
	// uploaded: the team has the tarball (a worker's fleet uploads it
	// once per team too; later jobs rely on it).
	uploaded atomic.Bool
}

func (d *direct) deploy(ctx context.Context, req *jobs.Request) error {
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
	if !d.uploaded.Load() {
		data, err := d.read(ctx, req.Tenant, req.Source.SHA1)
		if err != nil {
			return err
		}
		if _, err := d.api.UploadFile(ctx, req.Source.SHA1, data); err != nil {
			return err
		}
		d.uploaded.Store(true)
	}
	dep, _, err := d.api.CreateDeploymentUploading(ctx, vercel.CreateDeploymentRequest{Name: proj.Name, Project: proj.ID,
		Files:           []vercel.DeploymentFile{{File: ".vercel/source.tgz", SHA: req.Source.SHA1, Size: req.Source.Size}},
		Target:          "production",
		ProjectSettings: &vercel.ProjectSettings{Framework: req.Framework},
	}, vercel.FileSourceFunc(func(ctx context.Context, sha string) ([]byte, error) { return d.read(ctx, req.Tenant, sha) }))
	if err != nil {
		return err
	}
	for dep.ReadyState != "READY" {
		if dep.ReadyState == "ERROR" || dep.ReadyState == "CANCELED" {
			return fmt.Errorf("deployment %s ended %s", dep.ID, dep.ReadyState)
		}
		if dep, _, err = d.api.GetDeployment(ctx, dep.ID); err != nil {
			return err
		}
	}
	_, _, err = d.api.CreateTransferRequest(ctx, proj.ID, vercel.TransferRequest{})
	return err
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
