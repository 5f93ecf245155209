//! Processes: signalling a process or a process group, reaping one child by its pid without
//! blocking, and making this process a child subreaper (`PR_SET_CHILD_SUBREAPER`).
//!
//! Nothing here waits for "any child" (`waitpid(-1)`): tokio's process driver reaps the
//! children it spawned by their pids, and a wait for any child could take one of their exit
//! statuses.

use std::io;

/// This process's pid.
pub(crate) fn own_pid() -> i32 {
    std::process::id() as i32
}

/// Sends `signal` to process `pid` (which must be positive: never a group or "every
/// process").
pub(crate) fn signal_process(pid: i32, signal: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) takes plain integers; a positive pid names exactly one process.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `signal` to every process of process group `pgid` (positive).
pub(crate) fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    if pgid <= 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill(2) takes plain integers; a negative pid (here -pgid, pgid > 0) names the
    // process group pgid, never "every process" (-1 would, and pgid > 0 excludes it).
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether process group `pgid` (positive) has a member (signal 0 checks, sends nothing).
pub(crate) fn group_exists(pgid: i32) -> bool {
    pgid > 0 && signal_group(pgid, 0).is_ok()
}

/// Reaps child `pid` (positive) if it has ended: `Ok(true)` when it was reaped now,
/// `Ok(false)` while it runs. Only for a child nothing else waits for.
pub(crate) fn try_reap(pid: i32) -> io::Result<bool> {
    if pid <= 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut status = 0;
    // SAFETY: waitpid(2) with a positive pid waits for that child only; `status` is a valid
    // int for the duration of the call, and WNOHANG makes it return at once.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match rc {
        0 => Ok(false),
        r if r == pid => Ok(true),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Makes this process a child subreaper: a process whose parent ends while it runs is
/// re-parented to the nearest living subreaper ancestor (this process) instead of init, so it
/// stays visible as this process's child. Inherited by no one; kept across `execve`.
pub(crate) fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes integer arguments only and changes an
    // attribute of this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Fields of `/proc/PID/stat` a reaper needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// The state letter (`R`, `S`, `D`, `Z`, ...).
    pub(crate) state: u8,
    /// The parent's pid.
    pub(crate) ppid: i32,
    /// The process group.
    pub(crate) pgid: i32,
}

/// Reads `/proc/PID/stat`; `None` when the process is gone (or the file unreadable).
pub(crate) fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a `/proc/PID/stat` line (the command name may hold spaces and parentheses: the
/// fields start after the last `)`).
fn parse_stat(line: &str) -> Option<ProcStat> {
    let mut fields = line.rsplit_once(')')?.1.split_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(ProcStat { state, ppid, pgid })
}

/// The children of this process (any state, zombies included): every thread's
/// `/proc/self/task/TID/children`, or, on a kernel without those files, a scan of
/// `/proc/*/stat` for this process as parent.
pub(crate) fn own_children() -> Vec<i32> {
    let mut out = Vec::new();
    let mut have_lists = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
                have_lists = true;
                out.extend(
                    list.split_whitespace()
                        .filter_map(|p| p.parse::<i32>().ok()),
                );
            }
        }
    }
    if !have_lists {
        let me = own_pid();
        if let Ok(procs) = std::fs::read_dir("/proc") {
            for entry in procs.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                    continue;
                };
                if proc_stat(pid).is_some_and(|s| s.ppid == me) {
                    out.push(pid);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names() {
        let s = parse_stat("42 (a) b (c) S 7 42 42 0 -1 4194560 ...").unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: b'S',
                ppid: 7,
                pgid: 42
            }
        );
        assert_eq!(parse_stat("42 (x"), None);
    }

    #[test]
    fn a_child_is_listed_signalled_and_reaped_by_its_pid() {
        let child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(own_children().contains(&pid));
        assert!(!try_reap(pid).unwrap());
        signal_process(pid, libc::SIGKILL).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !try_reap(pid).unwrap() {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!own_children().contains(&pid));
        assert!(signal_process(0, 0).is_err() && signal_group(-1, 0).is_err());
        std::mem::forget(child); // Reaped above; std must not wait for it again.
    }
}
