// Package providers chooses and constructs a VM provider by name, so the
// rest of the harness never imports a backend directly.
package providers

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Names accepted for Options.Name.
const (
	Auto      = "auto"
	QEMU      = "qemu"
	Multipass = "multipass"
)

// Options choose and configure a provider.
type Options struct {
	// Name is auto (default), qemu or multipass; BCMTEST_PROVIDER sets it
	// when empty.
	Name string
	Dirs state.Dirs
	// Accel for qemu: auto, kvm or tcg (BCMTEST_ACCEL).
	Accel string
	// NoSnapshot boots qemu VMs cold instead of from the booted snapshot
	// (BCMTEST_SNAPSHOT=0).
	NoSnapshot bool
	// Image is the Debian release the qemu provider's nodes run; ""
	// reads BCMTEST_IMAGE (unset: image.DefaultRelease). Multipass
	// launches its own image (MultipassImage).
	Image image.Release
	// MultipassBinary is the multipass executable (BCMTEST_MULTIPASS).
	MultipassBinary string
	// MultipassImage is the image multipass launches (BCMTEST_MULTIPASS_IMAGE).
	MultipassImage string
	Log            io.Writer
	// Intervals bound the provider's waits; zero means wait.Load (the
	// defaults overridden by BCMTEST_INTERVALS).
	Intervals wait.Intervals
}

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = os.Getenv("BCMTEST_PROVIDER")
	}
	if o.Name == "" {
		o.Name = Auto
	}
	if o.Accel == "" {
		o.Accel = os.Getenv("BCMTEST_ACCEL")
	}
	if o.MultipassBinary == "" {
		o.MultipassBinary = os.Getenv("BCMTEST_MULTIPASS")
	}
	if o.Image == "" {
		rel, err := ImageFromEnv()
		if err != nil {
			return err
		}
		o.Image = rel
	}
	switch v := os.Getenv("BCMTEST_SNAPSHOT"); v {
	case "", "1":
	case "0":
		o.NoSnapshot = true
	default:
		return fmt.Errorf("BCMTEST_SNAPSHOT=%q: must be 0 (boot every VM cold) or 1 (restore booted snapshots, the default)", v)
	}
	if o.MultipassBinary == "" {
		o.MultipassBinary = "multipass"
	}
	if o.MultipassImage == "" {
		o.MultipassImage = os.Getenv("BCMTEST_MULTIPASS_IMAGE")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Intervals == (wait.Intervals{}) {
		iv, err := wait.Load()
		if err != nil {
			return err
		}
		o.Intervals = iv
	}
	o.Intervals = o.Intervals.WithDefaults()
	if o.Dirs.State == "" {
		d, err := state.Default()
		if err != nil {
			return err
		}
		o.Dirs = d
	}
	return nil
}

// Validate checks the provider name without constructing anything.
func Validate(name string) error {
	switch name {
	case "", Auto, QEMU, Multipass:
		return nil
	}
	return fmt.Errorf("provider %q: must be auto, qemu or multipass", name)
}

// ImageFromEnv is the release BCMTEST_IMAGE names (unset: the default);
// a name without a recipe is an error naming the variable and the choices.
func ImageFromEnv() (image.Release, error) {
	rel, err := image.ParseRelease(os.Getenv(image.ImageEnv))
	if err != nil {
		return "", fmt.Errorf("%s: %w", image.ImageEnv, err)
	}
	return rel, nil
}

// New constructs the provider. With auto it uses multipass when `multipass
// version` answers and the embedded QEMU provider otherwise, and prints the
// choice and why.
func New(ctx context.Context, o Options) (provider.Provider, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := Validate(o.Name); err != nil {
		return nil, err
	}
	name := o.Name
	why := "asked for"
	if name == Auto {
		if v, ok := detectMultipass(ctx, o.MultipassBinary); ok {
			name, why = Multipass, "auto: multipass "+v+" answers"
		} else {
			name, why = QEMU, "auto: multipass not found, using the embedded QEMU provider"
		}
	}
	fmt.Fprintf(o.Log, "provider: %s (%s)\n", name, why)
	switch name {
	case Multipass:
		return newMultipass(ctx, o)
	default:
		rel, err := image.ParseRelease(string(o.Image))
		if err != nil {
			return nil, err
		}
		return qemu.New(qemu.Config{Dirs: o.Dirs, Recipe: image.RecipeFor(rel), Accel: o.Accel, Log: o.Log, NoSnapshot: o.NoSnapshot, Intervals: o.Intervals})
	}
}
