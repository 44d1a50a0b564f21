package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// runGrafana checks the provisioning files as Grafana reads them (strict
// YAML: unknown keys are errors) and that docker-compose mounts the
// dashboards directory where the provider looks for it.
func runGrafana(args []string) error {
	fs := flag.NewFlagSet("grafana", flag.ExitOnError)
	dsFile := fs.String("datasources", "deploy/grafana/provisioning/datasources/prometheus.yml", "datasource provisioning file")
	provFile := fs.String("dashboards", "deploy/grafana/provisioning/dashboards/deployq.yml", "dashboard provider file")
	composeFile := fs.String("compose", "deploy/docker-compose.yml", "docker-compose file mounting them")
	_ = fs.Parse(args)

	var ds struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string         `json:"name"`
			Type      string         `json:"type"`
			UID       string         `json:"uid"`
			Access    string         `json:"access"`
			URL       string         `json:"url"`
			IsDefault bool           `json:"isDefault"`
			Editable  bool           `json:"editable"`
			JSONData  map[string]any `json:"jsonData"`
		} `json:"datasources"`
	}
	if err := strictFile(*dsFile, &ds); err != nil {
		return err
	}
	if ds.APIVersion != 1 || len(ds.Datasources) == 0 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL == "" {
		return fmt.Errorf("%s: want apiVersion 1 and a prometheus datasource with a url", *dsFile)
	}
	var prov struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name                  string `json:"name"`
			Folder                string `json:"folder"`
			Type                  string `json:"type"`
			DisableDeletion       bool   `json:"disableDeletion"`
			AllowUIUpdates        bool   `json:"allowUiUpdates"`
			UpdateIntervalSeconds int    `json:"updateIntervalSeconds"`
			Options               struct {
				Path                      string `json:"path"`
				FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
			} `json:"options"`
		} `json:"providers"`
	}
	if err := strictFile(*provFile, &prov); err != nil {
		return err
	}
	if prov.APIVersion != 1 || len(prov.Providers) == 0 || prov.Providers[0].Type != "file" || prov.Providers[0].Options.Path == "" {
		return fmt.Errorf("%s: want apiVersion 1 and a file provider with options.path", *provFile)
	}
	path := prov.Providers[0].Options.Path
	compose, err := os.ReadFile(*composeFile)
	if err != nil {
		return err
	}
	if !strings.Contains(string(compose), "./grafana/dashboards:"+path) {
		return fmt.Errorf("%s does not mount ./grafana/dashboards at %s, where %s looks", *composeFile, path, *provFile)
	}
	fmt.Printf("  ok     %s: prometheus datasource %s; %s: file provider at %s, mounted by %s\n",
		*dsFile, ds.Datasources[0].URL, *provFile, path, *composeFile)
	return nil
}

func strictFile(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(raw, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
