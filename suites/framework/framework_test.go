package framework

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// fakeT records what Run and friends do to a test.
type fakeT struct {
	testing.TB
	fatal []string
}

func (f *fakeT) Fatal(args ...any) {
	f.fatal = append(f.fatal, fmt.Sprint(args...))
	runtime.Goexit()
}
func (f *fakeT) Helper()      {}
func (f *fakeT) Name() string { return "fake" }

// run calls fn as a test body would, so Fatal's Goexit ends only it.
func (f *fakeT) run(fn func()) {
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	<-done
}

func fastRetries(t *testing.T) {
	t.Setenv(wait.EnvVar, "retry-transient=200ms,10ms")
}

func TestRunNameIsUniqueAndAValidClusterName(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		n := RunName("bcme2e")
		if !strings.HasPrefix(n, "bcme2e") || len(n) != len("bcme2e")+6 || strings.ToLower(n) != n {
			t.Fatalf("RunName = %q", n)
		}
		if err := cluster.ValidateName(n); err != nil {
			t.Fatal(err)
		}
		if seen[n] {
			t.Fatalf("%s twice", n)
		}
		seen[n] = true
		time.Sleep(time.Microsecond) // random seeds from the clock
	}
}

func TestRetryTransientERetriesOnlyKnownTransientErrors(t *testing.T) {
	fastRetries(t)
	var tries atomic.Int32
	out, err := RetryTransientE(t.Context(), t, "listing members", func() (string, error) {
		if tries.Add(1) < 3 {
			return "", errors.New("Failed to fetch members: no available dqlite leader server found")
		}
		return "ok", nil
	})
	if err != nil || out != "ok" || tries.Load() != 3 {
		t.Fatalf("out %q, err %v after %d tries", out, err, tries.Load())
	}

	boom := errors.New("Instance not found")
	tries.Store(0)
	_, err = RetryTransientE(t.Context(), t, "getting an instance", func() (string, error) {
		tries.Add(1)
		return "", fmt.Errorf("getting x: %w", boom)
	})
	if !errors.Is(err, boom) || tries.Load() != 1 || strings.Contains(err.Error(), "FatalError") {
		t.Errorf("a lasting error: %v after %d tries", err, tries.Load())
	}

	tries.Store(0)
	_, err = RetryTransientE(t.Context(), t, "writing", func() (string, error) {
		tries.Add(1)
		return "", errors.New("database is locked")
	})
	if err == nil || tries.Load() < 2 {
		t.Errorf("a transient error that never passes: %v after %d tries", err, tries.Load())
	}
}

func TestRunAndExecOnAFakeNode(t *testing.T) {
	fastRetries(t)
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00"})
	fp.ExecFunc = func(_ string, argv []string) provider.ExecResult {
		if argv[0] == "false" {
			return provider.ExecResult{ExitCode: 1, Stderr: []byte("nope")}
		}
		return provider.ExecResult{Stdout: []byte(strings.Join(argv, " "))}
	}
	n := Node{Provider: fp, Name: "CLUS1-00"}
	if out, err := RunE(t.Context(), t, n, "echo", "hi"); err != nil || out != "echo hi" {
		t.Errorf("RunE = %q, %v", out, err)
	}
	if _, err := RunE(t.Context(), t, n, "false"); err == nil || !strings.Contains(err.Error(), "exit code 1: nope") {
		t.Errorf("RunE of a failing command: %v", err)
	}
	if res, err := ExecE(t.Context(), t, n, "false"); err != nil || res.ExitCode != 1 {
		t.Errorf("ExecE of a failing command: %+v, %v", res, err)
	}
	if _, err := ExecE(t.Context(), t, Node{Provider: fp, Name: "GONE-00"}, "true"); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("ExecE on a missing VM: %v", err)
	}

	ft := &fakeT{}
	ft.run(func() { Run(t.Context(), ft, n, "false") })
	if len(ft.fatal) != 1 || !strings.Contains(ft.fatal[0], `running "false" on CLUS1-00`) {
		t.Errorf("Run of a failing command: %q", ft.fatal)
	}
	ft = &fakeT{}
	ft.run(func() {
		if res := Exec(t.Context(), ft, n, "false"); res.ExitCode != 1 {
			t.Errorf("Exec: %+v", res)
		}
	})
	if len(ft.fatal) != 0 {
		t.Errorf("Exec failed the test on an exit code: %q", ft.fatal)
	}
}

func TestGetIntervalsTakesOverridesAndFailsOnBadOnes(t *testing.T) {
	var failures []string
	gomega.RegisterFailHandler(func(message string, _ ...int) {
		failures = append(failures, message)
		panic("failed")
	})
	defer gomega.RegisterFailHandler(nil)
	t.Setenv(wait.EnvVar, "tor-active=2m,3s")
	if got := GetIntervals("tor-active"); len(got) != 2 || got[0] != 2*time.Minute || got[1] != 3*time.Second {
		t.Errorf("GetIntervals(tor-active) = %v", got)
	}
	for _, call := range []func(){
		func() { GetIntervals("tor-activ") },
		func() { t.Setenv(wait.EnvVar, "tor-active=soon"); GetIntervals("tor-active") },
	} {
		func() {
			defer func() { recover() }()
			call()
		}()
	}
	if len(failures) != 2 || !strings.Contains(failures[0], `unknown interval "tor-activ"`) || !strings.Contains(failures[1], wait.EnvVar) {
		t.Errorf("failures: %q", failures)
	}
}
