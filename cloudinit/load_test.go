package cloudinit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", smoke, 0o644)
	binary := write("binary.img", "\x7fELF\x02\x01\x01\x00\x00\x00", 0o644)
	noHeader := write("plain.yaml", "packages: [jq]\n", 0o644)
	badType := write("bad.yaml", "#cloud-config\npackage_update: true\npackages: jq\n", 0o644)
	big := write("big.yaml", "#cloud-config\n"+strings.Repeat("#", MaxSize), 0o644)
	subdir := filepath.Join(dir, "seed")
	if err := os.Mkdir(subdir, 0o755); err != nil {
		t.Fatal(err)
	}

	data, err := Load(good)
	if err != nil || string(data) != smoke {
		t.Fatalf("Load(good) = %d bytes, %v", len(data), err)
	}

	tests := []struct {
		name, path string
		want       string // the whole message, so each rule stays distinct
		is         error
	}{
		{"empty path", "", "cloud-init file path is empty; pass the path of a #cloud-config file or script", nil},
		{"missing file", filepath.Join(dir, "nope.yaml"), filepath.Join(dir, "nope.yaml") + ": cloud-init file does not exist: no such file or directory", fs.ErrNotExist},
		{"directory", subdir, subdir + ": is a directory, not a cloud-init file", nil},
		{"binary", binary, binary + ":1:8: contains a NUL byte: binary files are not cloud-init user data", nil},
		{"too large", big, big + ": is 1048590 bytes, larger than the 1048576-byte (1 MiB) limit for a cloud-init file; is it the right file?", nil},
		{"no header", noHeader, noHeader + ":1:1: must start with #cloud-config (or #! for a script)", nil},
		{"type error", badType, badType + ":3:11: packages: must be a list, got a string", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Load(tt.path)
			if err == nil {
				t.Fatalf("Load = %d bytes, want an error", len(data))
			}
			if err.Error() != tt.want {
				t.Errorf("Load error\n got %q\nwant %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read a mode-000 file")
	}
	p := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(p, []byte("#cloud-config\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !errors.Is(err, fs.ErrPermission) || !strings.HasPrefix(err.Error(), p+": cloud-init file is not readable") {
		t.Fatalf("Load = %v, want a permission error naming %s", err, p)
	}
}
