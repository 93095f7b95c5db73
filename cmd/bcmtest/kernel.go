package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
)

// keepGoingOnKernel makes a `down` that removed its cluster but found
// kernel trouble succeed under --keep-going, printing the findings. Any
// other error (the removal itself failing, too) is returned as it is.
func keepGoingOnKernel(w io.Writer, err error, keepGoing bool) error {
	var kf *cluster.KernelFindingsError
	if keepGoing && errors.As(err, &kf) && err == error(kf) {
		fmt.Fprintf(w, "%v\n(--keep-going: reported, not failed)\n", kf)
		return nil
	}
	return err
}
