package buildstep

import (
	"context"
	"strings"
	"testing"
)

// TestRunHandsOverLinesAndPutsTheTailInTheError: every output line reaches
// OnLine, and a failing step's error names it and ends with its last lines.
func TestRunHandsOverLinesAndPutsTheTailInTheError(t *testing.T) {
	var got []string
	err := Run(context.Background(), Step{Name: "sh", Args: []string{"-c", "echo one; echo two >&2; exit 3"},
		OnLine: func(l string) { got = append(got, l) }})
	if err == nil {
		t.Fatal("a step exiting 3 returned no error")
	}
	if len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("lines = %q, want one, two", got)
	}
	if !strings.HasPrefix(err.Error(), "sh: exit status 3\n") || !strings.HasSuffix(err.Error(), "one\ntwo") {
		t.Errorf("error = %q", err)
	}
	if err := Run(context.Background(), Step{Name: "true"}); err != nil {
		t.Errorf("true: %v", err)
	}
}

// TestRunKeepsOnlyTheLastLines bounds the tail an error carries.
func TestRunKeepsOnlyTheLastLines(t *testing.T) {
	err := Run(context.Background(), Step{Name: "sh", Args: []string{"-c", "seq 1 100; exit 1"}})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")[1:]
	if len(lines) != tailLines || lines[0] != "61" || lines[len(lines)-1] != "100" {
		t.Errorf("tail = %d lines from %q to %q, want 40 from 61 to 100", len(lines), lines[0], lines[len(lines)-1])
	}
}
