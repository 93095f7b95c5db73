package cloudinit

// spec describes the values cloud-init accepts at one place in a
// cloud-config: a small, hand-written subset of cloud-init's JSON schema.
type spec struct {
	// accept is the set of kinds allowed here.
	accept kind
	// items checks each element when the value is a list.
	items *spec
	// fields checks the known keys when the value is a mapping.
	fields map[string]*spec
	// values checks every value of a mapping whose keys are free-form
	// (disk_setup: {<device>: {...}}).
	values *spec
	// required lists keys a mapping must have.
	required []string
	// closed marks fields as complete: another key is probably a typo and
	// worth a lint warning (cloud-init's schema would reject it too).
	closed bool
	// enum, when set, lists the strings allowed here.
	enum []string
}

func leaf(k kind) *spec { return &spec{accept: k} }

func listOf(items *spec) *spec { return &spec{accept: kindList, items: items} }

// object is a mapping with a known, closed set of keys.
func object(fields map[string]*spec, required ...string) *spec {
	return &spec{accept: kindMap, fields: fields, closed: true, required: required}
}

// dictOf is a mapping with free-form keys and values checked by values.
func dictOf(values *spec) *spec { return &spec{accept: kindMap, values: values} }

// or returns a copy of s that also accepts k.
func (s *spec) or(k kind) *spec {
	c := *s
	c.accept |= k
	return &c
}

func oneOf(s *spec, values ...string) *spec {
	c := *s
	c.enum = values
	return &c
}

// Shorthands for the table below.
var (
	str      = leaf(kindString)
	boolean  = leaf(kindBool)
	integer  = leaf(kindInt)
	anyMap   = leaf(kindMap)
	anyList  = leaf(kindList)
	strList  = listOf(str)
	strOrInt = leaf(kindString | kindInt)

	// command is a runcmd/bootcmd entry: a shell string, or an argv list
	// whose words cloud-init passes through str().
	command = &spec{accept: kindString | kindList, items: leaf(kindScalar)}
)

// userSpec is one entry of users: (or the user: override) in cloud-init
// 22.4. Hyphenated keys are the older spellings 22.4 still honours.
var userSpec = object(map[string]*spec{
	"name":                str,
	"doas":                strList,
	"expiredate":          leaf(kindString | kindDate),
	"gecos":               str,
	"groups":              &spec{accept: kindString | kindList | kindMap, items: str},
	"homedir":             str,
	"inactive":            strOrInt,
	"lock_passwd":         boolean,
	"lock-passwd":         boolean,
	"no_create_home":      boolean,
	"no-create-home":      boolean,
	"no_log_init":         boolean,
	"no-log-init":         boolean,
	"no_user_group":       boolean,
	"no-user-group":       boolean,
	"passwd":              str,
	"hashed_passwd":       str,
	"hashed-passwd":       str,
	"plain_text_passwd":   str,
	"plain-text-passwd":   str,
	"create_groups":       boolean,
	"create-groups":       boolean,
	"primary_group":       str,
	"primary-group":       str,
	"selinux_user":        str,
	"selinux-user":        str,
	"shell":               str,
	"snapuser":            str,
	"ssh_authorized_keys": strList,
	"ssh-authorized-keys": strList,
	"ssh_import_id":       strList,
	"ssh-import-id":       strList,
	"ssh_redirect_user":   boolean,
	"ssh-redirect-user":   boolean,
	"system":              boolean,
	"sudo":                &spec{accept: kindString | kindNull | kindBool | kindList, items: leaf(kindString | kindNull)},
	"uid":                 strOrInt,
})

// aptMirror is apt: primary/security: a list of per-architecture mirrors.
var aptMirror = listOf(object(map[string]*spec{
	"arches":     strList,
	"uri":        str,
	"search":     strList,
	"search_dns": boolean,
	"keyid":      str,
	"key":        str,
	"keyserver":  str,
}, "arches"))

