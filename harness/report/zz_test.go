package report
import ("testing";"context")
func TestZZ(t *testing.T){ f,err:=WriteAll(context.Background(),"/tmp/bcmtest-report-demo",recorded(t)); t.Log(f,err) }
