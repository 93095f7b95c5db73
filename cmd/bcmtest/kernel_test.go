package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
)

func TestDownKeepGoingReportsKernelFindingsOnly(t *testing.T) {
	kf := &cluster.KernelFindingsError{Cluster: "CLUS1", Err: &kernelcheck.Error{Findings: []kernelcheck.Finding{
		{Node: "CLUS1-01", Kind: kernelcheck.Panic, Sources: []kernelcheck.Source{kernelcheck.Console}, Line: "Kernel panic - not syncing"}}}}
	var w bytes.Buffer
	if err := keepGoingOnKernel(&w, kf, false); err != kf {
		t.Errorf("without --keep-going the findings must fail the command, got %v", err)
	}
	if err := keepGoingOnKernel(&w, kf, true); err != nil {
		t.Errorf("--keep-going: %v", err)
	}
	if !strings.Contains(w.String(), "CLUS1-01: panic") || !strings.Contains(w.String(), "--keep-going: reported, not failed") {
		t.Errorf("printed %q", w.String())
	}
	removal := errors.Join(errors.New("destroying CLUS1: deleting CLUS1-00: busy"), kf)
	if err := keepGoingOnKernel(&w, removal, true); err != removal {
		t.Errorf("a failed removal must fail even under --keep-going, got %v", err)
	}
}
