// Package report turns the results of a nightly matrix run (one fresh
// cluster per node image and size, the e2e suites against each, possibly
// repeated) into files people read: summary.json for tools, summary.md for CI job
// summaries, report.html with a timing chart for a browser, and report.png,
// a headless-Chromium screenshot of that page for places that show images
// but not HTML. WriteAll writes all four.
//
// The package only renders; it never talks to clusters, so its tests run
// from a recorded summary in testdata/ without VMs. The chart is Chart.js,
// embedded from assets/ and inlined into the page, so the page needs no
// network. The screenshot needs Debian's packages chromium and
// fonts-liberation (the latter is only a Recommends of chromium, and
// without it the page falls back to DejaVu); without chromium, WriteAll
// skips the PNG and the screenshot test skips itself.
package report
