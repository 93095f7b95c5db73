package sshx

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuoteSurvivesAShell(t *testing.T) {
	argv := []string{"printf", "%s|", "plain", "with space", "it's", `$HOME`, "a;b", "", "*"}
	out, err := exec.Command("sh", "-c", Quote(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "plain|with space|it's|$HOME|a;b||*|"; string(out) != want {
		t.Errorf("got %q want %q", out, want)
	}
}

func TestLoadOrCreateKeyIsStableAndPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k", "id")
	s1, auth1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	_, auth2, err := LoadOrCreateKey(p)
	if err != nil || auth1 != auth2 || !strings.HasPrefix(auth1, "ssh-ed25519 ") || s1 == nil {
		t.Errorf("%v %q %q", err, auth1, auth2)
	}
	out, _ := exec.Command("stat", "-c", "%a", p).Output()
	if strings.TrimSpace(string(out)) != "600" {
		t.Errorf("key mode %s", out)
	}
}
