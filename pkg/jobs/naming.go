package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// nameSuffixLen is the number of hex digits of the id's hash appended to
// resource names: 48 bits, so two ids sharing a name prefix collide with
// negligible probability even across millions of deploys.
const nameSuffixLen = 12

// idSuffix is derived from the tenant and id alone, so every redelivery of
// a request (on any worker) computes the same resource names. That is what
// makes a 409 on create resolvable: the conflicting project is this
// request's. The tenant is part of it so that another tenant reusing an id
// can never land on (and adopt) this tenant's project.
func idSuffix(tenant, id string) string {
	sum := sha256.Sum256([]byte("deployq/v1/" + tenant + "/" + id))
	return hex.EncodeToString(sum[:])[:nameSuffixLen]
}

// ProjectName is the Vercel project name a request deploys to.
func ProjectName(r *Request) string {
	return r.Name + "-" + idSuffix(r.Tenant, r.AppID())
}

// StoreName is the Prisma Postgres database name a request creates.
func StoreName(r *Request) string {
	return "deployq-db-" + idSuffix(r.Tenant, r.AppID())
}

// AppDomainLabel is the first label of an app's domain under the
// platform's suffix: the request's name, cut to fit a DNS label with the
// app's suffix, its dots made dashes.
func AppDomainLabel(r *Request) string {
	suffix := idSuffix(r.Tenant, r.AppID())
	name := strings.Trim(strings.NewReplacer(".", "-", "_", "-").Replace(r.Name), "-")
	if max := 63 - 1 - len(suffix); len(name) > max {
		name = strings.TrimRight(name[:max], "-")
	}
	if name == "" {
		return suffix
	}
	return name + "-" + suffix
}
