package cluster

import "strings"

// splitNodeName splits a node name NAME-NN into its cluster and index. The
// suffix is exactly two ASCII digits, as NodeName makes them (MaxMembers
// keeps it at two): CLUS1--1, CLUS1-+1 and CLUS1-000 are no node of CLUS1.
func splitNodeName(vm string) (cluster string, index int, ok bool) {
	i := strings.LastIndexByte(vm, '-')
	if i <= 0 || len(vm)-i-1 != 2 {
		return "", 0, false
	}
	d1, d2 := vm[i+1], vm[i+2]
	if d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9' {
		return "", 0, false
	}
	return vm[:i], int(d1-'0')*10 + int(d2-'0'), true
}

// nodeOf reports whether vm is exactly a node of cluster (CLUS1-03 of
// CLUS1, never CLUS10-03).
func nodeOf(vm, cluster string) bool {
	c, _, ok := splitNodeName(vm)
	return ok && c == cluster
}

// isMember reports whether a VM belongs to cluster: by its group, or by a
// node name of the cluster.
func isMember(name, group, cluster string) bool {
	return cluster != "" && (group == cluster || nodeOf(name, cluster))
}
