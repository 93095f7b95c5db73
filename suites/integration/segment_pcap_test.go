package integration

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCountDuplicateFramesCountsOnlyQuickRepeats: a frame repeated within
// the window counts (a reflection); the same frame a second later (an ARP
// retry) and a different frame do not.
func TestCountDuplicateFramesCountsOnlyQuickRepeats(t *testing.T) {
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr, 0xa1b2c3d4)
	b := hdr
	add := func(at time.Duration, frame string) {
		r := make([]byte, 16)
		binary.LittleEndian.PutUint32(r, uint32(at/time.Second))
		binary.LittleEndian.PutUint32(r[4:], uint32(at%time.Second/time.Microsecond))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(frame)))
		binary.LittleEndian.PutUint32(r[12:], uint32(len(frame)))
		b = append(append(b, r...), frame...)
	}
	add(10*time.Second, "arp who-has")
	add(10*time.Second+300*time.Microsecond, "arp who-has") // reflected
	add(10*time.Second+time.Millisecond, "ping seq 1")
	add(11*time.Second, "arp who-has") // a retry, not a reflection
	add(11*time.Second+5*time.Millisecond, "ping seq 2")
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, append(b, 1, 2, 3), 0o600); err != nil { // a cut-short last record
		t.Fatal(err)
	}
	st, err := countDuplicateFrames(path, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if st != (frameStats{Frames: 5, Duplicates: 1}) {
		t.Errorf("got %+v, want 5 frames, 1 duplicate", st)
	}
	if err := os.WriteFile(path, []byte("not a capture at all, not at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := countDuplicateFrames(path, time.Second); err == nil {
		t.Error("a file that is no pcap was read as one")
	}
}
