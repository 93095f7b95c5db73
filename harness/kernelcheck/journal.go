package kernelcheck

import (
	"regexp"
	"strings"
)

// journalLine is a line of `journalctl -o short-monotonic`: the time since
// boot, the host, then the message, which for the kernel's own lines is
// prefixed "kernel: " (lines written to /dev/kmsg from user space carry
// their own identifier instead, and keep it, as dmesg shows them).
var journalLine = regexp.MustCompile(`^(\[\s*\d+\.\d+\]) \S+ (?:kernel: )?`)

// FromJournal turns `journalctl -k -o short-monotonic` output into dmesg's
// form ("[  12.345678] message"), the form Scan reads; lines without a
// timestamp ("-- Boot ... --") are kept as they are.
func FromJournal(text string) string {
	var b strings.Builder
	for l := range strings.Lines(text) {
		b.WriteString(journalLine.ReplaceAllString(l, "$1 "))
	}
	return b.String()
}
