package main

import (
	"context"
	"io"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/progress"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// newProgress is the live progress of a long command on stderr: bars on a
// terminal, timestamped lines elsewhere. It is also the command's log.
func newProgress(stderr io.Writer) *progress.Progress {
	return progress.New(stderr, progress.Options{})
}

// phased hands each launch's boot phases to the progress display. A lone
// VM's launch (cloudinit check) also starts its line and ends the display
// when it returns, as the command's report follows on stdout.
type phased struct {
	provider.Provider
	pr   *progress.Progress
	lone bool
}

// Unwrap is the provider phased reports for (its release, for one).
func (p phased) Unwrap() provider.Provider { return p.Provider }

func (p phased) Launch(ctx context.Context, in provider.LaunchInput) (provider.Info, error) {
	if in.OnPhase == nil {
		in.OnPhase = p.pr.OnPhase(in.Name)
	}
	if p.lone {
		p.pr.Launching(in.Name)
		defer p.pr.Close()
	}
	return p.Provider.Launch(ctx, in)
}

// phasedPreparer keeps the provider's Prepare, which Up times as the image
// phase.
type phasedPreparer struct {
	phased
	prep cluster.Preparer
}

func (p phasedPreparer) Prepare(ctx context.Context, in provider.LaunchInput) error {
	return p.prep.Prepare(ctx, in)
}

// withPhases wraps p so that its launches report boot phases to pr.
func withPhases(p provider.Provider, pr *progress.Progress, lone bool) provider.Provider {
	ph := phased{Provider: p, pr: pr, lone: lone}
	if prep, ok := p.(cluster.Preparer); ok {
		return phasedPreparer{phased: ph, prep: prep}
	}
	return ph
}

// nodeNames are the nodes of a cluster of name with members members.
func nodeNames(name string, members int) []string {
	out := make([]string, 0, members+1)
	for i := 0; i <= members; i++ {
		out = append(out, cluster.NodeName(name, i))
	}
	return out
}
