package tarball_test

import (
	"path/filepath"
	"slices"
	"testing"
)

// The demo's sources must pack as the demo expects; in particular the
// failing build's marker must survive the default excludes.
func TestPackExamples(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir  string
		want []string
		file string
		body string
	}{
		{
			dir: "nextjs-prisma",
			want: []string{
				".gitignore", "README.md", "app/", "app/layout.tsx", "app/page.tsx", "lib/", "lib/prisma.ts",
				"next.config.mjs", "package.json", "prisma/", "prisma/schema.prisma", "tsconfig.json",
			},
		},
		{
			dir:  "failing-build",
			want: []string{".vercelsim/", ".vercelsim/fail-build", "README.md", "package.json"},
			file: ".vercelsim/fail-build",
			body: `Error: Command "npm run build" exited with 1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			a := mustPack(t, filepath.Join("..", "..", "examples", tt.dir))
			ms := unpack(t, a.Data)
			if got := names(ms); !slices.Equal(got, tt.want) {
				t.Errorf("entries = %q\nwant %q", got, tt.want)
			}
			if tt.file != "" {
				if got := byName(ms)[tt.file].Content; got != tt.body {
					t.Errorf("%s = %q, want %q", tt.file, got, tt.body)
				}
			}
		})
	}
}
