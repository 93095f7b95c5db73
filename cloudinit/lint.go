package cloudinit

import (
	"context"
	"strings"
)

// Lint validates data like Validate and, if it is valid, also returns
// warnings about things cloud-init would silently ignore or that will stop
// working: unknown top-level keys (checked against cloud-init 22.4, with a
// "did you mean" for typos), keys only newer releases know, deprecated keys,
// unknown keys inside well-known mappings (write_files entries, apt,
// power_state, ...) and duplicate keys. Each warning is formatted like a
// Problem: "file:line:col: path: rule". At most 100 are returned; a last
// line "and N more" counts the rest.
//
// Warnings are not errors because cloud-init's own schema check, run inside
// the image, is the authority on what a release accepts; a harness that
// failed on them would break on every cloud-init upgrade.
func Lint(name string, data []byte) (warnings []string, err error) {
	ws, err := check(context.Background(), name, data)
	if err != nil {
		return nil, err
	}
	if len(ws) == 0 {
		return nil, nil
	}
	return listed(len(ws), func(i int) string { return ws[i].Error() }), nil
}

// UnknownKeys returns the top-level keys cloud-init 22.4 does not know.
// cloud-init ignores them silently, which is how a typo such as "pakages"
// costs a developer a whole boot; `bcmtest cloudinit lint` rejects them.
func UnknownKeys(name string, data []byte) ([]Problem, error) {
	ws, err := check(context.Background(), name, data)
	if err != nil {
		return nil, err
	}
	var out []Problem
	for _, w := range ws {
		if strings.HasPrefix(w.Rule, "unknown top-level key") {
			out = append(out, *w)
		}
	}
	return out, nil
}
