// Command dockerfile checks deploy/Dockerfile without a Docker engine, for
// deploy/lint.sh:
//
//	go run . FILE
//
// It parses the file with BuildKit's own parser and runs the lint rules
// BuildKit applies while parsing (those of `docker build --check` that do
// not need the build graph), then checks what the worker image relies on:
// several stages, a Go build with CGO disabled (a static binary), and a
// final stage that runs as a numeric non-root user with an exec-form
// ENTRYPOINT. deploy/lint.sh also runs the build stage's `go build` on the
// context the .dockerignore leaves and checks that the binary is static.
package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile FILE")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "dockerfile:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	res, err := parser.Parse(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	for _, w := range res.Warnings {
		bad("parser: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		bad("line %d: %s: %s", line, rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	if len(stages) < 2 {
		bad("want a multi-stage build (a build stage, then a runtime stage), got %d stage(s)", len(stages))
	}
	cgoOff := false
	for _, st := range stages[:max(len(stages)-1, 0)] {
		for _, cmd := range st.Commands {
			if run, ok := cmd.(*instructions.RunCommand); ok {
				line := strings.Join(run.CmdLine, " ")
				if strings.Contains(line, "go build") && strings.Contains(line, "CGO_ENABLED=0") {
					cgoOff = true
				}
			}
		}
	}
	if !cgoOff {
		bad("no `CGO_ENABLED=0 go build` in a build stage: the binary would not be static")
	}
	if len(stages) > 0 {
		final := stages[len(stages)-1]
		var user string
		entrypoint := false
		for _, cmd := range final.Commands {
			switch c := cmd.(type) {
			case *instructions.UserCommand:
				user = c.User
			case *instructions.EntrypointCommand:
				entrypoint = true
				if c.PrependShell {
					bad("ENTRYPOINT in shell form: the final image has no shell, use the JSON form")
				}
			case *instructions.RunCommand:
				bad("RUN in the final stage: it has no shell")
			}
		}
		uid, _, _ := strings.Cut(user, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			bad("final stage USER %q: want a numeric non-root uid (runAsNonRoot can only verify a number)", user)
		}
		if !entrypoint {
			bad("final stage has no ENTRYPOINT")
		}
		fmt.Printf("  ok     %s: %d stages, final FROM %s, USER %s\n", path, len(stages), final.BaseName, user)
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Println("  FAIL  ", p)
		}
		return fmt.Errorf("%d problems", len(problems))
	}
	fmt.Println("  ok     BuildKit parser and lint rules: no warnings; CGO_ENABLED=0 build; exec-form ENTRYPOINT")
	return nil
}
