package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// nodeShape is the vCPUs and memory of a throwaway node (check's, or each
// of the diff's two).
type nodeShape struct{ CPUs, MemoryMiB int }

// shapeFlags are --cpus and --memory of the cloudinit commands; zero and
// "" mean the command's own default shape.
type shapeFlags struct {
	cpus   int
	memory string
}

func addShapeFlags(c *cobra.Command, s *shapeFlags, defaults string) {
	c.Flags().IntVar(&s.cpus, "cpus", 0, "vCPUs of each node (default "+defaults+")")
	c.Flags().StringVarP(&s.memory, "memory", "m", "", "memory of each node, e.g. 2G or 1536M (default "+defaults+")")
}

// shape applies the flags that were given over def, checking each before
// any VM starts: at least one vCPU, at least 512 MiB (a node's smallest
// memory), a whole number of MiB.
func (s shapeFlags) shape(c *cobra.Command, def nodeShape) (nodeShape, error) {
	out := def
	if c.Flags().Changed("cpus") {
		if s.cpus < 1 {
			return out, usagef("%s--cpus %d: must be at least 1 (vCPUs of each node)", where(c), s.cpus)
		}
		out.CPUs = s.cpus
	}
	if c.Flags().Changed("memory") {
		b, err := parseSizeFlag("--memory", s.memory)
		if err != nil {
			return out, fmt.Errorf("%s%w", where(c), err)
		}
		const mib = 1 << 20
		if b%mib != 0 {
			return out, usagef("%s--memory %q: must be a whole number of MiB", where(c), s.memory)
		}
		if b < 512*mib {
			return out, usagef("%s--memory %q: must be at least 512M", where(c), s.memory)
		}
		out.MemoryMiB = int(b / mib)
	}
	return out, nil
}
