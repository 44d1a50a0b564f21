package jobs

import "testing"

func TestRequestSubjects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		subject, tenant, id string
		batch, ok           bool
	}{
		{"deploy.requests.acme.req-1", "acme", "req-1", false, true},
		{"deploy.requests.acme.batch.req-1", "acme", "req-1", true, true},
		{"deploy.requests.acme.batch", "acme", "batch", false, true},     // an id named batch
		{"deploy.requests.batch.req-1", "batch", "req-1", false, true},   // a tenant named batch
		{"deploy.requests.batch.batch.x", "batch", "x", true, true},      // both
		{"deploy.requests.acme.other.req-1", "acme", "", false, false},   // no such form
		{"deploy.requests.acme.batch.req-1.x", "acme", "", false, false}, // too long
		{"deploy.requests.acme", "acme", "", false, false},               // the old form
		{"deploy.events.acme.req-1", "", "", false, false},               // not a request
	} {
		tenant, id, batch, ok := requestSubjectParts(c.subject)
		if tenant != c.tenant || id != c.id || batch != c.batch || ok != c.ok {
			t.Errorf("%s: %q %q batch=%v ok=%v; want %q %q batch=%v ok=%v", c.subject, tenant, id, batch, ok, c.tenant, c.id, c.batch, c.ok)
		}
	}
	req := &Request{Tenant: "acme", ID: "r1"}
	if got := SubjectFor(req); got != RequestSubject("acme", "r1") {
		t.Errorf("interactive request on %s", got)
	}
	req.Priority = PriorityBatch
	if got := SubjectFor(req); got != "deploy.requests.acme.batch.r1" {
		t.Errorf("batch request on %s", got)
	}
	if err := req.CheckSubject("deploy.requests.acme.batch.r1"); err != nil {
		t.Errorf("batch request on its subject: %v", err)
	}
	req.Priority = ""
	if err := req.CheckSubject("deploy.requests.acme.batch.r1"); err == nil {
		t.Error("an interactive body on a batch subject was accepted")
	}
	if err := req.CheckSubject("deploy.requests.acme.r1"); err != nil {
		t.Errorf("interactive request on its subject: %v", err)
	}
	if BatchConsumer("acme") == TenantConsumer("acme") || !IsTenantConsumer(BatchConsumer("acme")) || !IsTenantConsumer(BatchConsumer("Not.Valid")) {
		t.Error("batch consumers are not told apart, or not recognised")
	}
}
