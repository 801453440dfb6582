package main

import "github.com/testimony-ngo/testimony/server"

// withAdmin runs call on the deployment in dataDir: through the running
// server's admin socket, or on the database when no server runs.
func withAdmin[T any](dataDir string, call func(server.Admin) (T, error)) (T, error) {
	var zero T
	admin, err := server.OpenAdmin(dataDir)
	if err != nil {
		return zero, explain(err, dataDir)
	}
	defer admin.Close()
	v, err := call(admin)
	if err != nil {
		return zero, explain(err, dataDir)
	}
	return v, nil
}
