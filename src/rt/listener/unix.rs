//! Unix listening sockets: one socket shared by all workers, with a configurable mode and
//! owner, replacing a stale socket file left by a crashed run but never a live socket or a
//! file that is not a socket. The socket file is removed again when ringgate stops, if it is
//! still the one ringgate created.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

/// Permissions and ownership applied to Unix socket files after binding and before
/// listening, so no connection can arrive while the file still has the default mode.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct UnixSocketOptions {
    /// File mode (for example `0o660`); `None` keeps what the umask gives.
    pub mode: Option<u32>,
    /// Owner user id; `None` keeps the process's user.
    pub owner: Option<u32>,
    /// Owner group id; `None` keeps the process's group.
    pub group: Option<u32>,
}

/// Why a Unix socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum UnixBindError {
    /// Another process accepts connections on this path.
    #[error("{0}: a live socket is already listening there (another ringgate running?)")]
    Live(PathBuf),
    /// The path exists and is not a socket; ringgate will not delete it.
    #[error("{0}: exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Checking, removing, binding or configuring failed.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// Removes the socket file on drop if it is still the file this process bound, so a newer
/// instance's socket is never deleted. The guard holds an `O_PATH` descriptor of the file:
/// that keeps its inode allocated, so a file created later at the same path cannot reuse
/// the inode number and be mistaken for ours.
#[derive(Debug)]
pub struct UnixPathGuard {
    path: PathBuf,
    file: fs::File,
}

impl UnixPathGuard {
    fn new(path: &Path) -> io::Result<Self> {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }
}

impl Drop for UnixPathGuard {
    fn drop(&mut self) {
        let (Ok(ours), Ok(now)) = (self.file.metadata(), fs::symlink_metadata(&self.path)) else {
            return;
        };
        if ours.dev() == now.dev() && ours.ino() == now.ino() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Bind a Unix stream socket at `path` (non-blocking), replacing a stale socket file.
pub(super) fn bind_path(
    path: &Path,
    opts: &UnixSocketOptions,
    backlog: i32,
) -> Result<(UnixListener, UnixPathGuard), UnixBindError> {
    let io_err = |what, source| UnixBindError::Io {
        path: path.to_owned(),
        what,
        source,
    };
    remove_if_stale(path)?;
    let sock =
        Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None).map_err(|e| io_err("socket", e))?;
    let addr = SockAddr::unix(path).map_err(|e| io_err("address", e))?;
    sock.bind(&addr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => UnixBindError::Live(path.to_owned()),
        _ => io_err("bind", e),
    })?;
    let guard = UnixPathGuard::new(path).map_err(|e| io_err("open after bind", e))?;
    if opts.owner.is_some() || opts.group.is_some() {
        std::os::unix::fs::chown(path, opts.owner, opts.group).map_err(|e| io_err("chown", e))?;
    }
    if let Some(mode) = opts.mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("chmod", e))?;
    }
    sock.listen(backlog).map_err(|e| io_err("listen", e))?;
    sock.set_nonblocking(true)
        .map_err(|e| io_err("set non-blocking", e))?;
    Ok((sock.into(), guard))
}

/// Bind a Linux abstract Unix socket (no file, so nothing can be stale).
pub(super) fn bind_abstract(name: &str, backlog: i32) -> io::Result<UnixListener> {
    let sock = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    let mut raw = Vec::with_capacity(name.len() + 1);
    raw.push(0u8);
    raw.extend_from_slice(name.as_bytes());
    let path = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&raw));
    sock.bind(&SockAddr::unix(path)?)?;
    sock.listen(backlog)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

/// If `path` is a socket nobody listens on, delete it. A live socket or a non-socket is an
/// error; a missing path is fine.
fn remove_if_stale(path: &Path) -> Result<(), UnixBindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(UnixBindError::Io {
                path: path.to_owned(),
                what: "stat",
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(UnixBindError::NotASocket(path.to_owned()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(UnixBindError::Live(path.to_owned())),
        Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
            tracing::info!(path = %path.display(), "removing stale socket file");
            match fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(UnixBindError::Io {
                    path: path.to_owned(),
                    what: "remove stale socket",
                    source,
                }),
            }
        }
        // Removed between the stat and the connect: nothing to replace.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(UnixBindError::Io {
            path: path.to_owned(),
            what: "probe existing socket",
            source,
        }),
    }
}

/// A user name or numeric id to a uid.
pub fn resolve_user(name: &str) -> io::Result<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    lookup(name, Lookup::User)
}

/// A group name or numeric id to a gid.
pub fn resolve_group(name: &str) -> io::Result<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok(id);
    }
    lookup(name, Lookup::Group)
}

