package report

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWriteAllWithoutChromium(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	files, err := writeAll(context.Background(), filepath.Join(dir, "no-such-chromium"), dir, recorded(t))
	if err != nil {
		t.Fatalf("without chromium WriteAll must still succeed: %v", err)
	}
	want := []string{filepath.Join(dir, JSONFile), filepath.Join(dir, MarkdownFile), filepath.Join(dir, HTMLFile)}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files = %v, want %v", files, want)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	err = screenshot(context.Background(), "/nonexistent/chromium", files[2], filepath.Join(dir, "x.png"))
	if !errors.Is(err, ErrNoChromium) || !strings.Contains(err.Error(), "install package chromium") {
		t.Errorf("missing chromium: err = %v, want ErrNoChromium saying what to install", err)
	}
}

// TestScreenshot renders the recorded summary with its second image,
// screenshots it with the real browser and checks that Chart.js drew the
// chart: every phase's colour is present in the top of the page, and the
// total lines span the plot. BCMTEST_KEEP_SCREENSHOT=DIR keeps the page and
// its PNG there, for a person to look at.
func TestScreenshot(t *testing.T) {
	if _, err := os.Stat(ChromiumPath); err != nil {
		t.Skipf("no headless browser: %v (install package chromium to run this test)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	if keep := os.Getenv("BCMTEST_KEEP_SCREENSHOT"); keep != "" {
		dir = keep
	}
	files, err := WriteAll(ctx, dir, twoImages(t))
	if err != nil {
		t.Fatal(err)
	}
	pngPath := filepath.Join(dir, ScreenshotFile)
	if len(files) != 4 || files[3] != pngPath {
		t.Fatalf("files = %v, want the screenshot last", files)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != screenWidth || b.Dy() != screenHeight {
		t.Fatalf("screenshot is %dx%d, want the window size %dx%d", b.Dx(), b.Dy(), screenWidth, screenHeight)
	}

	// The chart sits under the heading; the tables start below y=500 and
	// use none of the series colours.
	region := image.Rect(0, 0, screenWidth, 500)
	for _, p := range phases() {
		want := hexColor(t, p.Color)
		n, minX, maxX := 0, screenWidth, -1
		for y := region.Min.Y; y < region.Max.Y; y++ {
			for x := region.Min.X; x < region.Max.X; x++ {
				if near(rgba(img.At(x, y)), want, 2) {
					n++
					minX, maxX = min(minX, x), max(maxX, x)
				}
			}
		}
		if n < 300 {
			t.Errorf("series %s (%s): %d pixels in the chart area, want at least 300", p.Label, p.Color, n)
		}
		// Lines run from the 1-node point to the 4-node one: most of the width.
		if p.Label == "total" && maxX-minX < screenWidth/2 {
			t.Errorf("total line spans x=%d..%d only; chart not drawn across the plot", minX, maxX)
		}
	}
}

func rgba(c color.Color) color.RGBA {
	r, g, b, a := c.RGBA()
	return color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
}

func hexColor(t *testing.T, s string) color.RGBA {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
	if err != nil || len(s) != 7 {
		t.Fatalf("bad colour %q", s)
	}
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) bool { return int(x)-int(y) <= tol && int(y)-int(x) <= tol }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}
