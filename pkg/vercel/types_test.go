package vercel

import "testing"

func TestEndpointsListsEveryEndpointOnce(t *testing.T) {
	t.Parallel()
	all := []Endpoint{
		EndpointCreateProject, EndpointGetProject, EndpointDeleteProject, EndpointTransferRequest,
		EndpointAuthorize, EndpointCreateStore, EndpointDeleteStore, EndpointListStores, EndpointListResources,
		EndpointConnectStore, EndpointUploadFile, EndpointCreateDeployment, EndpointGetDeployment,
		EndpointDeploymentEvents, EndpointListDeployments, EndpointAddDomain, EndpointGetDomain,
		EndpointAcceptTransfer,
	}
	got := map[Endpoint]int{}
	for _, ep := range Endpoints() {
		got[ep]++
	}
	if len(got) != len(all) || len(Endpoints()) != len(all) {
		t.Errorf("Endpoints() = %v, want each of %v once", Endpoints(), all)
	}
	for _, ep := range all {
		if got[ep] != 1 {
			t.Errorf("%s listed %d times", ep, got[ep])
		}
	}
}
