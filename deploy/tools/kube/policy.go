package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Minimal shapes of the objects the policy reads; field names as in the
// Kubernetes API.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	Spec       struct {
		// Deployment
		Replicas *int `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
		// Service
		ServiceSelector map[string]string `json:"-"`
		Ports           []struct {
			Name       string `json:"name"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
		PublishNotReadyAddresses bool `json:"publishNotReadyAddresses"`
		// PodDisruptionBudget
		MaxUnavailable any `json:"maxUnavailable"`
		MinAvailable   any `json:"minAvailable"`
		// ScaledObject
		ScaleTargetRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int `json:"minReplicaCount"`
		MaxReplicaCount *int `json:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
	raw map[string]any
}

type podSpec struct {
	TerminationGracePeriodSeconds *int  `json:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  *bool `json:"automountServiceAccountToken"`
	SecurityContext               struct {
		RunAsNonRoot *bool `json:"runAsNonRoot"`
	} `json:"securityContext"`
	Containers []container `json:"containers"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

type container struct {
	Name  string `json:"name"`
	Image string `json:"image"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `json:"name"`
		} `json:"configMapRef"`
	} `json:"envFrom"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	Resources struct {
		Requests map[string]any `json:"requests"`
		Limits   map[string]any `json:"limits"`
	} `json:"resources"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `json:"seconds"`
			} `json:"sleep"`
			Exec *struct {
				Command []string `json:"command"`
			} `json:"exec"`
		} `json:"preStop"`
	} `json:"lifecycle"`
	SecurityContext struct {
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
}

// apiRequestTimeout is pkg/vercel's DefaultRequestTimeout: the longest a
// step's API call runs on after its job is cancelled.
const apiRequestTimeout = 30 * time.Second

// runPolicy checks what the deployment relies on beyond schema validity.
func runPolicy(args []string) error {
	fs := flag.NewFlagSet("policy", flag.ExitOnError)
	rendered := fs.String("rendered", "", "output of `kustomize build deploy/k8s`")
	secretTemplate := fs.String("secret-template", "", "deploy/k8s/secret.template.yaml")
	_ = fs.Parse(args)
	objs, err := readObjects(*rendered)
	if err != nil {
		return err
	}
	p := &policy{}
	p.check(objs)
	if *secretTemplate != "" {
		tmpl, err := readObjects(*secretTemplate)
		if err != nil {
			return err
		}
		p.checkSecretTemplate(tmpl)
	}
	for _, s := range p.passed {
		fmt.Println("  ok    ", s)
	}
	for _, s := range p.failed {
		fmt.Println("  FAIL  ", s)
	}
	if len(p.failed) > 0 {
		return fmt.Errorf("policy: %d of %d checks failed", len(p.failed), len(p.failed)+len(p.passed))
	}
	return nil
}

type policy struct{ passed, failed []string }

func (p *policy) expect(cond bool, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if cond {
		p.passed = append(p.passed, msg)
	} else {
		p.failed = append(p.failed, msg)
	}
}

func readObjects(path string) ([]object, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []object
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := yaml.Unmarshal([]byte(doc), &o.raw); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if o.Kind == "Service" {
			if spec, ok := o.raw["spec"].(map[string]any); ok {
				if sel, ok := spec["selector"].(map[string]any); ok {
					o.Spec.ServiceSelector = map[string]string{}
					for k, v := range sel {
						o.Spec.ServiceSelector[k], _ = v.(string)
					}
				}
			}
		}
		out = append(out, o)
	}
	if len(out) == 0 {
		return nil, errors.New(path + ": no objects")
	}
	return out, nil
}

