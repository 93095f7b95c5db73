package qemu

import (
	"fmt"
	"strings"
)

// StartError is qemu exiting as it started, with what its own stderr said.
// Classifying that text happens here and only here; callers decide with
// errors.As on the result.
type StartError struct {
	// Cause is how the process ended (its exit status).
	Cause error
	// Log is the tail of qemu's stderr.
	Log string
	// PortTaken: a host forward's port was taken between choosing it and
	// qemu binding it; a retry with fresh ports can succeed.
	PortTaken bool
}

func (e *StartError) Error() string {
	return fmt.Sprintf("qemu exited at start (%v): %s", e.Cause, e.Log)
}

func (e *StartError) Unwrap() error { return e.Cause }

// classifyStart reads qemu's stderr as it exited at start.
func classifyStart(cause error, log string) *StartError {
	return &StartError{Cause: cause, Log: log,
		PortTaken: strings.Contains(log, "Could not set up host forwarding rule") || strings.Contains(log, "Address already in use")}
}