#[derive(Clone, Copy)]
enum Lookup {
    User,
    Group,
}

/// getpwnam_r / getgrnam_r with a growing buffer.
fn lookup(name: &str, kind: Lookup) -> io::Result<u32> {
    let cname = CString::new(name).map_err(|_| io::Error::other("name contains a NUL byte"))?;
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        let (rc, found) = match kind {
            Lookup::User => {
                // SAFETY: all-zero is a valid `passwd` (pointers null, ids 0); it is only
                // read after getpwnam_r filled it.
                let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
                let mut result: *mut libc::passwd = std::ptr::null_mut();
                // SAFETY: every pointer is valid for the call; `buf` is writable for
                // `buf.len()` bytes; `result` is set to `&mut pwd` or null.
                let rc = unsafe {
                    libc::getpwnam_r(
                        cname.as_ptr(),
                        &mut pwd,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut result,
                    )
                };
                (rc, (!result.is_null()).then_some(pwd.pw_uid))
            }
            Lookup::Group => {
                // SAFETY: as above, for `group`.
                let mut grp: libc::group = unsafe { std::mem::zeroed() };
                let mut result: *mut libc::group = std::ptr::null_mut();
                // SAFETY: as above.
                let rc = unsafe {
                    libc::getgrnam_r(
                        cname.as_ptr(),
                        &mut grp,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut result,
                    )
                };
                (rc, (!result.is_null()).then_some(grp.gr_gid))
            }
        };
        match (rc, found) {
            (0, Some(id)) => return Ok(id),
            (0, None) => {
                let what = match kind {
                    Lookup::User => "user",
                    Lookup::Group => "group",
                };
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no such {what}: {name}"),
                ));
            }
            (libc::ERANGE, _) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            (rc, _) => return Err(io::Error::from_raw_os_error(rc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory (removed when the guard drops) and the path `name` in it.
    fn tmp_path(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix("ringgate-unix-")
            .tempdir()
            .unwrap();
        let p = dir.path().join(name);
        (dir, p)
    }

    #[test]
    fn stale_socket_is_replaced_live_one_refused() {
        let (_dir, p) = tmp_path("stale.sock");
        // A stale socket: bound, then closed without unlinking.
        drop(UnixListener::bind(&p).unwrap());
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_socket());
        let (live, guard) = bind_path(&p, &UnixSocketOptions::default(), 16).unwrap();
        // A second bind while the first listens is refused.
        assert!(matches!(
            bind_path(&p, &UnixSocketOptions::default(), 16),
            Err(UnixBindError::Live(_))
        ));
        drop(live);
        drop(guard);
        assert!(!p.exists(), "guard removes its own socket file");
    }

    #[test]
    fn regular_file_is_never_replaced() {
        let (_dir, p) = tmp_path("file.sock");
        fs::write(&p, b"precious").unwrap();
        assert!(matches!(
            bind_path(&p, &UnixSocketOptions::default(), 16),
            Err(UnixBindError::NotASocket(_))
        ));
        assert_eq!(fs::read(&p).unwrap(), b"precious");
    }

    #[test]
    fn mode_is_applied_before_listen() {
        let (_dir, p) = tmp_path("mode.sock");
        let opts = UnixSocketOptions {
            mode: Some(0o600),
            ..Default::default()
        };
        let (_l, _g) = bind_path(&p, &opts, 16).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn guard_leaves_a_newer_socket_alone() {
        let (_dir, p) = tmp_path("newer.sock");
        let (l, g) = bind_path(&p, &UnixSocketOptions::default(), 16).unwrap();
        drop(l);
        fs::remove_file(&p).unwrap();
        let (_l2, g2) = bind_path(&p, &UnixSocketOptions::default(), 16).unwrap();
        drop(g);
        assert!(p.exists());
        drop(g2);
        assert!(!p.exists());
    }

    #[test]
    fn abstract_socket_accepts() {
        let name = format!("ringgate-test-{}", std::process::id());
        let l = bind_abstract(&name, 8).unwrap();
        let addr = l.local_addr().unwrap();
        use std::os::linux::net::SocketAddrExt;
        assert_eq!(addr.as_abstract_name(), Some(name.as_bytes()));
    }

    #[test]
    fn users_and_groups_resolve() {
        assert_eq!(resolve_user("root").unwrap(), 0);
        assert_eq!(resolve_user("1234").unwrap(), 1234);
        assert_eq!(resolve_group("root").unwrap(), 0);
        assert!(resolve_user("no-such-user-ringgate").is_err());
        assert!(resolve_group("no-such-group-ringgate").is_err());
    }
}
