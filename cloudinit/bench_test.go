package cloudinit

import (
	"context"
	"strings"
	"testing"
)

type hostileCase struct {
	name string
	data []byte
}

// hostileCases are inputs built to be expensive for their size.
func hostileCases() []hostileCase {
	return []hostileCase{
		{"alias-fanout-35KB", aliasFanout(35 << 10)},
		{"alias-fanout-500KB", aliasFanout(500 << 10)},
		{"flat-list-1MiB", flatList(MaxSize)},
		{"billion-laughs", billionLaughs()},
		{"syntax-error-at-end-1MiB", syntaxErrorAtEnd()},
	}
}

// BenchmarkLintHostile times Lint on the hostile inputs. bytes is the
// input's size, lines/op the lines Lint reported (warnings, or the error's
// lines, capped at 100 plus "and N more").
func BenchmarkLintHostile(b *testing.B) {
	for _, tc := range hostileCases() {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			var problems int
			for b.Loop() {
				warnings, err := Lint("vm.yaml", tc.data)
				problems = len(warnings)
				if err != nil {
					problems = max(1, strings.Count(err.Error(), "\n")+1)
				}
			}
			b.ReportMetric(float64(len(tc.data)), "bytes")
			b.ReportMetric(float64(problems), "lines/op")
		})
	}
}

// BenchmarkProviderLintHostile times ProviderLint for qemu on the same
// inputs. It validates first, so on an invalid input it measures that and
// returns Validate's error.
func BenchmarkProviderLintHostile(b *testing.B) {
	for _, tc := range hostileCases() {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.data)))
			var warnings int
			for b.Loop() {
				ps, _ := ProviderLint(context.Background(), "vm.yaml", tc.data, Target{Provider: "qemu"})
				warnings = len(ps)
			}
			b.ReportMetric(float64(len(tc.data)), "bytes")
			b.ReportMetric(float64(warnings), "warnings/op")
		})
	}
}
