package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// A node restored from a snapshot is as current as the snapshot's disk.
// So the snapshot key carries the archive's state when it differs from
// the one the image was built from, and such a snapshot's template first
// upgrades itself through the apt cache (upgrade.go): a newer archive
// makes one new snapshot, never an upgrade in every node.

// archiveReading is the archive's state as last read through the apt
// cache for one image's sources, remembered in the cache directory so
// the runs within archive-fresh of it do not read it again.
type archiveReading struct {
	Key  string    `json:"key"`
	Read time.Time `json:"read"`
}

func archiveReadingPath(d state.Dirs, suite string) string {
	return filepath.Join(d.Cache, "archive-state", suite+".json")
}

// ArchiveError is the archive's state that could not be read through the
// apt cache (the archive or the cache unreachable, or an answer that is
// not an InRelease).
type ArchiveError struct {
	URL string
	Err error
}

func (e *ArchiveError) Error() string {
	return fmt.Sprintf("reading the archive's state from %s through the apt cache: %v", e.URL, e.Err)
}

func (e *ArchiveError) Unwrap() error { return e.Err }

// currentArchive returns the state of the archive the image's sources
// read, from a reading younger than archive-fresh or else read now
// through the apt cache on aptPort (each InRelease within archive-read).
func (p *Provider) currentArchive(ctx context.Context, r image.Recipe, aptPort int) (string, error) {
	path := archiveReadingPath(p.cfg.Dirs, r.Suite)
	var last archiveReading
	if err := state.LoadJSON(path, &last); err == nil && last.Key != "" {
		if age := time.Since(last.Read); age >= 0 && age < p.cfg.Intervals.ArchiveFresh {
			return last.Key, nil
		}
	}
	key, err := readArchive(ctx, r, aptPort, p.cfg.Intervals.ArchiveRead.Timeout)
	if err != nil {
		return "", err
	}
	if err := state.MkdirPrivate(filepath.Dir(path)); err == nil {
		if err := state.SaveJSON(path, archiveReading{Key: key, Read: time.Now().UTC()}); err != nil {
			p.logf("archive state: remembering the reading: %v", err)
		}
	}
	return key, nil
}

// readArchive fetches the recipe's InRelease files through the apt cache
// (an HTTP proxy on 127.0.0.1:aptPort, which revalidates them with the
// archive) and returns the state they describe.
func readArchive(ctx context.Context, r image.Recipe, aptPort int, timeout time.Duration) (string, error) {
	proxy, _ := url.Parse("http://127.0.0.1:" + strconv.Itoa(aptPort))
	client := &http.Client{
		Transport: &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true},
		Timeout:   timeout,
	}
	files := map[string][]byte{}
	for _, f := range r.ReleaseFiles() {
		b, err := fetch(ctx, client, f.URL)
		if err != nil {
			return "", &ArchiveError{URL: f.URL, Err: err}
		}
		files[f.URL] = b
	}
	key, err := r.ArchiveKey(files)
	if err != nil {
		return "", &ArchiveError{URL: r.ReleaseFiles()[0].URL, Err: err}
	}
	return key, nil
}

func fetch(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		return nil, ue.Err // the caller names the URL
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return b, nil
}

// snapshotArchive decides the archive part of a new snapshot's shape: ""
// when the archive is as the image was built (the image's own snapshot),
// the archive's key when it moved on. With the archive unreadable it
// falls back to the newest snapshot of the shape that is in the cache,
// and says so.
func (p *Provider) snapshotArchive(ctx context.Context, img image.Image, sh Shape, aptPort int) string {
	if aptPort == 0 {
		return "" // no apt cache: nothing to upgrade from
	}
	built, err := p.builtArchive(ctx, img)
	if err != nil {
		p.logf("archive state: %v; a new snapshot of this image upgrades itself", err)
	}
	cur, err := p.currentArchive(ctx, img.Manifest.Recipe, aptPort)
	if err != nil {
		newest := p.newestArchiveOf(sh)
		var ae *ArchiveError
		if !errors.As(err, &ae) {
			err = &ArchiveError{URL: "the apt cache", Err: err}
		}
		switch newest {
		case "":
			p.logf("archive state: %v; using the snapshot of the archive image %s was built from", err, img.Key)
		default:
			p.logf("archive state: %v; using the newest snapshot of this shape, of archive state %s", err, newest)
		}
		return newest
	}
	if cur == built {
		return ""
	}
	return cur
}

// builtArchive is the archive state img was built from, read once per
// provider.
func (p *Provider) builtArchive(ctx context.Context, img image.Image) (string, error) {
	p.mu.Lock()
	key, ok := p.imageArchive[img.Key]
	p.mu.Unlock()
	if ok {
		return key, nil
	}
	key, err := img.ArchiveKey(ctx)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.imageArchive[img.Key] = key
	p.mu.Unlock()
	return key, nil
}

// newestArchiveOf is the archive part of the newest complete snapshot of
// the shape in the cache ("" for the image's own, or none).
func (p *Provider) newestArchiveOf(sh Shape) string {
	snaps, err := Snapshots(p.cfg.Dirs)
	if err != nil {
		return ""
	}
	base := sh
	base.Archive = ""
	for _, s := range snaps { // newest first
		m := s.Manifest.Shape
		m.Archive = ""
		if m.Key() == base.Key() && s.RestoreFailed == "" {
			return s.Manifest.Shape.Archive
		}
	}
	return ""
}
