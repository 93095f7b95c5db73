// Package cloudinit checks a user's cloud-init file before any VM boots.
//
// A mistake in a cloud-init file does not fail when the VM is created: the
// guest boots, cloud-init logs a warning or skips a module, and the test
// fails minutes later with a confusing symptom. This package rejects what it
// can up front, with errors that name the file, the position and the rule:
//
//	vm.yaml:4:11: packages: must be a list, got a string
//
// The checks are deliberately a subset of cloud-init's own JSON schema. They
// cover the keys people actually use (packages, runcmd, write_files, ...) and
// the mistakes YAML makes easy (quoted booleans, a string where a list
// belongs, tabs). cloud-init's own `cloud-init schema` run inside the image
// stays authoritative; ParseSchemaOutput turns its output into the same
// Problem type so both sources report alike.
//
// Two rules are the harness's own: a file may not turn vendor-data off
// (vendor_data: {enabled: false}) or delete or lock HarnessUser, because
// the harness reaches every VM as that user through its vendor-data.
// ProviderLint adds warnings about what one provider's VMs cannot give,
// such as snap on the qemu provider's offline Debian image.
//
// The input is untrusted. The checks are linear in its size however often
// YAML aliases repeat a node (locating a syntax error is O(n log n)),
// reports list at most 100 problems, and LoadContext gives up when its
// context is done.
//
// YAML is interpreted the way cloud-init (PyYAML, YAML 1.1) reads it, not the
// way yaml.v3 (YAML 1.2) would: an unquoted yes/no/on/off is a boolean and an
// unquoted 0644 is an integer.
package cloudinit
