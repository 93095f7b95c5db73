package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// RunInRoot runs argv inside the image's root filesystem without booting
// it: the base image is loop-mounted read-only under a throwaway overlay
// (so the cache is never written), files are placed in the overlay, and
// argv runs under chroot. It answers questions about the image's own
// software, such as `cloud-init schema` with the very cloud-init the VMs
// run. Needs root (mount, chroot).
func (img Image) RunInRoot(ctx context.Context, files map[string][]byte, argv ...string) (stdout, stderr []byte, code int, err error) {
	if os.Geteuid() != 0 {
		return nil, nil, -1, errors.New("running inside the image needs root (mount and chroot)")
	}
	tmp, err := os.MkdirTemp("", "bcmtest-root-")
	if err != nil {
		return nil, nil, -1, err
	}
	defer os.RemoveAll(tmp)
	lower, upper, work, merged := filepath.Join(tmp, "lower"), filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, nil, -1, err
		}
	}
	mount := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "mount", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("mount %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	// noload: do not replay the journal, so a read-only mount never writes.
	if err := mount("-o", "ro,loop,noload", img.Root, lower); err != nil {
		return nil, nil, -1, err
	}
	defer umount(lower)
	if err := mount("-t", "overlay", "overlay", "-o", "lowerdir="+lower+",upperdir="+upper+",workdir="+work, merged); err != nil {
		return nil, nil, -1, err
	}
	defer umount(merged)
	for p, b := range files {
		full := filepath.Join(merged, filepath.Clean("/"+p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, nil, -1, err
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			return nil, nil, -1, err
		}
	}
	cmd := exec.CommandContext(ctx, "chroot", append([]string{merged}, argv...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.Bytes(), e.Bytes(), ee.ExitCode(), nil
	}
	if err != nil {
		return o.Bytes(), e.Bytes(), -1, fmt.Errorf("chroot %s: %w", strings.Join(argv, " "), err)
	}
	return o.Bytes(), e.Bytes(), 0, nil
}

func umount(dir string) {
	for i := 0; i < 5; i++ {
		if exec.Command("umount", dir).Run() == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	exec.Command("umount", "-l", dir).Run()
}
