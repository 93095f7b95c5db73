package cluster

import (
	"fmt"

	"github.com/canonical/lxd/shared/api"
	"gopkg.in/yaml.v3"
)

// BootstrapInput is what the first node's `lxd init --preseed` needs.
type BootstrapInput struct {
	ServerName string
	Address    string // private-segment IP; LXD listens on Address:8443
	PoolName   string
	PoolGiB    int
}

// JoinInput is what a joining member's preseed needs.
type JoinInput struct {
	ServerName         string
	Address            string
	ClusterAddress     string
	ClusterCertificate string // PEM of the cluster certificate
	Token              string
	PoolName           string
	PoolGiB            int
	// MemberConfig are the member-specific keys the cluster asks for
	// (GET /1.0/cluster member_config), filled by FillMemberConfig.
	MemberConfig []api.ClusterMemberConfigKey
}

const lxdPort = 8443

// BootstrapPreseed is the typed preseed for NAME-00: clustering on the
// private address and a ZFS pool on a loop file.
func BootstrapPreseed(in BootstrapInput) api.InitPreseed {
	addr := fmt.Sprintf("%s:%d", in.Address, lxdPort)
	return api.InitPreseed{
		Node: api.InitLocalPreseed{
			ServerPut: api.ServerPut{Config: map[string]any{"core.https_address": addr}},
			StoragePools: []api.StoragePoolsPost{{
				Name: in.PoolName, Driver: "zfs",
				StoragePoolPut: api.StoragePoolPut{Config: map[string]string{"size": fmt.Sprintf("%dGiB", in.PoolGiB)}},
			}},
			Profiles: []api.ProfilesPost{{
				Name: "default",
				ProfilePut: api.ProfilePut{Devices: map[string]map[string]string{
					"root": {"path": "/", "pool": in.PoolName, "type": "disk"},
				}},
			}},
		},
		Cluster: &api.InitClusterPreseed{ClusterPut: api.ClusterPut{
			Cluster: api.Cluster{ServerName: in.ServerName, Enabled: true},
		}},
	}
}

// JoinPreseed is the typed preseed for a member joining with a token.
func JoinPreseed(in JoinInput) api.InitPreseed {
	return api.InitPreseed{
		Cluster: &api.InitClusterPreseed{ClusterPut: api.ClusterPut{
			Cluster:            api.Cluster{ServerName: in.ServerName, Enabled: true, MemberConfig: in.MemberConfig},
			ClusterAddress:     fmt.Sprintf("%s:%d", in.ClusterAddress, lxdPort),
			ClusterCertificate: in.ClusterCertificate,
			ServerAddress:      fmt.Sprintf("%s:%d", in.Address, lxdPort),
			ClusterToken:       in.Token,
		}},
	}
}

// FillMemberConfig answers the cluster's member_config questions for the
// pool: its size, a loop file (empty source) and the zpool's name.
func FillMemberConfig(asked []api.ClusterMemberConfigKey, pool string, poolGiB int) ([]api.ClusterMemberConfigKey, error) {
	var out []api.ClusterMemberConfigKey
	for _, k := range asked {
		v := k
		v.Description = ""
		switch {
		case k.Entity == "storage-pool" && k.Name == pool && k.Key == "size":
			v.Value = fmt.Sprintf("%dGiB", poolGiB)
		case k.Entity == "storage-pool" && k.Name == pool && k.Key == "source":
			v.Value = ""
		case k.Entity == "storage-pool" && k.Name == pool && k.Key == "zfs.pool_name":
			v.Value = pool
		default:
			return nil, fmt.Errorf("the cluster asks for member config %s %q key %q, which the harness does not know how to answer", k.Entity, k.Name, k.Key)
		}
		out = append(out, v)
	}
	return out, nil
}

// MarshalPreseed renders a preseed as YAML from the typed structs, dropping
// empty fields so an older LXD never sees keys it does not know.
func MarshalPreseed(p api.InitPreseed) ([]byte, error) {
	b, err := yaml.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshalling preseed: %w", err)
	}
	var generic map[string]any
	if err := yaml.Unmarshal(b, &generic); err != nil {
		return nil, fmt.Errorf("re-reading preseed: %w", err)
	}
	pruned, _ := prune(generic)
	return yaml.Marshal(pruned)
}

// prune removes nil, "", false, empty lists and empty maps, recursively.
// member_config values are kept even when empty: "" is a meaningful answer.
func prune(v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		_, isMemberKey := t["entity"]
		out := map[string]any{}
		for k, x := range t {
			if isMemberKey && k == "value" {
				out[k] = x
				continue
			}
			if p, keep := prune(x); keep {
				out[k] = p
			}
		}
		return out, len(out) > 0
	case []any:
		var out []any
		for _, x := range t {
			if p, keep := prune(x); keep {
				out = append(out, p)
			}
		}
		return out, len(out) > 0
	case string:
		return t, t != ""
	case bool:
		return t, t
	case nil:
		return nil, false
	default:
		return t, true
	}
}
