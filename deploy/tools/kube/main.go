// Command kube supports deploy/lint.sh with what kubeconform does not do:
//
//	go run . schemas -out DIR [-kubernetes v1.36.3] [-keda v2.21.0]
//	    generates kubeconform's JSON schemas offline, from the Kubernetes
//	    and KEDA Go modules (see schemas.go);
//	go run . policy -rendered FILE -secret-template FILE
//	    checks the rendered deploy/k8s manifests for the properties the
//	    deployment relies on (see policy.go);
//	go run . grafana -datasources FILE -dashboards FILE -compose FILE
//	    checks Grafana's provisioning files and that docker-compose mounts
//	    the dashboards where the provider looks (see grafana.go).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kube schemas|policy|grafana [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "schemas":
		err = runSchemas(os.Args[2:])
	case "policy":
		err = runPolicy(os.Args[2:])
	case "grafana":
		err = runGrafana(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: kube schemas|policy|grafana [flags]")
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kube:", err)
		os.Exit(1)
	}
}
