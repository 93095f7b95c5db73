package wait

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUntilReturnsWhenDoneAndReportsWhyOnTimeout(t *testing.T) {
	n := 0
	err := Until(context.Background(), time.Millisecond, 2*time.Millisecond, func(context.Context) (bool, string, error) {
		n++
		return n == 3, "not yet", nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err=%v n=%d", err, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = Until(ctx, time.Millisecond, 5*time.Millisecond, func(context.Context) (bool, string, error) { return false, "member is Offline", nil })
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "member is Offline") {
		t.Errorf("err = %v", err)
	}
	boom := errors.New("boom")
	if err := Until(context.Background(), time.Millisecond, time.Millisecond, func(context.Context) (bool, string, error) { return false, "", boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
}

func TestForPollsAtItsIntervalUntilItsTimeout(t *testing.T) {
	n := 0
	err := For(context.Background(), Interval{Timeout: 50 * time.Millisecond, Poll: time.Millisecond}, func(context.Context) (bool, string, error) {
		n++
		return false, "never", nil
	})
	if !errors.Is(err, context.DeadlineExceeded) || n < 5 {
		t.Errorf("err=%v after %d tries", err, n)
	}
}

func TestEveryFieldHasOneNameAndADefault(t *testing.T) {
	var iv Intervals
	fields := reflect.TypeOf(iv).NumField()
	if got := len(iv.table()); got != fields {
		t.Fatalf("the table has %d names for %d fields", got, fields)
	}
	seen := map[*time.Duration]string{}
	for _, e := range iv.table() {
		if prev, ok := seen[e.timeout]; ok {
			t.Errorf("%s and %s name the same field", prev, e.name)
		}
		seen[e.timeout] = e.name
	}
	d := DefaultIntervals()
	for _, name := range Names() {
		in, err := d.Get(name)
		if err != nil || in.Timeout <= 0 {
			t.Errorf("%s: %+v %v", name, in, err)
		}
		if e, _ := d.lookup(name); e.poll != nil && (in.Poll <= 0 || in.Poll > in.Timeout) {
			t.Errorf("%s: default poll %s for timeout %s", name, in.Poll, in.Timeout)
		}
	}
	if (Intervals{}).WithDefaults() != d {
		t.Error("WithDefaults of nothing is not DefaultIntervals")
	}
}

func TestLoadAppliesInlineOverrides(t *testing.T) {
	t.Setenv(EnvVar, "boot=12m, tor-active=2m,2s,leak-check=90s")
	iv, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultIntervals()
	if iv.Boot != 12*time.Minute || iv.TorActive != (Interval{2 * time.Minute, 2 * time.Second}) ||
		iv.LeakCheck != (Interval{90 * time.Second, d.LeakCheck.Poll}) || iv.Join != d.Join {
		t.Errorf("got boot %s, tor-active %+v, leak-check %+v, join %s", iv.Boot, iv.TorActive, iv.LeakCheck, iv.Join)
	}
	args, err := iv.GetIntervals("tor-active")
	if err != nil || len(args) != 2 || args[0] != 2*time.Minute || args[1] != 2*time.Second {
		t.Errorf("GetIntervals(tor-active) = %v, %v", args, err)
	}
	if args, _ := iv.GetIntervals("boot"); len(args) != 1 || args[0] != 12*time.Minute {
		t.Errorf("GetIntervals(boot) = %v", args)
	}
}

func TestLoadReadsYAMLAndJSONFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"i.yaml": "boot: 12m\ntor-active: [2m, 2s]\nfault-detect: 4m,3s\n",
		"i.json": `{"boot": "12m", "tor-active": ["2m", "2s"], "fault-detect": "4m,3s"}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(EnvVar, p)
		iv, err := Load()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if iv.Boot != 12*time.Minute || iv.TorActive != (Interval{2 * time.Minute, 2 * time.Second}) || iv.FaultDetect != (Interval{4 * time.Minute, 3 * time.Second}) {
			t.Errorf("%s: boot %s, tor-active %+v, fault-detect %+v", name, iv.Boot, iv.TorActive, iv.FaultDetect)
		}
	}
}

func TestLoadRejectsBadValuesNamingTheVariableAndKey(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("boot: 12m\njoin: soon\n"), 0o600)
	for v, want := range map[string][]string{
		"boot=12x":                {EnvVar, "boot", `timeout "12x"`, "positive Go duration"},
		"boot=-1m":                {EnvVar, "boot", "positive Go duration"},
		"tor-activ=1m":            {EnvVar, `unknown interval "tor-activ"`, "must be one of", "tor-active"},
		"boot=1m,2s":              {EnvVar, "boot", "takes no poll"},
		"tor-active=1m,2m":        {EnvVar, "tor-active", "must not be longer than its timeout"},
		"tor-active=1m,2s,3s":     {EnvVar, "tor-active", "after its poll"},
		"tor-active=500ms":        {EnvVar, "tor-active", "poll 1s must not be longer"},
		"tor-active=1m,,boot=1m":  {EnvVar, "empty entry"},
		filepath.Join(dir, "nop"): {EnvVar, "no such file"},
		file:                      {EnvVar, "line 2", "join", `"soon"`},
	} {
		t.Setenv(EnvVar, v)
		iv, err := Load()
		if err == nil {
			t.Errorf("%s=%q: no error", EnvVar, v)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s=%q: error %q does not say %q", EnvVar, v, err, w)
			}
		}
		if iv != DefaultIntervals() {
			t.Errorf("%s=%q: a rejected value was half applied", EnvVar, v)
		}
	}
	var unknown *UnknownNameError
	if _, err := DefaultIntervals().Get("nope"); !errors.As(err, &unknown) || unknown.Name != "nope" {
		t.Errorf("Get(nope) = %v", err)
	}
}

// TestUntilKeepsTheReasonSeenBeforeTheDeadline: an attempt cut short by
// the wait's own deadline says only that it was cancelled; the error names
// what the attempt before it saw.
func TestUntilKeepsTheReasonSeenBeforeTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	attempts := 0
	err := Until(ctx, time.Millisecond, time.Millisecond, func(ctx context.Context) (bool, string, error) {
		attempts++
		if attempts == 1 {
			return false, "CLUS1-01 does not trust the harness certificate", nil
		}
		<-ctx.Done() // this attempt runs into the deadline
		return false, "Get https://CLUS1-00/1.0: context deadline exceeded", nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", err)
	}
	if !strings.Contains(err.Error(), "CLUS1-01 does not trust the harness certificate") || strings.Contains(err.Error(), "CLUS1-00/1.0") {
		t.Fatalf("err = %v, want the last reason seen before the deadline", err)
	}
}
