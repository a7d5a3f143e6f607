//go:build tools

package etcdlab

import _ "go.etcd.io/etcd/server/v3"
