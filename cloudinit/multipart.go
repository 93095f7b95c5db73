package cloudinit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// checkMultipart checks a MIME multipart archive, the format of
// `cloud-init devel make-mime`: it must really be multipart with a boundary
// and at least one part, and its text/cloud-config and text/x-shellscript
// parts are checked like standalone files. Problems inside a part are
// reported against "name (MIME part N)" with lines counted from the start of
// that part's body.
func checkMultipart(ctx context.Context, schema Schema, name string, data []byte) ([]*Problem, error) {
	fail := func(format string, args ...any) ([]*Problem, error) {
		return nil, &Problem{File: name, Rule: fmt.Sprintf(format, args...)}
	}
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	hdr, err := r.ReadMIMEHeader()
	if err != nil {
		return fail("MIME header is malformed (%v); end the header block with an empty line", err)
	}
	ct := hdr.Get("Content-Type")
	if ct == "" {
		return fail("MIME message has no Content-Type header; it %s", headerRule)
	}
	mediatype, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fail("MIME Content-Type %q is malformed: %v", ct, err)
	}
	if !strings.HasPrefix(mediatype, "multipart/") {
		return fail("is a single-part MIME message (%s), not multipart; it %s", mediatype, headerRule)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return fail("MIME Content-Type %q has no boundary parameter", ct)
	}

	var warnings, errs []*Problem
	mr := multipart.NewReader(r.R, boundary)
	n := 0
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n > 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				// Python's email parser, which cloud-init uses, accepts
				// a missing closing boundary; so do we, with a warning.
				warnings = append(warnings, &Problem{File: name, Rule: fmt.Sprintf("MIME archive has no closing boundary --%s--", boundary)})
				break
			}
			return fail("MIME part %d is malformed: %v", n+1, err)
		}
		n++
		ws, perr := checkPart(ctx, schema, fmt.Sprintf("%s (MIME part %d)", name, n), part)
		warnings = append(warnings, ws...)
		if ctx.Err() != nil {
			return nil, stopped(name, ctx.Err())
		}
		if perr != nil {
			var ps Problems
			if errors.As(perr, &ps) {
				errs = append(errs, ps...)
			} else if p := new(Problem); errors.As(perr, &p) {
				errs = append(errs, p)
			}
		}
	}
	if n == 0 {
		return fail("MIME multipart archive has no parts; does the boundary %q match the delimiter lines?", boundary)
	}
	return warnings, asError(errs)
}

// checkPart checks the parts cloud-init would parse or execute itself.
func checkPart(ctx context.Context, schema Schema, name string, part *multipart.Part) ([]*Problem, error) {
	body, err := io.ReadAll(io.LimitReader(part, MaxSize+1))
	if err != nil {
		return nil, &Problem{File: name, Rule: fmt.Sprintf("cannot read MIME part: %v", err)}
	}
	if strings.EqualFold(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding")), "base64") {
		clean := strings.Join(strings.Fields(string(body)), "")
		if body, err = base64.StdEncoding.DecodeString(clean); err != nil {
			return nil, &Problem{File: name, Rule: fmt.Sprintf("MIME part is not valid base64: %v", err)}
		}
	}
	mediatype, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
	switch mediatype {
	case "text/cloud-config":
		if p := checkText(name, body); p != nil {
			return nil, p
		}
		return checkCloudConfig(ctx, schema, name, body)
	case "text/x-shellscript":
		if !bytes.HasPrefix(body, []byte("#!")) {
			return nil, &Problem{File: name, Line: 1, Column: 1, Rule: "a text/x-shellscript part must start with #! (e.g. #!/bin/sh)"}
		}
		first, _, _ := strings.Cut(string(body), "\n")
		if isShellScript(first) {
			errs, err := scriptLockouts(ctx, name, body)
			if err != nil {
				return nil, err
			}
			return nil, asError(errs)
		}
	case "text/cloud-boothook":
		errs, err := scriptLockouts(ctx, name, body)
		if err != nil {
			return nil, err
		}
		return nil, asError(errs)
	}
	return nil, nil
}

// eachPart calls fn with the number (from 1), media type and decoded body of
// each part of a MIME multipart archive, until fn returns false. It is for
// data checkMultipart has accepted, so malformed input just ends the walk.
func eachPart(data []byte, fn func(n int, mediatype string, body []byte) bool) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(data)))
	hdr, err := r.ReadMIMEHeader()
	if err != nil {
		return
	}
	_, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return
	}
	mr := multipart.NewReader(r.R, params["boundary"])
	for n := 1; ; n++ {
		part, err := mr.NextPart()
		if err != nil {
			return
		}
		body, err := io.ReadAll(io.LimitReader(part, MaxSize+1))
		if err != nil {
			return
		}
		if strings.EqualFold(strings.TrimSpace(part.Header.Get("Content-Transfer-Encoding")), "base64") {
			if body, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(body)), "")); err != nil {
				return
			}
		}
		mediatype, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if !fn(n, mediatype, body) {
			return
		}
	}
}
