package wait

import (
	"context"
	"errors"
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
