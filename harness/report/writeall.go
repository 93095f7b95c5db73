package report

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names WriteAll uses inside its directory.
const (
	JSONFile       = "summary.json"
	MarkdownFile   = "summary.md"
	HTMLFile       = "report.html"
	ScreenshotFile = "report.png"
)

// WriteAll writes every form of s into dir (created if missing) and
// returns the paths written, in the order above. The screenshot is a
// convenience: without Chromium it is left out silently, so hosts without a
// browser still get the report; with Chromium, a failed screenshot is an
// error, since it means the page itself may be broken. The other files are
// written (and listed) even then.
func WriteAll(ctx context.Context, dir string, s Summary) (files []string, err error) {
	return writeAll(ctx, ChromiumPath, dir, s)
}

// writeAll is WriteAll with the browser as a parameter, for tests.
func writeAll(ctx context.Context, chromium, dir string, s Summary) (files []string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	jsonPath := filepath.Join(dir, JSONFile)
	if err := WriteJSON(jsonPath, s); err != nil {
		return files, err
	}
	files = append(files, jsonPath)

	mdPath := filepath.Join(dir, MarkdownFile)
	if err := writeFileAtomic(mdPath, []byte(Markdown(s))); err != nil {
		return files, err
	}
	files = append(files, mdPath)

	page, err := HTML(s)
	if err != nil {
		return files, err
	}
	htmlPath := filepath.Join(dir, HTMLFile)
	if err := writeFileAtomic(htmlPath, page); err != nil {
		return files, err
	}
	files = append(files, htmlPath)

	pngPath := filepath.Join(dir, ScreenshotFile)
	switch err := screenshot(ctx, chromium, htmlPath, pngPath); {
	case errors.Is(err, ErrNoChromium):
		return files, nil
	case err != nil:
		return files, fmt.Errorf("screenshot of the report: %w", err)
	}
	return append(files, pngPath), nil
}

// Files a suite's teardown leaves beside its Ginkgo report, which a matrix
// reads into its Run.
const (
	// KernelFindingsFile holds a kernelcheck.Result.
	KernelFindingsFile = "kernel-findings.json"
	// HeartbeatsFile holds a heartbeat.Record.
	HeartbeatsFile = "heartbeats.json"
)
