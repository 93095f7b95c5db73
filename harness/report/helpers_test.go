package report

import "testing"

// recorded loads testdata/summary.json: a nightly matrix at sizes 0, 1 and
// 3 repeated twice, where size 1's second attempt fails a spec that passed
// in the first (the flake, whose message carries a <script> tag), size 3's
// first attempt fails a different spec, and size 3's second attempt never
// got a cluster.
func recorded(t *testing.T) Summary {
	t.Helper()
	s, err := ReadJSON("testdata/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	flakySpec  = "Tor stays offline by construction: no route out, no circuit"
	failedSpec = "Tor answers PROTOCOLINFO on the control socket with the Tor version"
)
