package qemu

import "github.com/BitcoinCacheMachine/bcmtest/harness/state"

// ImageUsers maps an image key to what is layered on that image's root:
// each snapshot left in the cache (its disk layer is backed by the root, so
// every VM restored from it is too) and each VM of d's state dir that
// booted it cold. An image with users must outlive a change of recipe: a
// kept cluster's nodes cannot start again once the file under their disks
// is gone. Prune snapshots first, so that only the snapshots that stay
// hold their images.
func ImageUsers(d state.Dirs) (map[string][]string, error) {
	users := map[string][]string{}
	snaps, err := Snapshots(d)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		users[s.Manifest.Shape.Image] = append(users[s.Manifest.Shape.Image], "snapshot "+s.Key)
	}
	recs, _, err := loadRecords(vmsDir(d))
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Snapshot == "" && r.Image != "" {
			users[r.Image] = append(users[r.Image], "VM "+r.Name)
		}
	}
	return users, nil
}
