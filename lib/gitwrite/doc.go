// Package gitwrite keeps a local bare mirror of one branch of a Git remote and
// writes commits to it at the object level, then pushes them with a
// compare-and-swap on the remote branch.
//
// # What it owns
//
//   - The bare repository in Options.Dir: its "origin" remote, the local branch
//     refs/heads/<branch> (the Tip: last fetched commit plus unpushed commits)
//     and refs/remotes/origin/<branch> (the Head: the remote tip as last seen).
//   - Building commits without a worktree. Commit reads the Tip's tree, rewrites
//     only the trees on the paths it touches (entries sorted the way git sorts
//     them), stores the new blobs, trees and the commit, and moves the local
//     branch with a check-and-set. Its cost is O(depth x entries of the touched
//     directories), never O(files in the repository). Everything outside the
//     changed paths is kept byte for byte, including entries of other modes
//     (symlinks, executables, submodules).
//   - Pushing. Push sends exactly the objects the unpushed commits introduced
//     (found by a tree diff that skips unchanged subtrees) and asks the server to
//     move refs/heads/<branch> from Head to Tip. If the branch moved since the
//     last Fetch, the push fails with ErrRemoteMoved; the caller then calls
//     Fetch, re-applies its changes with Commit and pushes again.
//   - Classifying failures into a few sentinels (ErrRemoteMoved,
//     ErrAuthentication, ErrRemoteUnavailable, ...) and scrubbing credentials
//     from every error it returns: URL userinfo and query strings, and
//     Auth.Password and Auth.SSHPassphrase (when 4 bytes or longer, also
//     URL-escaped and as a basic-auth header) are replaced by "***". The raw
//     cause is reachable through errors.Is only, never through Unwrap.
//
// # What it leaves to others
//
// It knows nothing about Kubernetes, YAML, which files should exist or what
// they hold: callers hand it paths and bytes (Change) and decide what to retry.
// It does not merge: after ErrRemoteMoved the caller rebuilds its commit on the
// new remote tip. It does not pack or garbage-collect the mirror, sign commits,
// fetch tags or other branches, or check files out.
//
// A Repo is safe for concurrent use, but its methods run one at a time; use one
// Repo per Dir (two processes sharing a Dir would race on its refs).
package gitwrite
