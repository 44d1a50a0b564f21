// Command dashcheck checks the Grafana dashboard and the metric names that
// deploy/ and docs/OPERATIONS.md use, for deploy/lint.sh:
//
//	dashcheck -dashboard FILE -rules-out FILE -metrics-src DIR [-scrape FILE] [-documented FILE] [-names FILE...] [-var NAME=VALUE...]
//
// It fails unless the dashboard is valid JSON with unique panel ids, a
// datasource template variable and no hard-coded datasource uid, and
// writes every panel query, Grafana variables substituted, as a recording
// rule into -rules-out for `promtool check rules` to parse (and for a live
// Prometheus to evaluate, with -var giving the variables' values). It then checks
// that every deployq_* name in the dashboard and in each -names file is a
// metric defined in -metrics-src (pkg/metrics), that every metric in a
// live -scrape is one of them too, and that -documented mentions them all.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

type target struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource json.RawMessage `json:"datasource"`
}

type panel struct {
	ID         *int            `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource json.RawMessage `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func main() {
	dashFile := flag.String("dashboard", "deploy/grafana/dashboards/deployq.json", "dashboard JSON")
	rulesOut := flag.String("rules-out", "", "where to write the panel queries as recording rules")
	metricsSrc := flag.String("metrics-src", "pkg/metrics", "directory of the Go files defining the metrics")
	scrape := flag.String("scrape", "", "a /metrics scrape to compare with the defined metrics")
	documented := flag.String("documented", "", "file that must mention every defined metric")
	var names, vars multiFlag
	flag.Var(&vars, "var", "NAME=VALUE: the value of a dashboard variable in -rules-out (repeatable; others become \"x\")")
	flag.Var(&names, "names", "file whose deployq_* names must all be defined metrics (repeatable)")
	flag.Parse()
	values := map[string]string{}
	for _, v := range vars {
		name, value, ok := strings.Cut(v, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "dashcheck: -var %q: want NAME=VALUE\n", v)
			os.Exit(2)
		}
		values[name] = value
	}
	if err := run(*dashFile, *rulesOut, *metricsSrc, *scrape, *documented, names, values); err != nil {
		fmt.Fprintln(os.Stderr, "dashcheck:", err)
		os.Exit(1)
	}
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func run(dashFile, rulesOut, metricsSrc, scrape, documented string, names []string, values map[string]string) error {
	raw, err := os.ReadFile(dashFile)
	if err != nil {
		return err
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("%s: not valid JSON: %w", dashFile, err)
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if d.UID == "" || d.Title == "" {
		bad("dashboard needs a uid and a title")
	}
	hasDSVar := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" {
			hasDSVar = true
		}
		if v.Datasource != nil {
			checkDS(v.Datasource, "variable "+v.Name, bad)
		}
	}
	if !hasDSVar {
		bad("no datasource template variable named datasource")
	}

	ids := map[int]string{}
	type query struct {
		panel int
		title string
		ref   string
		expr  string
	}
	var queries []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.ID == nil {
				bad("panel %q has no id", p.Title)
			} else if other, dup := ids[*p.ID]; dup {
				bad("panel id %d used by %q and %q", *p.ID, other, p.Title)
			} else {
				ids[*p.ID] = p.Title
			}
			if p.GridPos == nil {
				bad("panel %q has no gridPos", p.Title)
			}
			if p.Type != "row" {
				checkDS(p.Datasource, "panel "+p.Title, bad)
				if len(p.Targets) == 0 {
					bad("panel %q has no queries", p.Title)
				}
			}
			for _, t := range p.Targets {
				checkDS(t.Datasource, fmt.Sprintf("panel %q query %s", p.Title, t.RefID), bad)
				if strings.TrimSpace(t.Expr) == "" {
					bad("panel %q query %s is empty", p.Title, t.RefID)
					continue
				}
				queries = append(queries, query{*p.ID, p.Title, t.RefID, t.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	// The panel queries as recording rules, for promtool to parse.
	if rulesOut != "" {
		var b strings.Builder
		b.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
		for _, q := range queries {
			expr, _ := json.Marshal(substitute(q.expr, values)) // a JSON string is a valid YAML string
			fmt.Fprintf(&b, "      - record: dashboard:panel_%d_%s\n        expr: %s\n", q.panel, strings.ToLower(q.ref), expr)
		}
		if err := os.WriteFile(rulesOut, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}

	// Metric names.
	defined, err := definedMetrics(metricsSrc)
	if err != nil {
		return err
	}
	var dashText strings.Builder
	for _, q := range queries {
		dashText.WriteString(q.expr + "\n")
	}
	for _, u := range unknownNames(dashText.String(), defined) {
		bad("dashboard uses %s, which pkg/metrics does not define", u)
	}
	for _, f := range names {
		text, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for _, u := range unknownNames(string(text), defined) {
			bad("%s mentions %s, which pkg/metrics does not define", f, u)
		}
	}
	if documented != "" {
		text, err := os.ReadFile(documented)
		if err != nil {
			return err
		}
		mentioned := map[string]bool{}
		for _, n := range regexp.MustCompile(`\bdeployq_[a-z0-9_]*[a-z0-9]`).FindAllString(string(text), -1) {
			mentioned[n] = true
		}
		var missing []string
		for n := range defined {
			if !mentioned[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		for _, n := range missing {
			bad("%s does not mention the metric %s", documented, n)
		}
	}
	scraped := 0
	if scrape != "" {
		text, err := os.ReadFile(scrape)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^# TYPE (deployq_[a-z0-9_]+) `).FindAllStringSubmatch(string(text), -1) {
			scraped++
			if !defined[m[1]] {
				bad("the scrape has %s, which pkg/metrics does not define", m[1])
			}
		}
		if scraped == 0 {
			bad("the scrape %s has no deployq_ metric", scrape)
		}
	}

	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Println("  FAIL  ", p)
		}
		return fmt.Errorf("%d problems", len(problems))
	}
	fmt.Printf("  ok     %s: valid JSON, %d panels with unique ids, datasource variable, no hard-coded uid, %d queries\n",
		dashFile, len(ids), len(queries))
	fmt.Printf("  ok     %d metrics defined in %s; every deployq_ name in the dashboard and %d other files is one of them",
		len(defined), metricsSrc, len(names))
	if scrape != "" {
		fmt.Printf("; the live scrape's %d deployq_ metrics too", scraped)
	}
	fmt.Println()
	return nil
}

// checkDS accepts only the datasource variable (or Grafana's built-in one).
func checkDS(raw json.RawMessage, where string, bad func(string, ...any)) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var ds struct {
		UID string `json:"uid"`
	}
	if err := json.Unmarshal(raw, &ds); err != nil {
		var s string
		if json.Unmarshal(raw, &s) == nil && (s == "$datasource" || s == "${datasource}") {
			return
		}
		bad("%s: datasource %s is not the datasource variable", where, raw)
		return
	}
	switch ds.UID {
	case "${datasource}", "$datasource", "-- Grafana --":
	default:
		bad("%s: hard-coded datasource uid %q", where, ds.UID)
	}
}

// substitute replaces Grafana's variables with values PromQL accepts.
func substitute(expr string, values map[string]string) string {
	r := strings.NewReplacer(
		"$__rate_interval", "5m", "${__rate_interval}", "5m",
		"$__interval", "1m", "${__interval}", "1m",
		"$__range", "1h", "${__range}", "1h",
	)
	expr = r.Replace(expr)
	// Any other variable ($job, ${instance}) stands for a label value:
	// the one given, else a placeholder that parses.
	return regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`).ReplaceAllStringFunc(expr, func(v string) string {
		name := strings.Trim(v, "${}")
		if value, ok := values[name]; ok {
			return value
		}
		return "x"
	})
}

var histogramSuffix = regexp.MustCompile(`_(bucket|sum|count)$`)

func unknownNames(text string, defined map[string]bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range regexp.MustCompile(`\bdeployq_[a-z0-9_]*[a-z0-9]`).FindAllString(text, -1) {
		if seen[n] {
			continue
		}
		seen[n] = true
		if defined[n] || defined[histogramSuffix.ReplaceAllString(n, "")] {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// definedMetrics reads the metric names out of the Go sources: the Name of
// each *Opts literal and the first argument of histogramOpts, under the
// package's namespace.
func definedMetrics(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	namespace := regexp.MustCompile(`const namespace = "([a-z_]+)"`)
	nameField := regexp.MustCompile(`Name:\s+"([a-z0-9_]+)"`)
	histogram := regexp.MustCompile(`histogramOpts\(\s*"([a-z0-9_]+)"`)
	ns := ""
	var names []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if m := namespace.FindSubmatch(raw); m != nil {
			ns = string(m[1])
		}
		for _, m := range nameField.FindAllSubmatch(raw, -1) {
			names = append(names, string(m[1]))
		}
		for _, m := range histogram.FindAllSubmatch(raw, -1) {
			names = append(names, string(m[1]))
		}
	}
	if ns == "" || len(names) == 0 {
		return nil, errors.New(dir + ": no metric definitions found")
	}
	out := map[string]bool{}
	for _, n := range names {
		out[ns+"_"+n] = true
	}
	return out, nil
}
