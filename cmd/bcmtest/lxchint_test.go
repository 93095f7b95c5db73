package main

import (
	"strings"
	"testing"
)

func TestUpPrintsTheLXDConfLine(t *testing.T) {
	msg := lxcHint("CLUS1", "/home/u/.local/state/bcmtest/clusters/CLUS1/lxc")
	want := "LXD_CONF=/home/u/.local/state/bcmtest/clusters/CLUS1/lxc lxc cluster list CLUS1:"
	found := false
	for _, l := range strings.Split(msg, "\n") {
		if strings.TrimSpace(l) == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no line %q in:\n%s", want, msg)
	}
	if strings.Contains(msg, "remote add") || strings.Contains(msg, "accept-certificate") {
		t.Errorf("the message still suggests trusting the certificate blindly:\n%s", msg)
	}
}
