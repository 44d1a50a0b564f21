package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// runSchemas writes the JSON schemas kubeconform needs to validate
// deploy/k8s offline, generated from Go modules on the module proxy rather
// than downloaded from a schema registry:
//
//   - every Kubernetes kind, from api/openapi-spec/swagger.json of the
//     k8s.io/kubernetes module;
//   - KEDA's custom resources, from config/crd/bases of the
//     github.com/kedacore/keda/v2 module.
//
// Files are named as kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json
// template expects (deployment-apps-v1.json, service-v1.json,
// scaledobject-keda-v1alpha1.json). Schemas are strict: objects with declared
// properties allow no others, as `kubeconform -strict` expects.
func runSchemas(args []string) error {
	fs := flag.NewFlagSet("schemas", flag.ExitOnError)
	out := fs.String("out", "", "directory to write the schemas into (created)")
	k8sVersion := fs.String("kubernetes", "v1.36.3", "version of the k8s.io/kubernetes module whose swagger.json is used")
	kedaVersion := fs.String("keda", "v2.21.0", "version of the github.com/kedacore/keda/v2 module whose CRDs are used")
	_ = fs.Parse(args)
	if *out == "" {
		return errors.New("schemas: -out is required")
	}
	return run(*out, *k8sVersion, *kedaVersion)
}

func run(out, k8sVersion, kedaVersion string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	k8sDir, err := moduleDir("k8s.io/kubernetes", k8sVersion)
	if err != nil {
		return err
	}
	n, err := fromSwagger(filepath.Join(k8sDir, "api", "openapi-spec", "swagger.json"), out)
	if err != nil {
		return err
	}
	kedaDir, err := moduleDir("github.com/kedacore/keda/v2", kedaVersion)
	if err != nil {
		return err
	}
	m, err := fromCRDs(filepath.Join(kedaDir, "config", "crd", "bases"), out)
	if err != nil {
		return err
	}
	fmt.Printf("schemas: %d Kubernetes schemas (k8s.io/kubernetes %s), %d KEDA schemas (keda %s) in %s\n",
		n, k8sVersion, m, kedaVersion, out)
	return nil
}

// moduleDir downloads a module through the Go module proxy (or finds it in
// the module cache) and returns its directory.
func moduleDir(path, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(raw, &info); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w", path, version, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", path, version, info.Error)
	}
	return info.Dir, nil
}

type gvk struct{ Group, Version, Kind string }

// fileName is what kubeconform looks for with the template
// {{ .ResourceKind }}{{ .KindSuffix }}.json: the lowercased kind, then the
// first label of the group (none for the core group), then the version.
func (g gvk) fileName() string {
	suffix := ""
	if g.Group != "" {
		suffix = "-" + strings.ToLower(strings.Split(g.Group, ".")[0])
	}
	return strings.ToLower(g.Kind) + suffix + "-" + strings.ToLower(g.Version) + ".json"
}

func (g gvk) apiVersion() string {
	if g.Group == "" {
		return g.Version
	}
	return g.Group + "/" + g.Version
}

// fromSwagger writes one schema per kind of the OpenAPI v2 document. Each
// schema is the kind's definition plus every definition it reaches, with
// the document's own "#/definitions/…" references kept (some are
// recursive, so they cannot all be inlined).
func fromSwagger(path, out string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	defs := doc.Definitions
	if len(defs) == 0 {
		return 0, fmt.Errorf("%s: no definitions", path)
	}
	// Values YAML writes as numbers or strings alike.
	for name, def := range defs {
		switch {
		case strings.HasSuffix(name, ".util.intstr.IntOrString"):
			defs[name] = map[string]any{"description": def["description"],
				"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		case strings.HasSuffix(name, ".api.resource.Quantity"):
			defs[name] = map[string]any{"description": def["description"],
				"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
		}
	}
	for _, def := range defs {
		strict(def)
	}
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	sort.Strings(names)
	written := map[string]bool{}
	for _, name := range names {
		def := defs[name]
		kinds, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, k := range kinds {
			km, _ := k.(map[string]any)
			g := gvk{Group: str(km["group"]), Version: str(km["version"]), Kind: str(km["kind"])}
			if g.Kind == "" || g.Version == "" || written[g.fileName()] {
				continue
			}
			schema := copyMap(def)
			pinKind(schema, g)
			reach := map[string]any{}
			collectRefs(def, defs, reach)
			if len(reach) > 0 {
				schema["definitions"] = reach
			}
			if err := writeJSON(filepath.Join(out, g.fileName()), schema); err != nil {
				return 0, err
			}
			written[g.fileName()] = true
		}
	}
	if len(written) == 0 {
		return 0, errors.New("swagger.json has no x-kubernetes-group-version-kind")
	}
	return len(written), nil
}

// fromCRDs writes one schema per served version of every CRD in dir.
func fromCRDs(dir, out string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			s := v.Schema.OpenAPIV3Schema
			if !v.Served || s == nil {
				continue
			}
			g := gvk{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			strict(s)
			pinKind(s, g)
			if err := writeJSON(filepath.Join(out, g.fileName()), s); err != nil {
				return 0, err
			}
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("no CRDs in %s", dir)
	}
	return n, nil
}

// pinKind makes apiVersion and kind accept only this kind's values.
func pinKind(schema map[string]any, g gvk) {
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return
	}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{g.apiVersion()}}
	props["kind"] = map[string]any{"type": "string", "enum": []any{g.Kind}}
}

// strict forbids undeclared properties on every object schema that
// declares some, unless it says otherwise (additionalProperties, or
// x-kubernetes-preserve-unknown-fields).
func strict(v any) {
	switch t := v.(type) {
	case map[string]any:
		if _, hasProps := t["properties"].(map[string]any); hasProps {
			_, hasAdditional := t["additionalProperties"]
			preserve, _ := t["x-kubernetes-preserve-unknown-fields"].(bool)
			if !hasAdditional && !preserve {
				t["additionalProperties"] = false
			}
		}
		for _, child := range t {
			strict(child)
		}
	case []any:
		for _, child := range t {
			strict(child)
		}
	}
}

const refPrefix = "#/definitions/"

func collectRefs(v any, defs map[string]map[string]any, reach map[string]any) {
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok && strings.HasPrefix(ref, refPrefix) {
			name := strings.TrimPrefix(ref, refPrefix)
			if _, seen := reach[name]; !seen {
				if def, ok := defs[name]; ok {
					reach[name] = def
					collectRefs(def, defs, reach)
				}
			}
		}
		for _, child := range t {
			collectRefs(child, defs, reach)
		}
	case []any:
		for _, child := range t {
			collectRefs(child, defs, reach)
		}
	}
}

func copyMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	if p, ok := m["properties"].(map[string]any); ok {
		pc := make(map[string]any, len(p))
		for k, v := range p {
			pc[k] = v
		}
		c["properties"] = pc
	}
	return c
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func writeJSON(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, raw, 0o644)
}
