package tarball_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/deployq/deployq/pkg/tarball"
)

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "source.tgz")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromFileRoundTrip(t *testing.T) {
	t.Parallel()
	packed := mustPack(t, newTree(t, appFiles), tarball.WithFile(".vercelsim/fail-build", []byte("boom")))
	got, err := tarball.FromFile(writeFile(t, packed.Data), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, packed.Data) || got.SHA1 != packed.SHA1 || got.Size != packed.Size || got.Files != packed.Files {
		t.Errorf("FromFile = {SHA1 %s Size %d Files %d}, want {SHA1 %s Size %d Files %d}",
			got.SHA1, got.Size, got.Files, packed.SHA1, packed.Size, packed.Files)
	}
}

func TestFromFileAcceptsForeignArchives(t *testing.T) {
	t.Parallel()
	// As written by `tar czf x.tgz .` or `git archive`: "./" prefixes, a
	// global PAX header, a hard link and a symlink inside the archive.
	data := gzipTar(t,
		&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "abc"}},
		&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "./package.json", Mode: 0o644, Size: 2},
		&tar.Header{Typeflag: tar.TypeDir, Name: "./app/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "./app/page.tsx", Mode: 0o644, Size: 10},
		&tar.Header{Typeflag: tar.TypeLink, Name: "./app/copy.tsx", Linkname: "app/page.tsx"},
		&tar.Header{Typeflag: tar.TypeSymlink, Name: "./app/readme", Linkname: "../package.json"},
	)
	a, err := tarball.FromFile(writeFile(t, data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if a.Files != 4 || a.SHA1 != tarball.SHA1Hex(data) {
		t.Errorf("FromFile = {Files %d SHA1 %s}, want {Files 4 SHA1 %s}", a.Files, a.SHA1, tarball.SHA1Hex(data))
	}
}

func TestFromFileRejectsInvalidArchives(t *testing.T) {
	t.Parallel()
	good := mustPack(t, newTree(t, appFiles)).Data
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(b)
		_ = zw.Close()
		return buf.Bytes()
	}
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)/2] ^= 0xff

	tests := []struct {
		name string
		data []byte
	}{
		{"empty file", nil},
		{"not gzip", []byte(`{"name":"app"}`)},
		{"plain tar", bytes.Repeat([]byte{0}, 1024)},
		{"gzip but not tar", gz([]byte("hello, world"))},
		{"truncated in the middle", good[:len(good)/2]},
		{"gzip trailer cut off", good[:len(good)-4]},
		{"corrupted", corrupt},
		{"entry above the top", gzipTar(t, &tar.Header{Typeflag: tar.TypeReg, Name: "../evil.sh", Mode: 0o755, Size: 1})},
		{"absolute entry", gzipTar(t, &tar.Header{Typeflag: tar.TypeReg, Name: "/etc/passwd", Mode: 0o644, Size: 1})},
		{"symlink out", gzipTar(t, &tar.Header{Typeflag: tar.TypeSymlink, Name: "app/x", Linkname: "../../etc/passwd"})},
		{"absolute symlink", gzipTar(t, &tar.Header{Typeflag: tar.TypeSymlink, Name: "x", Linkname: "/etc/passwd"})},
		{"hard link out", gzipTar(t, &tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "../y"})},
		{"device", gzipTar(t, &tar.Header{Typeflag: tar.TypeChar, Name: "tty", Devmajor: 5})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, tt.data)
			_, err := tarball.FromFile(p, 0)
			if !errors.Is(err, tarball.ErrInvalidArchive) {
				t.Fatalf("err = %v, want ErrInvalidArchive", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(p)) {
				t.Errorf("message %q does not name the file", err)
			}
		})
	}
}

func TestFromFileSizeLimit(t *testing.T) {
	t.Parallel()
	data := mustPack(t, newTree(t, appFiles)).Data
	p := writeFile(t, data)
	size := int64(len(data))

	if _, err := tarball.FromFile(p, size); err != nil {
		t.Errorf("limit equal to the size: %v", err)
	}
	_, err := tarball.FromFile(p, size-1)
	var tle *tarball.TooLargeError
	if !errors.As(err, &tle) {
		t.Fatalf("err = %v, want a *TooLargeError", err)
	}
	if tle.Size != size || tle.Limit != size-1 {
		t.Errorf("TooLargeError = %+v, want {Size %d Limit %d}", tle, size, size-1)
	}
}

func TestFromFileRejectsNonFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "missing.tgz"), dir} {
		_, err := tarball.FromFile(p, 0)
		if err == nil || errors.Is(err, tarball.ErrInvalidArchive) {
			t.Errorf("FromFile(%s) = %v, want an error about the file itself", p, err)
		}
	}
}
