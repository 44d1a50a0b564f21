package vercelsim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"path"
	"slices"
	"strings"
)

// FailBuildPath is the marker file that makes a build fail. A deployment
// fails (readyState ERROR, errorCode BUILD_FAILED) when one of its files is
// a gzip'd tarball holding a regular file at this path, at its root or
// below a directory (package/.vercelsim/fail-build), or when the deployment
// lists a file at this path itself, uploaded or inlined. The marker's
// content, trimmed, becomes the errorMessage. Any process that builds a
// deploy request (a test, the demo, a chaos run) can so choose which
// requests fail, with no side channel to the simulator.
const FailBuildPath = ".vercelsim/fail-build"

// defaultFailMessage is the errorMessage of an empty marker.
const defaultFailMessage = "Build failed: " + FailBuildPath + " is present"

// maxMarkerSize bounds what is read of a marker; maxUnpacked bounds how
// much of a tarball is decompressed looking for it, so a compression bomb
// costs little.
const (
	maxMarkerSize = 64 << 10
	maxUnpacked   = 1 << 30
)

// scanFailMarker looks for FailBuildPath in data if data is a gzip'd tar.
func scanFailMarker(data []byte) (message string, found bool) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return "", false
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return "", false
	}
	tr := tar.NewReader(io.LimitReader(zr, maxUnpacked))
	for {
		h, err := tr.Next()
		if err != nil {
			return "", false
		}
		if h.Typeflag != tar.TypeReg || !isMarkerPath(h.Name) {
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(tr, maxMarkerSize))
		return failMessage(b), true
	}
}

func isMarkerPath(name string) bool {
	return strings.HasSuffix(path.Clean("/"+name), "/"+FailBuildPath)
}

func failMessage(content []byte) string {
	if msg := strings.TrimSpace(string(content)); msg != "" {
		return msg
	}
	return defaultFailMessage
}

// Tarball returns a gzip'd tar of files (path → content), in path order,
// the shape of a deployment's .vercel/source.tgz. A test makes a build fail
// by including FailBuildPath:
//
//	src := vercelsim.Tarball(map[string]string{
//		"index.html":            "<h1>hi</h1>",
//		vercelsim.FailBuildPath: "Module not found: ./missing",
//	})
func Tarball(files map[string]string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		content := files[name]
		// Writing to a bytes.Buffer cannot fail; only a bad header
		// could, and these are plain regular files.
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
		_, _ = io.WriteString(tw, content)
	}
	_ = tw.Close()
	_ = zw.Close()
	return buf.Bytes()
}
