//! Starting a script: `tokio::process::Command` (std's `Command` underneath) with a cleared
//! environment, the script's directory as working directory, its own process group
//! (`process_group(0)`, so the whole group can be signalled) and pipes for stdin (or
//! `/dev/null` when the request has no body), stdout and stderr.
//!
//! Cost: with nothing to run between fork and exec, std spawns with `posix_spawn` (glibc
//! implements it with `clone(CLONE_VM | CLONE_VFORK)`), so the gateway's memory is never
//! copied, however large it is. A root with `user`, `group` or an `rlimit_*` needs code run
//! in the child before `exec` (`setgid`/`setuid`, `setrlimit`), which makes std fall back to
//! `fork`: the page tables are copied (not the memory, which is copy-on-write), a cost
//! proportional to the gateway's mapped size. Those settings are therefore per root and off
//! by default. The signal mask and SIGPIPE are reset in the child by std either way.

use std::ffi::OsString;
use std::io;
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::config::CgiRoot;
use super::orphans::{self, Registration};
use super::resolve::Script;

/// User and group ids a root runs its scripts as, resolved once at startup.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Identity {
    /// The uid, when configured.
    pub(super) uid: Option<u32>,
    /// The gid, when configured.
    pub(super) gid: Option<u32>,
}

/// Starts `script` with `env`; `stdin` piped when the request has a body. The script is
/// registered (see `orphans`) until the returned registration is dropped.
pub(super) fn spawn(
    root: &CgiRoot,
    ids: Identity,
    script: &Script,
    env: Vec<(OsString, OsString)>,
    stdin: bool,
) -> io::Result<(Child, Registration)> {
    let mut cmd = Command::new(&script.real);
    cmd.arg0(&script.filename)
        .env_clear()
        .envs(env)
        .current_dir(&script.dir)
        .process_group(0)
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // The last resort only (the worker's runtime torn down with the script running):
        // the supervisor ends the whole group itself.
        .kill_on_drop(true);
    if let Some(gid) = ids.gid {
        cmd.gid(gid);
    }
    if let Some(uid) = ids.uid {
        cmd.uid(uid);
    }
    let limits: Vec<(libc::__rlimit_resource_t, u64)> = [
        (libc::RLIMIT_CPU, root.rlimit_cpu),
        (libc::RLIMIT_AS, root.rlimit_as.map(|b| b as u64)),
        (libc::RLIMIT_NOFILE, root.rlimit_nofile),
        (libc::RLIMIT_NPROC, root.rlimit_nproc),
    ]
    .into_iter()
    .filter_map(|(r, v)| v.map(|v| (r, v)))
    .collect();
    if !limits.is_empty() {
        // SAFETY: the closure runs in the forked child before exec; it only calls setrlimit,
        // which is async-signal-safe, on a vector allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for &(resource, value) in &limits {
                    let lim = libc::rlimit {
                        rlim_cur: value,
                        rlim_max: value,
                    };
                    if libc::setrlimit(resource, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    // From before the fork until the pid is registered, so that the reaper never takes the
    // new script for a process left behind.
    let _spawning = orphans::spawning();
    let child = cmd.spawn()?;
    let pid = child.id().map_or(0, |p| p as i32);
    Ok((child, orphans::register(pid)))
}
