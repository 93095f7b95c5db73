package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// recordedNames is what the state directory says exists: cluster names
// with their node counts, and node names with their cluster.
type recordedNames struct {
	clusters map[string]int
	nodes    map[string]string
}

// knownNames reads cluster and node names from the state directory the way
// `bcmtest list` finds them (cluster records, plus the providers' VM
// records grouped by their group), but without opening a provider:
// completion runs on every Tab and must neither start nor create VMs.
func knownNames(stateDir string) recordedNames {
	n := recordedNames{clusters: map[string]int{}, nodes: map[string]string{}}
	var rec struct {
		Name  string   `json:"name"`
		Group string   `json:"group"`
		Nodes []string `json:"nodes"`
	}
	read := func(path string) bool {
		rec.Name, rec.Group, rec.Nodes = "", "", nil
		b, err := os.ReadFile(path)
		return err == nil && json.Unmarshal(b, &rec) == nil && rec.Name != ""
	}
	dirs, _ := os.ReadDir(cluster.ClustersDir(stateDir))
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		if read(filepath.Join(cluster.ClustersDir(stateDir), d.Name(), "cluster.json")) {
			n.clusters[rec.Name] += 0
		} else {
			n.clusters[d.Name()] += 0 // an unreadable record is still listed (as stale)
		}
	}
	var vmRecords []string
	vms, _ := os.ReadDir(filepath.Join(stateDir, "qemu", "vms"))
	for _, v := range vms {
		if v.IsDir() {
			vmRecords = append(vmRecords, filepath.Join(stateDir, "qemu", "vms", v.Name(), "vm.json"))
		}
	}
	mp, _ := os.ReadDir(filepath.Join(stateDir, "multipass"))
	for _, f := range mp {
		if !f.IsDir() && strings.HasSuffix(f.Name(), ".json") && !strings.HasPrefix(f.Name(), ".") {
			vmRecords = append(vmRecords, filepath.Join(stateDir, "multipass", f.Name()))
		}
	}
	for _, p := range vmRecords {
		if !read(p) {
			continue
		}
		n.nodes[rec.Name] = rec.Group
		if rec.Group != "" {
			n.clusters[rec.Group]++
		}
	}
	return n
}

func stateNames() (recordedNames, bool) {
	d, err := state.Default()
	if err != nil {
		return recordedNames{}, false
	}
	return knownNames(d.State), true
}

// completeClusters completes cluster names for up to max positionals
// (max < 0: any number), skipping those already given.
func completeClusters(max int) cobra.CompletionFunc {
	return func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max >= 0 && len(args) >= max {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		n, ok := stateNames()
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		given := map[string]bool{}
		for _, a := range args {
			given[a] = true
		}
		var out []cobra.Completion
		for name, nodes := range n.clusters {
			if !given[name] && strings.HasPrefix(name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(name, fmt.Sprintf("cluster, %d VM%s", nodes, plural(nodes))))
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeNodes completes the NODE of exec and ssh; what follows is a
// command for the node, whose files are not this host's.
func completeNodes(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	n, ok := stateNames()
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for name, group := range n.nodes {
		if strings.HasPrefix(name, toComplete) {
			out = append(out, cobra.CompletionWithDesc(name, "node of "+group))
		}
	}
	sort.Strings(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// cloudInitExts are the files offered for a cloud-init argument.
var cloudInitExts = []cobra.Completion{"yaml", "yml"}

// addCloudInitFlagCompletion completes a flag with *.yaml and *.yml files.
func addCloudInitFlagCompletion(c *cobra.Command, flag string) {
	c.RegisterFlagCompletionFunc(flag, func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return cloudInitExts, cobra.ShellCompDirectiveFilterFileExt
	})
}

// completeCloudInitFile completes a FILE positional with *.yaml and *.yml.
func completeCloudInitFile(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return cloudInitExts, cobra.ShellCompDirectiveFilterFileExt
}
