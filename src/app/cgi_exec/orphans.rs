//! Processes that leave their script's process group: `setsid`, `setpgid`, a daemon's double
//! fork. Killing a script's group cannot reach them, so the executor makes ringgate a child
//! subreaper (`PR_SET_CHILD_SUBREAPER`): a process whose parent ends is re-parented to
//! ringgate instead of init, and a reaper thread (one per process, every [`SCAN_INTERVAL`])
//! looks at ringgate's children:
//! - a script ringgate started (registered here from its spawn until its group has ended,
//!   see `process`) is left alone: tokio reaps it by its pid;
//! - a zombie is reaped (`waitpid` on its pid only, never "any child");
//! - a living process in the group of a running script is left to that script's group kill;
//! - any other living process (it left its script's group, and its parent has ended) is
//!   ended with SIGKILL, and its own group with it when it leads one.
//!
//! So nothing a script starts outlives it by more than a scan, whatever group or session it
//! moves to; what escapes the group is ended once its parent has ended, even while its
//! script still runs, with no grace period. A process could still outlive its script if it
//! keeps a living parent outside the script's tree, which a script cannot arrange without
//! help from outside ringgate (or privileges over other processes).
//!
//! Spawns and scans are ordered by a read-write lock: a spawn holds it shared from before the
//! fork until its pid is registered, a scan holds it exclusively while it decides, so a
//! script that has just been forked is never mistaken for a left-behind process. Every pid
//! the scan signals or reaps is an unregistered child of ringgate that nothing else waits for,
//! so it cannot have been reaped and reused meanwhile.
//!
//! This is process-wide: a program that embeds the executor must not start child processes
//! of its own (they would be taken for left-behind ones). The `ringgate` binary starts none.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::time::Duration;

use crate::sys::process as sys;

/// How often the reaper thread looks at ringgate's children.
pub(super) const SCAN_INTERVAL: Duration = Duration::from_millis(100);

/// Serializes spawns (shared) against scans (exclusive).
static GATE: RwLock<()> = RwLock::new(());

/// The pids (= process groups) of the scripts whose group has not been ended yet.
static SCRIPTS: OnceLock<Mutex<HashSet<i32>>> = OnceLock::new();

/// Whether the reaper runs (started once).
static STARTED: OnceLock<bool> = OnceLock::new();

fn scripts() -> &'static Mutex<HashSet<i32>> {
    SCRIPTS.get_or_init(Default::default)
}

/// Makes this process a child subreaper and starts the reaper thread, once per process.
/// Returns whether it runs (a failure is logged; scripts are then still ended by group).
pub(super) fn start() -> bool {
    *STARTED.get_or_init(|| {
        if let Err(e) = sys::set_child_subreaper() {
            tracing::warn!(
                "CGI: cannot become a child subreaper ({e}): a process a script moves out \
                 of its process group can outlive it"
            );
            return false;
        }
        let spawned = std::thread::Builder::new()
            .name("ringgate-reaper".into())
            .spawn(|| loop {
                std::thread::sleep(SCAN_INTERVAL);
                scan();
            });
        if let Err(e) = spawned {
            tracing::warn!("CGI: cannot start the reaper thread: {e}");
            return false;
        }
        true
    })
}

/// Held while a script is being spawned (until it is registered).
pub(super) fn spawning() -> RwLockReadGuard<'static, ()> {
    GATE.read().unwrap_or_else(|e| e.into_inner())
}

/// A script's place in the registry; dropping it (once the script's group has ended)
/// unregisters it.
#[derive(Debug)]
pub(super) struct Registration(i32);

/// Registers script `pid` (call while holding [`spawning`]).
pub(super) fn register(pid: i32) -> Registration {
    lock_scripts().insert(pid);
    Registration(pid)
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock_scripts().remove(&self.0);
    }
}

fn lock_scripts() -> std::sync::MutexGuard<'static, HashSet<i32>> {
    scripts().lock().unwrap_or_else(|e| e.into_inner())
}

/// One look at ringgate's children (see the module docs).
fn scan() {
    let quick = sys::own_children();
    if quick.is_empty() {
        return;
    }
    let only_scripts = {
        let registered = lock_scripts();
        quick.iter().all(|c| registered.contains(c))
    };
    if only_scripts {
        return; // Only running scripts: the usual case, decided without the gate.
    }
    let _gate = GATE.write().unwrap_or_else(|e| e.into_inner());
    let registered = lock_scripts().clone();
    let me = sys::own_pid();
    let (mut ended, mut reaped) = (0u32, 0u32);
    for pid in sys::own_children() {
        if registered.contains(&pid) {
            continue;
        }
        let Some(stat) = sys::proc_stat(pid) else {
            continue;
        };
        if stat.ppid != me {
            continue;
        }
        if stat.state == b'Z' || stat.state == b'X' {
            if sys::try_reap(pid).unwrap_or(false) {
                reaped += 1;
            }
            continue;
        }
        if registered.contains(&stat.pgid) {
            continue; // Its script's group kill ends it.
        }
        let _ = sys::signal_process(pid, libc::SIGKILL);
        if stat.pgid == pid {
            let _ = sys::signal_group(pid, libc::SIGKILL);
        }
        ended += 1;
        if sys::try_reap(pid).unwrap_or(false) {
            reaped += 1;
        }
    }
    if ended > 0 {
        tracing::info!(
            processes = ended,
            "CGI: ended processes that left their script's process group"
        );
    }
    if reaped > 0 {
        tracing::debug!(processes = reaped, "CGI: reaped left-behind processes");
    }
}
