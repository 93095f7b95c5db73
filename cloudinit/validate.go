package cloudinit

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxSize is the largest cloud-init file accepted, 1 MiB. User data reaches
// the guest on a NoCloud seed and is held in memory several times by
// cloud-init; real cloud-configs are a few KiB, and clouds cap user data far
// lower (EC2 at 16 KiB). A file this large is almost certainly the wrong
// file (an image, a log), and the cap also bounds the cost of locating YAML
// errors.
const MaxSize = 1 << 20

// The header rule quoted in every "wrong kind of file" error.
const headerRule = "must start with #cloud-config (or #! for a script)"

// Validate checks that data is user data the harness can hand to cloud-init:
// a #cloud-config file, a #! script, a #cloud-boothook or a MIME multipart
// archive. name is used in messages. Content problems are returned as a
// *Problem, or as Problems when a cloud-config has several type errors.
func Validate(name string, data []byte) error {
	_, err := check(context.Background(), name, data)
	return err
}

// check validates data and also returns the warnings Lint reports. It stops
// with ctx's error, wrapped by stopped, once ctx is done.
func check(ctx context.Context, name string, data []byte) (warnings []*Problem, err error) {
	return checkWith(ctx, Schema224, name, data)
}

// checkWith is check judged by schema's release.
func checkWith(ctx context.Context, schema Schema, name string, data []byte) (warnings []*Problem, err error) {
	if err := ctx.Err(); err != nil {
		return nil, stopped(name, err)
	}
	if p := checkText(name, data); p != nil {
		return nil, p
	}
	first, _, _ := strings.Cut(string(data), "\n")
	first = strings.TrimSuffix(first, "\r")
	switch {
	case strings.HasPrefix(first, "#cloud-config"):
		if rest := first[len("#cloud-config"):]; strings.HasPrefix(rest, "-") {
			// #cloud-config-archive, #cloud-config-jsonp: other formats.
			return nil, &Problem{File: name, Line: 1, Column: 1,
				Rule: fmt.Sprintf("%s; %q user data is not supported here", headerRule, first)}
		} else if strings.TrimSpace(rest) != "" {
			return nil, &Problem{File: name, Line: 1, Column: 1,
				Rule: fmt.Sprintf(`first line must be exactly "#cloud-config", got %q`, first)}
		}
		return checkCloudConfig(ctx, schema, name, data)
	case strings.HasPrefix(first, "#!"):
		if p := checkScript(name, data, first); p != nil {
			return nil, p
		}
		if !isShellScript(first) {
			return nil, nil
		}
		errs, err := scriptLockouts(ctx, name, data)
		if err != nil {
			return nil, err
		}
		return nil, asError(errs)
	case strings.HasPrefix(first, "#cloud-boothook"):
		if strings.TrimSpace(first[len("#cloud-boothook"):]) != "" {
			return nil, &Problem{File: name, Line: 1, Column: 1,
				Rule: fmt.Sprintf(`first line must be exactly "#cloud-boothook", got %q`, first)}
		}
		// cloud-init runs the rest as a shell script.
		errs, err := scriptLockouts(ctx, name, data)
		if err != nil {
			return nil, err
		}
		return nil, asError(errs)
	case isMIMEHeader(first):
		return checkMultipart(ctx, schema, name, data)
	}
	return nil, &Problem{File: name, Line: 1, Column: 1, Rule: headerRule + headerHint(data, first)}
}

// checkText rejects what is not text at all, before anything tries to parse
// it, so the message says "binary" rather than a confusing YAML error.
func checkText(name string, data []byte) *Problem {
	at := func(off int, rule string) *Problem {
		line, col := position(data, off)
		return &Problem{File: name, Line: line, Column: col, Rule: rule}
	}
	switch {
	case len(data) > MaxSize:
		return &Problem{File: name, Rule: fmt.Sprintf("is %d bytes, larger than the %d-byte (1 MiB) limit for a cloud-init file; is it the right file?", len(data), MaxSize)}
	case len(bytes.TrimSpace(data)) == 0:
		return &Problem{File: name, Rule: "is empty; it " + headerRule}
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		return &Problem{File: name, Rule: "is gzip-compressed; pass the uncompressed file (binary files are not accepted)"}
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		return at(0, "starts with a UTF-8 byte order mark; cloud-init would not see the header, save the file without a BOM")
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return at(i, "contains a NUL byte: binary files are not cloud-init user data")
	}
	if !utf8.Valid(data) {
		i := 0
		for i < len(data) {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		return at(i, "is not valid UTF-8: binary files are not cloud-init user data")
	}
	return nil
}

// checkCloudConfig parses a #cloud-config document and type-checks it.
func checkCloudConfig(ctx context.Context, schema Schema, name string, data []byte) ([]*Problem, error) {
	root, err := parseCloudConfig(ctx, name, data)
	if err != nil {
		return nil, err
	}
	c := &checker{file: name, schema: schema, poll: poll{ctx: ctx}}
	c.top(root)
	if c.err != nil {
		return nil, stopped(name, c.err)
	}
	return c.warnings, asError(c.errs)
}

// checkScript catches the script mistakes that make the guest fail to run it
// at all: no interpreter, or DOS line endings, which make the kernel look for
// an interpreter named "/bin/sh\r".
func checkScript(name string, data []byte, first string) *Problem {
	if strings.TrimSpace(first[2:]) == "" {
		return &Problem{File: name, Line: 1, Column: 3, Rule: "script has no interpreter after #! (e.g. #!/bin/sh)"}
	}
	if nl := bytes.IndexByte(data, '\n'); nl > 0 && data[nl-1] == '\r' {
		return &Problem{File: name, Line: 1, Column: utf8.RuneCountInString(first) + 1,
			Rule: "script has DOS (CRLF) line endings; the kernel would look for an interpreter ending in \\r, convert it to LF"}
	}
	return nil
}

// mimeHeader matches the first line of a MIME message: cloud-init's own
// tools write Content-Type first, Python's email package MIME-Version.
var mimeHeader = regexp.MustCompile(`(?i)^(content-type|mime-version)\s*:`)

func isMIMEHeader(line string) bool { return mimeHeader.MatchString(line) }

// headerHint explains near misses of the header, which otherwise look right
// to a human reader.
func headerHint(data []byte, first string) string {
	squashed := strings.ToLower(strings.Join(strings.Fields(first), ""))
	switch {
	case squashed == "#cloud-config" || squashed == "#cloudconfig" || squashed == "#cloud_config":
		return fmt.Sprintf(`; the first line is %q, write exactly "#cloud-config"`, first)
	case strings.HasPrefix(squashed, "#include") || strings.HasPrefix(squashed, "#cloud-config-archive") ||
		strings.HasPrefix(squashed, "#part-handler") || strings.HasPrefix(squashed, "##template:"):
		return fmt.Sprintf("; %q user data is not supported here", first)
	}
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "#cloud-config" {
			return fmt.Sprintf("; #cloud-config is on line %d, it must be the first line", i+1)
		}
		if i > 50 {
			break
		}
	}
	if strings.HasPrefix(strings.TrimSpace(first), "#") {
		return fmt.Sprintf("; the first line is %q", first)
	}
	return ""
}

// position converts a byte offset to a 1-based line and character column.
func position(data []byte, off int) (line, col int) {
	prefix := data[:off]
	line = bytes.Count(prefix, []byte("\n")) + 1
	lineStart := bytes.LastIndexByte(prefix, '\n') + 1
	return line, utf8.RuneCount(prefix[lineStart:]) + 1
}
