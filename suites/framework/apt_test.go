package framework

import (
	"reflect"
	"testing"
	"time"
)

const history = `
Start-Date: 2026-12-04  15:07:01
Commandline: apt-get install cloud-init
Install: cloud-init:amd64 (22.4.2-1+deb12u3)
End-Date: 2026-12-04  15:07:30

Start-Date: 2026-12-04  18:40:02
Commandline: apt-get -q -y full-upgrade
Upgrade: tor:amd64 (0.4.7.16-1~bcmtestaged, 0.4.7.16-1), curl:amd64 (7.88.1-10+deb12u14~bcmtestaged, 7.88.1-10+deb12u14)
End-Date: 2026-12-04  18:40:09

Start-Date: 2026-12-04  18:55:12
Commandline: /usr/bin/apt-get --option=Dpkg::Options::=--force-confold --assume-yes --quiet dist-upgrade
Upgrade: wait-for-it:amd64 (0.0~git20180723-1~bcmtestaged, 0.0~git20180723-1)
End-Date: 2026-12-04  18:55:14
`

func TestAptUpgradesTakesOnlyTheEntriesSince(t *testing.T) {
	final, err := SystemdTime("Fri 2026-12-04 18:55:11 UTC")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := AptUpgrades(history, final), []string{"wait-for-it:amd64 (0.0~git20180723-1~bcmtestaged, 0.0~git20180723-1)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("since cloud-final: %q", got)
	}
	all := AptUpgrades(history, time.Time{})
	if len(all) != 3 || all[1] != "curl:amd64 (7.88.1-10+deb12u14~bcmtestaged, 7.88.1-10+deb12u14)" {
		t.Errorf("all: %q", all)
	}
	if got := AptUpgrades(history, final.Add(time.Minute)); len(got) != 0 {
		t.Errorf("after the last entry: %q", got)
	}
	if got := AptUpgrades("Start-Date: garbled\nUpgrade: x:amd64 (1, 2)\n", final); len(got) != 1 {
		t.Errorf("an entry with an unreadable date must count: %q", got)
	}
}
