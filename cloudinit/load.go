package cloudinit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Load reads a user's cloud-init file and validates it, so a bad file is
// rejected before any VM starts. Every error names the path and the rule it
// breaks. File system errors wrap the underlying error (errors.Is(err,
// fs.ErrNotExist) works); content errors are a *Problem or Problems, as from
// Validate.
func Load(path string) ([]byte, error) {
	return LoadContext(context.Background(), path)
}

// LoadContext is Load that gives up when ctx is done: a hostile file can
// still take a while to check, and an interrupted run should not wait for
// it. The error then names the path and wraps ctx.Err(), so errors.Is(err,
// context.Canceled) works.
func LoadContext(ctx context.Context, path string) ([]byte, error) {
	if strings.TrimSpace(path) == "" {
		return nil, errors.New("cloud-init file path is empty; pass the path of a #cloud-config file or script")
	}
	// Stat before opening: opening a FIFO would block until a writer came.
	info, err := os.Stat(path)
	if err != nil {
		return nil, fsError(path, err)
	}
	switch {
	case info.IsDir():
		return nil, fmt.Errorf("%s: is a directory, not a cloud-init file", path)
	case !info.Mode().IsRegular():
		return nil, fmt.Errorf("%s: is not a regular file (%s), not a cloud-init file", path, fileType(info.Mode()))
	case info.Size() > MaxSize:
		return nil, fmt.Errorf("%s: is %d bytes, larger than the %d-byte (1 MiB) limit for a cloud-init file; is it the right file?", path, info.Size(), MaxSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fsError(path, err)
	}
	defer f.Close()
	// Read one byte past the limit: the file may have grown since Stat.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read cloud-init file: %w", path, unwrapPath(err))
	}
	if _, err := check(ctx, path, data); err != nil {
		return nil, err
	}
	return data, nil
}

// fsError words the common file system failures as rules.
func fsError(path string, err error) error {
	cause := unwrapPath(err)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: cloud-init file does not exist: %w", path, cause)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: cloud-init file is not readable: %w", path, cause)
	}
	return fmt.Errorf("%s: cannot open cloud-init file: %w", path, cause)
}

// unwrapPath drops the *fs.PathError wrapper, whose text would repeat the
// path, and keeps the errno, which still satisfies errors.Is.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}
