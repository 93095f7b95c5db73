package main

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// numericArgAnnotation marks a command whose positional argument may be a
// number, naming it (MEMBERS): pflag reads "-1" as an unknown shorthand
// flag, and the user deserves the argument's rule instead.
const numericArgAnnotation = "bcmtest/numeric-arg"

// numericArgRuleAnnotation is the rule a negative numeric argument breaks,
// when it is not "must be 0 or more" (grow's N).
const numericArgRuleAnnotation = "bcmtest/numeric-arg-rule"

// flagError words pflag's parse errors as a usage error that names the
// flag and the rule, using pflag's typed errors rather than their text.
func flagError(c *cobra.Command, err error) error {
	at := where(c)
	var notExist *pflag.NotExistError
	var needsValue *pflag.ValueRequiredError
	var invalid *pflag.InvalidValueError
	var syntax *pflag.InvalidSyntaxError
	switch {
	case errors.As(err, &notExist):
		short := notExist.GetSpecifiedShortnames()
		if arg := c.Annotations[numericArgAnnotation]; arg != "" && short != "" {
			if _, aerr := strconv.Atoi(short); aerr == nil {
				rule := c.Annotations[numericArgRuleAnnotation]
				if rule == "" {
					rule = "must be 0 or more"
				}
				return usagef("%s%s -%s: %s", at, arg, short, rule)
			}
		}
		if short != "" {
			return usagef("%s-%s: unknown shorthand flag %q", at, short, notExist.GetSpecifiedName())
		}
		return usagef("%s--%s: unknown flag%s", at, notExist.GetSpecifiedName(), suggestFlag(c, notExist.GetSpecifiedName()))
	case errors.As(err, &needsValue):
		f := needsValue.GetFlag()
		return usagef("%s--%s: needs a value (%s)", at, f.Name, f.Usage)
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		rule := "is not a valid value: " + invalid.Unwrap().Error()
		switch f.Value.Type() {
		case "int", "int64", "uint":
			rule = "must be a whole number"
		case "bool":
			rule = "must be true or false"
		}
		return usagef("%s--%s %q: %s", at, f.Name, invalid.GetValue(), rule)
	case errors.As(err, &syntax):
		return usagef("%s%s: bad flag syntax; flags look like --name or --name=value", at, syntax.GetSpecifiedFlag())
	}
	return usageError{fmt.Sprintf("%s%v", at, err)}
}

// suggestFlag offers the defined flag the user probably meant.
func suggestFlag(c *cobra.Command, typed string) string {
	var names []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		if strings.HasPrefix(f.Name, typed) || strings.HasPrefix(typed, f.Name) {
			names = append(names, "--"+f.Name)
		}
	})
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return "; did you mean " + strings.Join(names, " or ") + "?"
}

// commandName is the command path without "bcmtest " ("image list").
func commandName(c *cobra.Command) string {
	p := c.CommandPath()
	if i := strings.IndexByte(p, ' '); i >= 0 {
		return p[i+1:]
	}
	return ""
}

// where begins a message about a command's input ("image list: "); the
// root command's messages need none, as main prefixes "bcmtest: ".
func where(c *cobra.Command) string {
	if n := commandName(c); n != "" {
		return n + ": "
	}
	return ""
}

// wantArgs accepts between min and max positionals (max < 0: any number)
// and otherwise says what the command wants, e.g. "want NAME [MEMBERS]".
func wantArgs(min, max int, synopsis string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < min || max >= 0 && len(args) > max {
			return usagef("%swant %s, got %d argument%s", where(c), synopsis, len(args), plural(len(args)))
		}
		return nil
	}
}

// noArgs refuses positionals on commands that take none.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%stakes no arguments, got %q", where(c), args[0])
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
