package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// givenAddresses is the file, in the group's segment directory, of every
// private address handed out in the group since its first node. A node
// that joins a cluster never gets the address of one removed from it:
// LXD 5.0 can keep a removed leader in its raft configuration (a spare
// with no name), and a new member at that address then deadlocked the
// cluster (seen growing a cluster back after its leader was removed:
// both members Offline, no heartbeat). The file goes with the segment
// directory when the group's last node is deleted.
func (d switchDir) givenAddresses() string { return filepath.Join(string(d), "addresses") }

// readGiven reads the addresses handed out in d's group; none when the
// file is missing.
func readGiven(d switchDir) (map[string]bool, error) {
	f, err := os.Open(d.givenAddresses())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if a := strings.TrimSpace(sc.Text()); a != "" {
			out[a] = true
		}
	}
	return out, sc.Err()
}

// recordGiven adds addr to d's list (0600 in a 0700 directory); fresh
// starts the list again, for a group's first node.
func recordGiven(d switchDir, addr string, fresh bool) error {
	if err := state.MkdirPrivate(string(d)); err != nil {
		return err
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		flags = os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	}
	f, err := os.OpenFile(d.givenAddresses(), flags, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, addr); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
