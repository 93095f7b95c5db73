package providers

import (
	"path/filepath"

	"github.com/BitcoinCacheMachine/bcmtest/cloudinit"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// LintTarget is what cloudinit.ProviderLint needs to know about the
// provider that will run a file: its name and, for the embedded provider,
// the package names the apt lists of rel's current image know (nil, so no
// package check, while that image is not built).
func LintTarget(provider string, dirs state.Dirs, rel image.Release) cloudinit.Target {
	t := cloudinit.Target{Provider: provider}
	if provider != QEMU {
		return t
	}
	img, err := image.Store{Dir: filepath.Join(dirs.Cache, "images")}.Lookup(image.RecipeFor(rel))
	if err != nil {
		return t
	}
	known, err := img.KnownPackages()
	if err != nil || len(known) == 0 {
		return t
	}
	t.KnownPackage = func(name string) bool { return known[name] }
	return t
}
