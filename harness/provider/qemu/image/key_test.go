package image

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// The bookworm image and its booted snapshots are cached on every machine
// that ran the suites (CI caches them by this key): a key that changed by
// accident costs each of them a 15-minute rebuild.
const bookwormKey = "bookworm-0c2b88ddd92a"

func TestBookwormRecipeKeyIsPinned(t *testing.T) {
	if got := RecipeFor(Bookworm).Key(); got != bookwormKey {
		t.Fatalf("the bookworm recipe's key is %s, pinned %s. Changing the recipe is allowed, but it means every "+
			"cache rebuilds the image and its snapshots: if that is meant, update bookwormKey here in the same change", got, bookwormKey)
	}
	if DefaultRecipe().Key() != bookwormKey {
		t.Errorf("the default recipe is not bookworm's (%s)", DefaultRecipe().Key())
	}
}

func TestEachReleaseHasItsOwnRecipe(t *testing.T) {
	b, tr := RecipeFor(Bookworm), RecipeFor(Trixie)
	if tr.Suite != "trixie" || b.Suite != "bookworm" || tr.Key() == b.Key() || !strings.HasPrefix(tr.Key(), "trixie-") {
		t.Fatalf("recipes: bookworm %s, trixie %s", b.Key(), tr.Key())
	}
	for _, c := range []struct {
		rel       Release
		want, not []string
	}{
		{Bookworm, []string{"/usr/lib/python3.11 ", "After=cloud-init.service\n"}, []string{"python3.13", "cloud-init-network", "cloud-init-main"}},
		{Trixie, []string{"/usr/lib/python3.13 ", "After=cloud-init-network.service\n", "Before=cloud-init-network.service sysinit.target",
			"cloud-init-main.service.d/bcmtest-seed.conf"}, []string{"python3.11", "cloud-init.service"}},
	} {
		s := RecipeFor(c.rel).Customize
		if p := placeholder.FindString(s); p != "" {
			t.Errorf("%s customize script keeps the placeholder %s", c.rel, p)
		}
		for _, w := range c.want {
			if !strings.Contains(s, w) {
				t.Errorf("%s customize script lacks %q", c.rel, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(s, n) {
				t.Errorf("%s customize script has %q", c.rel, n)
			}
		}
	}
}

func TestParseRelease(t *testing.T) {
	for in, want := range map[string]Release{"": Bookworm, "bookworm": Bookworm, "trixie": Trixie} {
		if got, err := ParseRelease(in); err != nil || got != want {
			t.Errorf("ParseRelease(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"Trixie", "sid", "bullseye", " trixie"} {
		_, err := ParseRelease(bad)
		var u *UnknownReleaseError
		if !errors.As(err, &u) || u.Name != bad || !strings.Contains(err.Error(), "must be bookworm or trixie") {
			t.Errorf("ParseRelease(%q): %v", bad, err)
		}
	}
}

// placeholder is one of customizeTemplate's @NAME@ placeholders.
var placeholder = regexp.MustCompile(`@[A-Z_]+@`)
