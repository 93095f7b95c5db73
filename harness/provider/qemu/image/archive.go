package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// The archive state is what decides whether a node built from the image
// would find anything to upgrade: the package indices the suite's,
// -updates' and -security's InRelease files list for the image's
// components. A re-signature alone (a new Date or Valid-Until, which
// -security gets every few days) changes no index and so no state.

// ReleaseFile is one InRelease file the image's sources read.
type ReleaseFile struct {
	// URL is where the archive serves it.
	URL string
	// ListName is the name apt gives it under /var/lib/apt/lists.
	ListName string
}

// ReleaseFiles are the InRelease files of the recipe's three sources, in
// the order of Sources.
func (r Recipe) ReleaseFiles() []ReleaseFile {
	var out []ReleaseFile
	for _, s := range []struct{ base, suite string }{
		{r.Mirror, r.Suite}, {r.Mirror, r.Suite + "-updates"}, {r.Security, r.Suite + "-security"},
	} {
		url := strings.TrimRight(s.base, "/") + "/dists/" + s.suite + "/InRelease"
		out = append(out, ReleaseFile{URL: url, ListName: listName(url)})
	}
	return out
}

// listName is apt's file name for a URL under /var/lib/apt/lists: the
// scheme dropped and every "/" turned into "_".
func listName(url string) string {
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		rest = url
	}
	return strings.ReplaceAll(rest, "/", "_")
}

// ArchiveKey names the state of the archive the files describe (each
// ReleaseFile's URL to its InRelease content): a hash over the SHA256
// lines of the binary package indices of the recipe's components
// (binary-amd64 and binary-all, every compression). A file with no such
// line is an error: it is not an InRelease of these sources.
func (r Recipe) ArchiveKey(files map[string][]byte) (string, error) {
	h := sha256.New()
	for _, f := range r.ReleaseFiles() {
		body, ok := files[f.URL]
		if !ok {
			return "", fmt.Errorf("archive state: no %s", f.URL)
		}
		lines := r.indexLines(body)
		if len(lines) == 0 {
			return "", fmt.Errorf("archive state: %s lists no package index of %s", f.URL, strings.Join(r.Components, " or "))
		}
		fmt.Fprintf(h, "%s\n%s\n", f.URL, strings.Join(lines, "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// indexLines returns the SHA256 section's lines for the components' binary
// package indices, sorted, with their spacing normalised.
func (r Recipe) indexLines(inRelease []byte) []string {
	var out []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(inRelease))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "SHA256:":
			in = true
			continue
		case !strings.HasPrefix(line, " "):
			in = false
			continue
		case !in:
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || !r.isPackageIndex(f[2]) {
			continue
		}
		out = append(out, strings.Join(f, " "))
	}
	sort.Strings(out)
	return out
}

// isPackageIndex: "main/binary-amd64/Packages.xz" and the like, for one of
// the recipe's components.
func (r Recipe) isPackageIndex(path string) bool {
	parts := strings.Split(path, "/")
	if len(parts) != 3 || (parts[1] != "binary-amd64" && parts[1] != "binary-all") {
		return false
	}
	if parts[2] != "Packages" && !strings.HasPrefix(parts[2], "Packages.") {
		return false
	}
	for _, c := range r.Components {
		if parts[0] == c {
			return true
		}
	}
	return false
}

// ArchiveKey is the state of the archive the image was built from, read
// from the InRelease files its build left in /var/lib/apt/lists (the
// recipe keeps them) with debugfs, without mounting the root.
func (img Image) ArchiveKey(ctx context.Context) (string, error) {
	r := img.Manifest.Recipe
	files := map[string][]byte{}
	for _, f := range r.ReleaseFiles() {
		path := "/var/lib/apt/lists/" + f.ListName
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "debugfs", "-R", "cat "+path, img.Root)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("reading %s from image %s: debugfs: %w: %s", path, img.Key, err, strings.TrimSpace(stderr.String()))
		}
		if len(out) == 0 {
			// debugfs exits 0 for a missing file and says so on stderr.
			return "", fmt.Errorf("reading %s from image %s: %s", path, img.Key, lastLine(stderr.String()))
		}
		files[f.URL] = out
	}
	key, err := r.ArchiveKey(files)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", img.Key, err)
	}
	return key, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