// typedKeys are the top-level keys whose value types are checked. The types
// follow cloud-init 22.4's schema, loosened only where cloud-init's runtime
// accepts more than its schema (command words may be numbers, because
// cloud-init str()s them) so a working file is never rejected here.
var typedKeys = map[string]*spec{
	// Packages: each entry is a name or a [name, version] pair.
	"packages":                   listOf(&spec{accept: kindString | kindList, items: leaf(kindScalar)}),
	"package_update":             boolean,
	"package_upgrade":            boolean,
	"package_reboot_if_required": boolean,
	"apt_update":                 boolean,
	"apt_upgrade":                boolean,
	"apt_reboot_if_required":     boolean,

	// Commands. runcmd, unlike bootcmd, tolerates null entries.
	"runcmd":  listOf(command.or(kindNull)),
	"bootcmd": listOf(command),

	"write_files": listOf(object(map[string]*spec{
		"path":    str,
		"content": str,
		"source": object(map[string]*spec{
			"uri":     str,
			"headers": dictOf(str),
		}, "uri"),
		"owner": str,
		// Octal modes must be quoted: YAML 1.1 reads 0644 as the integer
		// 420 and 755 as decimal 755.
		"permissions": str,
		"encoding": oneOf(str, "gz", "gzip", "gz+base64", "gzip+base64",
			"gz+b64", "gzip+b64", "b64", "base64", "text/plain"),
		"append": boolean,
		"defer":  boolean,
	}, "path")),

	// Users and groups. cloud-init 22.4 accepts users: as a string
	// ("default"), a list or a mapping; entries are names, name lists or
	// user mappings.
	"users":               &spec{accept: kindString | kindList | kindMap, items: userSpec.or(kindString | kindList)},
	"user":                userSpec.or(kindString),
	"groups":              &spec{accept: kindString | kindList | kindMap, items: leaf(kindString | kindMap)},
	"ssh_authorized_keys": strList,
	"ssh_import_id":       strList,

	// Identity and locale.
	"hostname":                  str,
	"fqdn":                      str,
	"preserve_hostname":         boolean,
	"prefer_fqdn_over_hostname": boolean,
	"manage_etc_hosts":          leaf(kindBool | kindString),
	"timezone":                  str,
	"locale":                    leaf(kindString | kindBool),
	"locale_configfile":         str,
	"final_message":             str,

	"apt": object(map[string]*spec{
		"preserve_sources_list": boolean,
		"disable_suites":        strList,
		"primary":               aptMirror,
		"security":              aptMirror,
		"add_apt_repo_match":    str,
		"debconf_selections":    dictOf(str),
		"sources_list":          str,
		"conf":                  str,
		"https_proxy":           str,
		"http_proxy":            str,
		"proxy":                 str,
		"ftp_proxy":             str,
		"sources": dictOf(object(map[string]*spec{
			"source":    str,
			"keyid":     str,
			"key":       str,
			"keyserver": str,
			"filename":  str,
			"append":    boolean,
		})),
	}),
	"apt_pipelining": leaf(kindBool | kindInt | kindString),
	"snap": object(map[string]*spec{
		"assertions": &spec{accept: kindList | kindMap, items: str, values: str},
		"commands":   &spec{accept: kindList | kindMap, items: command, values: command},
	}),

	// vendor_data: {enabled: false} is also an error: see vendorData.
	"vendor_data": object(map[string]*spec{
		"enabled": leaf(kindBool | kindString),
		"prefix":  &spec{accept: kindString | kindList, items: leaf(kindString | kindInt)},
	}),

	"power_state": object(map[string]*spec{
		"delay":     strOrInt,
		"mode":      oneOf(str, "poweroff", "reboot", "halt"),
		"message":   str,
		"timeout":   integer,
		"condition": leaf(kindString | kindBool | kindList),
	}, "mode"),
	"ntp": object(map[string]*spec{
		"pools":      strList,
		"servers":    strList,
		"peers":      strList,
		"allow":      strList,
		"ntp_client": str,
		"enabled":    boolean,
		"config": object(map[string]*spec{
			"confpath":     str,
			"check_exe":    str,
			"packages":     strList,
			"service_name": str,
			"template":     str,
		}),
	}).or(kindNull),

	// Storage. fstab fields are words, so numbers are fine.
	"mounts":               listOf(listOf(leaf(kindScalar | kindNull))),
	"mount_default_fields": listOf(leaf(kindScalar | kindNull)),
	"swap": object(map[string]*spec{
		"filename": str,
		"size":     strOrInt,
		"maxsize":  strOrInt,
	}),
	"device_aliases": dictOf(str),
	"disk_setup": dictOf(object(map[string]*spec{
		"table_type": oneOf(str, "mbr", "gpt"),
		"layout":     leaf(kindBool | kindString | kindList),
		"overwrite":  boolean,
	})),
	"fs_setup": listOf(object(map[string]*spec{
		"label":      str,
		"filesystem": str,
		"device":     str,
		"partition":  strOrInt,
		"overwrite":  boolean,
		"replace_fs": str,
		"extra_opts": &spec{accept: kindString | kindList, items: str},
		"cmd":        &spec{accept: kindString | kindList, items: str},
	})),
	"growpart": object(map[string]*spec{
		"mode":                     leaf(kindString | kindBool),
		"devices":                  strList,
		"ignore_growroot_disabled": boolean,
	}),
	"resize_rootfs": leaf(kindBool | kindString),

	// SSH and passwords.
	"ssh_pwauth":                leaf(kindBool | kindString),
	"password":                  str,
	"chpasswd":                  object(map[string]*spec{"expire": boolean, "list": leaf(kindString | kindList), "users": listOf(anyMap)}),
	"ssh_keys":                  dictOf(str),
	"ssh_deletekeys":            boolean,
	"ssh_genkeytypes":           strList,
	"disable_root":              boolean,
	"disable_root_opts":         str,
	"allow_public_ssh_keys":     boolean,
	"ssh_quiet_keygen":          boolean,
	"ssh_publish_hostkeys":      object(map[string]*spec{"enabled": boolean, "blacklist": strList}),
	"no_ssh_fingerprints":       boolean,
	"authkey_hash":              str,
	"ssh_key_console_blacklist": strList,
	"ssh_fp_console_blacklist":  strList,

	// Modules whose settings are a mapping; only the shape is checked.
	"ca_certs":             anyMap,
	"ca-certs":             anyMap,
	"random_seed":          anyMap,
	"phone_home":           anyMap,
	"lxd":                  anyMap,
	"chef":                 anyMap,
	"puppet":               anyMap,
	"salt_minion":          anyMap,
	"landscape":            anyMap,
	"mcollective":          anyMap,
	"rh_subscription":      anyMap,
	"spacewalk":            anyMap,
	"rsyslog":              anyMap,
	"keyboard":             anyMap,
	"fan":                  anyMap,
	"drivers":              anyMap,
	"updates":              anyMap,
	"ansible":              anyMap,
	"apk_repos":            anyMap,
	"yum_repos":            anyMap,
	"zypper":               anyMap,
	"ubuntu_advantage":     anyMap,
	"resolv_conf":          anyMap,
	"output":               anyMap,
	"reporting":            anyMap,
	"autoinstall":          anyMap,
	"grub_dpkg":            anyMap,
	"grub-dpkg":            anyMap,
	"ssh":                  anyMap,
	"wireguard":            anyMap.or(kindNull),
	"manage_resolv_conf":   boolean,
	"disable_ec2_metadata": boolean,
	"byobu_by_default":     str,
	"yum_repo_dir":         str,
	"cloud_init_modules":   anyList,
	"cloud_config_modules": anyList,
	"cloud_final_modules":  anyList,
	"merge_how":            leaf(kindString | kindList),
	"merge_type":           leaf(kindString | kindList),
	"launch-index":         integer,
}
