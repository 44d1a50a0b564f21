package tarball_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/deployq/deployq/pkg/tarball"
)

func ExamplePack() {
	dir, err := os.MkdirTemp("", "tarball-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for name, content := range map[string]string{
		"package.json":                   `{"scripts":{"build":"next build"}}`,
		"app/page.tsx":                   "export default function Page() { return <p>hi</p> }\n",
		".env.local":                     "DATABASE_URL=postgres://localhost/dev\n",
		"node_modules/next/package.json": `{"name":"next"}`,
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			log.Fatal(err)
		}
	}

	a, err := tarball.Pack(dir, tarball.WithFile(".vercelsim/fail-build", []byte("Error: build failed")))
	if err != nil {
		log.Fatal(err)
	}
	again, err := tarball.Pack(dir, tarball.WithFile(".vercelsim/fail-build", []byte("Error: build failed")))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("files:", a.Files)
	fmt.Println("same SHA-1 on every pack:", a.SHA1 == again.SHA1)

	zr, err := gzip.NewReader(bytes.NewReader(a.Data))
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%o %s\n", h.Mode, h.Name)
	}
	// Output:
	// files: 3
	// same SHA-1 on every pack: true
	// 755 .vercelsim/
	// 644 .vercelsim/fail-build
	// 755 app/
	// 644 app/page.tsx
	// 644 package.json
}

func ExampleFromFile() {
	dir, err := os.MkdirTemp("", "tarball-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		log.Fatal(err)
	}
	packed, err := tarball.Pack(src)
	if err != nil {
		log.Fatal(err)
	}
	file := filepath.Join(dir, "site.tgz")
	if err := os.WriteFile(file, packed.Data, 0o644); err != nil {
		log.Fatal(err)
	}

	a, err := tarball.FromFile(file, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("files:", a.Files, "same SHA-1:", a.SHA1 == packed.SHA1)

	// A cut-off upload is caught before it reaches the builder.
	if err := os.WriteFile(file, packed.Data[:packed.Size-4], 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = tarball.FromFile(file, 0)
	fmt.Println("truncated is invalid:", errors.Is(err, tarball.ErrInvalidArchive))
	// Output:
	// files: 1 same SHA-1: true
	// truncated is invalid: true
}

func ExampleTooLargeError() {
	dir, err := os.MkdirTemp("", "tarball-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte("{}"), 0o644); err != nil {
		log.Fatal(err)
	}

	_, err = tarball.Pack(dir, tarball.WithMaxSize(16))
	var tle *tarball.TooLargeError
	if errors.As(err, &tle) {
		fmt.Println("limit:", tle.Limit, "over:", tle.Size > tle.Limit)
	}
	// Output:
	// limit: 16 over: true
}

func ExampleSHA1Hex() {
	fmt.Println(tarball.SHA1Hex([]byte("hello")))
	// Output:
	// aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d
}
