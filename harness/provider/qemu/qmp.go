package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// qmp sends one command over the VM's QMP socket and returns its result.
// QMP is how the harness powers a VM off, pauses it or cuts a link; one
// exchange is bounded by the qmp interval (and ctx).
func (p *Provider) qmp(ctx context.Context, socket, command string, args map[string]any) (json.RawMessage, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connecting to QMP %s: %w", socket, err)
	}
	defer conn.Close()
	dl := time.Now().Add(p.cfg.Intervals.QMP.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	conn.SetDeadline(dl)
	r := bufio.NewReader(conn)
	read := func() (map[string]json.RawMessage, error) {
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return nil, err
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, err
			}
			if _, ev := m["event"]; ev {
				continue
			}
			return m, nil
		}
	}
	if _, err := read(); err != nil { // greeting
		return nil, fmt.Errorf("reading QMP greeting: %w", err)
	}
	send := func(cmd string, a map[string]any) (json.RawMessage, error) {
		req := map[string]any{"execute": cmd}
		if a != nil {
			req["arguments"] = a
		}
		b, _ := json.Marshal(req)
		if _, err := conn.Write(append(b, '\n')); err != nil {
			return nil, err
		}
		m, err := read()
		if err != nil {
			return nil, err
		}
		if e, ok := m["error"]; ok {
			return nil, fmt.Errorf("QMP %s: %s", cmd, e)
		}
		return m["return"], nil
	}
	if _, err := send("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return send(command, args)
}
