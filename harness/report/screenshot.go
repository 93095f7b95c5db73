package report

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// ChromiumPath is Debian's chromium launcher (package chromium). Only that
// path is used, so which browser drew a screenshot never depends on PATH.
const ChromiumPath = "/usr/bin/chromium"

// ErrNoChromium is returned by Screenshot when ChromiumPath does not exist;
// WriteAll treats it as "no screenshot" rather than as a failure.
var ErrNoChromium = errors.New("chromium not found: install package chromium (apt-get install chromium fonts-liberation)")

// Screenshot geometry and limits.
const (
	screenWidth  = 1280
	screenHeight = 1000
	// renderBudget is virtual time Chromium grants the page before the
	// screenshot; the page draws synchronously (animations off), so this is
	// a margin, and virtual time means it costs no wall time once idle.
	renderBudget = 5 * time.Second
)

// Screenshot renders the page at htmlPath in headless Chromium and writes a
// 1280×1000 PNG of its top to pngPath. The browser
// gets a throwaway profile and HOME, no network features, and is killed
// with its whole process group if ctx ends or it overruns the screenshot
// interval.
func Screenshot(ctx context.Context, htmlPath, pngPath string) error {
	return screenshot(ctx, ChromiumPath, htmlPath, pngPath)
}

// screenshot is Screenshot with the browser as a parameter, so tests can
// show what happens on a host without one.
func screenshot(ctx context.Context, chromium, htmlPath, pngPath string) error {
	if _, err := os.Stat(chromium); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s does not exist", ErrNoChromium, chromium)
		}
		return fmt.Errorf("checking for chromium: %w", err)
	}
	absHTML, err := filepath.Abs(htmlPath)
	if err != nil {
		return err
	}
	if _, err := os.Stat(absHTML); err != nil {
		return fmt.Errorf("page to screenshot: %w", err)
	}
	absPNG, err := filepath.Abs(pngPath)
	if err != nil {
		return err
	}
	// A stale PNG would pass for this run's if Chromium wrote nothing.
	if err := os.Remove(absPNG); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	profile, err := os.MkdirTemp("", "bcmtest-chromium-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)

	// The screenshot interval bounds a hung browser when the caller's
	// context has no deadline of its own; process-exit, how long its pipes
	// may stay open once it is killed.
	iv := wait.LoadOrDefault()
	ctx, cancel := context.WithTimeout(ctx, iv.Screenshot.Timeout)
	defer cancel()
	page := url.URL{Scheme: "file", Path: absHTML}
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir="+profile,
		"--window-size="+strconv.Itoa(screenWidth)+","+strconv.Itoa(screenHeight),
		"--virtual-time-budget="+strconv.FormatInt(renderBudget.Milliseconds(), 10),
		"--screenshot="+absPNG,
		page.String())
	// Chromium writes caches and an NSS database under HOME; keep them in
	// the throwaway profile rather than the CI user's home.
	cmd.Env = append(os.Environ(), "HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile)
	// Its renderer and zygote children would outlive a plain Kill of the
	// launcher, so the browser gets its own process group and loses it whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = iv.ProcessExit.Timeout
	out := &tail{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out

	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers, if any
	}
	if ctx.Err() != nil {
		return fmt.Errorf("chromium screenshot of %s: %w; output:\n%s", absHTML, ctx.Err(), out)
	}
	if runErr != nil {
		return fmt.Errorf("chromium screenshot of %s: %w; output:\n%s", absHTML, runErr, out)
	}
	if st, err := os.Stat(absPNG); err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium exited cleanly but wrote no screenshot to %s; output:\n%s", absPNG, out)
	}
	return nil
}

// tail keeps the last max bytes written to it: Chromium logs a lot of
// harmless D-Bus noise, and an error needs only the end of it.
type tail struct {
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.buf) }
