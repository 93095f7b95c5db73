package cloudinit

// knownKeys224 are the top-level keys cloud-init 22.4 (Debian 12's version)
// acts on: the properties of its cloud-config schema plus the framework keys
// it reads from merged config without a module (output, reporting, the
// module lists, merge_how). Sources: cloudinit/config/schemas/
// schema-cloud-config-v1.json and the cc_*.py modules of that release.
var knownKeys224 = []string{
	"allow_public_ssh_keys", "ansible", "apk_repos", "apt", "apt_pipelining",
	"apt_reboot_if_required", "apt_update", "apt_upgrade", "authkey_hash",
	"autoinstall", "bootcmd", "byobu_by_default", "ca-certs", "ca_certs",
	"chef", "chpasswd", "cloud_config_modules", "cloud_final_modules",
	"cloud_init_modules", "debug", "device_aliases", "disable_ec2_metadata",
	"disable_root", "disable_root_opts", "disk_setup", "drivers", "fan",
	"final_message", "fqdn", "fs_setup", "groups", "growpart", "grub-dpkg",
	"grub_dpkg", "hostname", "keyboard", "landscape", "launch-index",
	"locale", "locale_configfile", "lxd", "manage_etc_hosts",
	"manage_resolv_conf", "mcollective", "merge_how", "merge_type", "migrate",
	"mount_default_fields", "mounts", "no_ssh_fingerprints", "ntp", "output",
	"package_reboot_if_required", "package_update", "package_upgrade",
	"packages", "password", "phone_home", "power_state",
	"prefer_fqdn_over_hostname", "preserve_hostname", "puppet", "random_seed",
	"reporting", "resize_rootfs", "resolv_conf", "rh_subscription", "rsyslog",
	"runcmd", "salt_minion", "snap", "spacewalk", "ssh", "ssh_authorized_keys",
	"ssh_deletekeys", "ssh_fp_console_blacklist", "ssh_genkeytypes",
	"ssh_import_id", "ssh_key_console_blacklist", "ssh_keys",
	"ssh_publish_hostkeys", "ssh_pwauth", "ssh_quiet_keygen", "swap",
	"system_info", "timezone", "ubuntu_advantage", "updates", "user", "users",
	"vendor_data", "wireguard", "write_files", "yum_repo_dir", "yum_repos",
	"zypper",
	// apt v1/v2 keys, still converted by 22.4's cc_apt_configure.
	"add_apt_repo_match", "apt_custom_sources_list", "apt_ftp_proxy",
	"apt_http_proxy", "apt_https_proxy", "apt_mirror", "apt_mirror_search",
	"apt_mirror_search_dns", "apt_preserve_sources_list", "apt_proxy",
	"apt_sources",
}

// deprecatedKeys still work in 22.4 but have a replacement.
var deprecatedKeys = map[string]string{
	"apt_update":                "use package_update",
	"apt_upgrade":               "use package_upgrade",
	"apt_reboot_if_required":    "use package_reboot_if_required",
	"ca-certs":                  "use ca_certs",
	"grub-dpkg":                 "use grub_dpkg",
	"add_apt_repo_match":        "use apt: add_apt_repo_match",
	"apt_custom_sources_list":   "use apt: sources_list",
	"apt_ftp_proxy":             "use apt: ftp_proxy",
	"apt_http_proxy":            "use apt: http_proxy",
	"apt_https_proxy":           "use apt: https_proxy",
	"apt_mirror":                "use apt: primary",
	"apt_mirror_search":         "use apt: primary",
	"apt_mirror_search_dns":     "use apt: primary",
	"apt_preserve_sources_list": "use apt: preserve_sources_list",
	"apt_proxy":                 "use apt: proxy",
	"apt_sources":               "use apt: sources",
}

// keyHints explain unknown keys that are common misconceptions rather than
// typos.
var keyHints = map[string]string{
	"network": "cloud-init does not read network configuration from user-data; put it in the NoCloud network-config file",
}