func byKind(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (p *policy) check(objs []object) {
	deps := byKind(objs, "Deployment")
	p.expect(len(deps) == 1, "one Deployment (found %d)", len(deps))
	p.expect(len(byKind(objs, "HorizontalPodAutoscaler")) == 0, "no HorizontalPodAutoscaler beside the ScaledObject")
	p.expect(len(byKind(objs, "Secret")) == 0, "no Secret in the applied set (the template stays out of kustomization.yaml)")
	if len(deps) != 1 {
		return
	}
	d := deps[0]
	pod := d.Spec.Template.Spec
	labels := d.Spec.Template.Metadata.Labels
	p.expect(d.Spec.Replicas == nil, "Deployment leaves replicas to KEDA")
	p.expect(subset(d.Spec.Selector.MatchLabels, labels), "Deployment selector matches its pod labels")
	p.expect(len(pod.Containers) == 1, "one container")
	if len(pod.Containers) != 1 {
		return
	}
	c := pod.Containers[0]

	metricsPort := 0
	for _, port := range c.Ports {
		if port.Name == "metrics" {
			metricsPort = port.ContainerPort
		}
	}
	p.expect(metricsPort > 0, "container port named metrics")
	p.expect(probeIs(c.LivenessProbe, "/healthz"), "liveness probe on /healthz via the metrics port")
	p.expect(probeIs(c.ReadinessProbe, "/readyz"), "readiness probe on /readyz via the metrics port")
	p.expect(c.Resources.Requests["cpu"] != nil && c.Resources.Requests["memory"] != nil && c.Resources.Limits["memory"] != nil,
		"cpu and memory requests, memory limit")
	nonRoot := (pod.SecurityContext.RunAsNonRoot != nil && *pod.SecurityContext.RunAsNonRoot) ||
		(c.SecurityContext.RunAsNonRoot != nil && *c.SecurityContext.RunAsNonRoot)
	p.expect(nonRoot, "runAsNonRoot")
	p.expect(isTrue(c.SecurityContext.ReadOnlyRootFilesystem), "readOnlyRootFilesystem")
	p.expect(c.SecurityContext.AllowPrivilegeEscalation != nil && !*c.SecurityContext.AllowPrivilegeEscalation, "allowPrivilegeEscalation: false")
	p.expect(len(c.SecurityContext.Capabilities.Drop) == 1 && c.SecurityContext.Capabilities.Drop[0] == "ALL", "capabilities: drop ALL")
	p.expect(pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken, "no service account token mounted")

	// Configuration: ConfigMap through envFrom, token through a Secret.
	var cm *object
	for _, ref := range c.EnvFrom {
		if ref.ConfigMapRef == nil {
			continue
		}
		for i, o := range byKind(objs, "ConfigMap") {
			if o.Metadata.Name == ref.ConfigMapRef.Name {
				cm = &byKind(objs, "ConfigMap")[i]
			}
		}
	}
	p.expect(cm != nil, "env from a ConfigMap of the set")
	env := map[string]string{}
	tokenFromSecret := false
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.Name == "ACCESS_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			tokenFromSecret = true
		}
	}
	p.expect(tokenFromSecret, "ACCESS_TOKEN from a Secret")
	if cm == nil {
		return
	}
	cfg := cm.Data
	for k, v := range env {
		cfg[k] = v
	}
	p.expect(cfg["ACCESS_TOKEN"] == "" && cfg["VERCEL_TOKEN"] == "", "no token in the ConfigMap")
	p.expect(cfg["STREAM_REPLICAS"] == "3", "STREAM_REPLICAS=3 (got %q)", cfg["STREAM_REPLICAS"])
	p.expect(cfg["BUDGET"] == "shared", "BUDGET=shared (got %q)", cfg["BUDGET"])
	p.expect(strings.HasPrefix(cfg["NATS_URL"], "nats://") && strings.Contains(cfg["NATS_URL"], "$(NATS_SERVERS)") &&
		strings.Contains(cfg["NATS_SERVERS"], ".svc"), "NATS_URL points at the NATS cluster Service (%s)", cfg["NATS_SERVERS"])
	p.expect(strings.HasSuffix(cfg["HTTP_ADDR"], ":"+strconv.Itoa(metricsPort)) && !strings.HasPrefix(cfg["HTTP_ADDR"], "127."),
		"HTTP_ADDR %q serves the metrics port on every interface", cfg["HTTP_ADDR"])

	// Shutdown: preStop + SHUTDOWN_GRACE + one step's API call < grace period.
	grace, err := time.ParseDuration(cfg["SHUTDOWN_GRACE"])
	if cfg["SHUTDOWN_GRACE"] == "" {
		grace, err = 30*time.Second, nil
	}
	p.expect(err == nil, "SHUTDOWN_GRACE parses (%q)", cfg["SHUTDOWN_GRACE"])
	preStop := 0
	if ps := c.Lifecycle.PreStop; ps != nil && ps.Sleep != nil {
		preStop = ps.Sleep.Seconds
	}
	p.expect(preStop > 0, "preStop sleep before SIGTERM (%ds)", preStop)
	need := time.Duration(preStop)*time.Second + grace + apiRequestTimeout
	tgps := 30
	if pod.TerminationGracePeriodSeconds != nil {
		tgps = *pod.TerminationGracePeriodSeconds
	}
	p.expect(time.Duration(tgps)*time.Second > need,
		"terminationGracePeriodSeconds %d > preStop %ds + SHUTDOWN_GRACE %s + one API call %s", tgps, preStop, grace, apiRequestTimeout)

	// PodDisruptionBudget and Service select the workers.
	pdbs := byKind(objs, "PodDisruptionBudget")
	p.expect(len(pdbs) == 1 && subset(pdbs[0].Spec.Selector.MatchLabels, labels), "PodDisruptionBudget selects the workers")
	svcs := byKind(objs, "Service")
	okSvc := len(svcs) == 1 && len(svcs[0].Spec.ServiceSelector) > 0 && subset(svcs[0].Spec.ServiceSelector, labels) &&
		len(svcs[0].Spec.Ports) == 1 && svcs[0].Spec.Ports[0].Name == "metrics" && svcs[0].Spec.Ports[0].TargetPort == "metrics"
	p.expect(okSvc, "metrics Service selects the workers' metrics port")
	p.expect(len(svcs) == 1 && svcs[0].Spec.PublishNotReadyAddresses, "metrics Service keeps not-ready workers")

	// KEDA.
	sos := byKind(objs, "ScaledObject")
	p.expect(len(sos) == 1, "one ScaledObject")
	if len(sos) != 1 {
		return
	}
	so := sos[0]
	p.expect(so.Spec.ScaleTargetRef.Name == d.Metadata.Name, "ScaledObject targets Deployment %s", d.Metadata.Name)
	p.expect(so.Spec.MinReplicaCount != nil && *so.Spec.MinReplicaCount >= 1, "minReplicaCount >= 1 (someone reports the backlog)")
	p.expect(so.Spec.MaxReplicaCount != nil && *so.Spec.MaxReplicaCount >= 1, "maxReplicaCount set")
	var prom map[string]string
	for _, t := range so.Spec.Triggers {
		if t.Type == "prometheus" {
			prom = t.Metadata
		}
	}
	p.expect(prom != nil, "prometheus trigger")
	if prom == nil {
		return
	}
	for _, k := range []string{"serverAddress", "query", "threshold"} {
		p.expect(prom[k] != "", "trigger sets %s", k)
	}
	// The lag is the whole queue: waiting and running, over every
	// tenant's consumer (natscheck keda checks the worker reports both).
	p.expect(strings.Contains(prom["query"], "deployq_queue_pending_requests") && strings.Contains(prom["query"], "deployq_queue_in_progress_requests"),
		"trigger query sums deployq_queue_pending_requests and deployq_queue_in_progress_requests")
	p.expect(prom["threshold"] == cfg["CONCURRENCY"], "threshold %s = CONCURRENCY %s", prom["threshold"], cfg["CONCURRENCY"])
}

func (p *policy) checkSecretTemplate(objs []object) {
	secrets := byKind(objs, "Secret")
	p.expect(len(secrets) == 1, "secret template holds one Secret")
	for _, s := range secrets {
		for k, v := range s.StringData {
			p.expect(strings.Contains(v, "REPLACE_ME"), "secret template value %s is a placeholder", k)
		}
		p.expect(len(s.Data) == 0, "secret template has no base64 data")
	}
}

func probeIs(pr *probe, path string) bool {
	return pr != nil && pr.HTTPGet != nil && pr.HTTPGet.Path == path && pr.HTTPGet.Port == "metrics"
}

func isTrue(b *bool) bool { return b != nil && *b }

func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
