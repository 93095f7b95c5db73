package report

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFlakes(t *testing.T) {
	s := recorded(t)
	want := []Flake{{Image: "bookworm", Name: flakySpec, Sizes: []int{1}}}
	if got := s.Flakes(); !reflect.DeepEqual(got, want) {
		t.Errorf("Flakes() = %v, want %v (a spec failing at every attempt of a size is no flake)", got, want)
	}
	if s.Passed() {
		t.Error("Passed() with failed runs")
	}
	if (Summary{}).Passed() {
		t.Error("Passed() with no runs")
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct{ in, want []int64 }{
		{nil, []int64{0}}, {[]int64{5}, []int64{5}}, {[]int64{9, 1, 5}, []int64{5}}, {[]int64{4, 1}, []int64{2}},
	} {
		var ds []time.Duration
		for _, v := range c.in {
			ds = append(ds, time.Duration(v))
		}
		if got := median(ds); got != time.Duration(c.want[0]) {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want[0])
		}
	}
}

func TestHeadline(t *testing.T) {
	for in, want := range map[string]string{
		"\n\n  first line  \nsecond":                                              "first line",
		"Expected\n    <int>: 1\nto equal\n    <int>: 2":                          "Expected",
		"Unexpected error:\n    <*errors.errorString | 0xc0001>: \n    boom\nocc": "Unexpected error: boom",
		"": "",
	} {
		if got := (failure{Text: in}).Headline(); got != want {
			t.Errorf("Headline(%q) = %q, want %q", in, got, want)
		}
	}
	long := (failure{Text: strings.Repeat("é", 300)}).Headline()
	if n := len([]rune(long)); n != 200 || !strings.HasSuffix(long, "…") {
		t.Errorf("long headline has %d runes, want 200 ending in an ellipsis", n)
	}
}
