//! Which file a request runs: `SCRIPT_FILENAME`, or `DOCUMENT_ROOT` + `SCRIPT_NAME`, resolved
//! beneath one configured root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (so
//! neither `..` nor a symbolic link can leave the root), then checked: a regular, executable
//! file, neither it nor its directory group- or world-writable (unless the root allows it).
//! Components after the file (`/cgi-bin/x.cgi/extra`) become the front of `PATH_INFO`
//! (RFC 3875 9.8: `..` is refused before the split). Nothing here runs anything.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::proto::cgi::CgiVars;

/// Why a request runs nothing; each maps to a status the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Neither `SCRIPT_FILENAME` nor `DOCUMENT_ROOT` + `SCRIPT_NAME` names a script.
    #[error("no SCRIPT_FILENAME (nor DOCUMENT_ROOT and SCRIPT_NAME)")]
    NoScript,
    /// The path has a `..` component, is relative, or holds a NUL byte.
    #[error("path {0:?} is not a clean absolute path")]
    BadPath(String),
    /// The path lies under no configured root.
    #[error("{0:?} is outside every CGI root")]
    OutsideRoots(String),
    /// Nothing at that path.
    #[error("{0:?} does not exist")]
    NotFound(String),
    /// The path leaves the root through a symbolic link.
    #[error("{0:?} leaves its root through a symbolic link")]
    Escapes(String),
    /// A directory, a device, a socket...
    #[error("{0:?} is not a regular file")]
    NotAFile(String),
    /// No execute permission bit.
    #[error("{0:?} is not executable")]
    NotExecutable(String),
    /// The file or its directory may be written by its group or by anyone.
    #[error("{0:?} or its directory is group- or world-writable")]
    Writable(String),
    /// The file system refused to tell (permissions, I/O error).
    #[error("{path:?}: {error}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        error: String,
    },
}

impl Refusal {
    /// The HTTP status answered.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Self::NoScript | Self::NotFound(_) => http::StatusCode::NOT_FOUND,
            _ => http::StatusCode::FORBIDDEN,
        }
    }

    /// The metric label of this refusal.
    pub fn reason(&self) -> crate::metrics::CgiRefusal {
        use crate::metrics::CgiRefusal as R;
        match self {
            Self::NoScript | Self::NotFound(_) => R::NotFound,
            _ => R::Forbidden,
        }
    }
}

/// A script that passed every check.
#[derive(Debug, Clone)]
pub struct Script {
    /// Index of the root it lies beneath.
    pub root: usize,
    /// The path as the request named it, without the extra components (`SCRIPT_FILENAME`).
    pub filename: PathBuf,
    /// The file with every symbolic link resolved (what is executed).
    pub real: PathBuf,
    /// The directory of `real`: the working directory (RFC 3875 7.2).
    pub dir: PathBuf,
    /// Components after the file, as `/a/b` (empty when none).
    pub extra_path_info: String,
    /// The file name starts with `nph-`.
    pub nph: bool,
}

/// A configured root as resolution needs it.
pub struct RootPath<'a> {
    /// Which configured root this is (a root may be listed twice: as configured and with its
    /// symbolic links resolved).
    pub index: usize,
    /// The path, lexically clean.
    pub path: &'a Path,
    /// Whether group- or world-writable scripts are allowed.
    pub allow_writable: bool,
}

/// The file path a request names.
pub fn requested_path(vars: &CgiVars) -> Result<Vec<u8>, Refusal> {
    if let Some(f) = vars.get("SCRIPT_FILENAME").filter(|f| !f.is_empty()) {
        return Ok(f.to_vec());
    }
    match (vars.get("DOCUMENT_ROOT"), vars.get("SCRIPT_NAME")) {
        (Some(root), Some(name)) if !root.is_empty() && !name.is_empty() => {
            let mut p = root.to_vec();
            if !p.ends_with(b"/") && !name.starts_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            Ok(p)
        }
        _ => Err(Refusal::NoScript),
    }
}

/// The normal components of an absolute path with no `..` (`.` and repeated `/` dropped).
pub fn clean_components(path: &[u8]) -> Result<Vec<&OsStr>, Refusal> {
    let shown = || String::from_utf8_lossy(path).into_owned();
    if path.first() != Some(&b'/') || path.contains(&0) {
        return Err(Refusal::BadPath(shown()));
    }
    let mut out = Vec::new();
    for c in Path::new(OsStr::from_bytes(path)).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return Err(Refusal::BadPath(shown())),
        }
    }
    Ok(out)
}

/// Finds the script `vars` name beneath one of `roots` (the longest that contains it).
pub fn resolve(vars: &CgiVars, roots: &[RootPath<'_>]) -> Result<Script, Refusal> {
    let raw = requested_path(vars)?;
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let comps = clean_components(&raw)?;
    let (index, root) = roots
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let rc: Vec<&OsStr> = r
                .path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(n) => Some(n),
                    _ => None,
                })
                .collect();
            comps.starts_with(&rc).then_some((i, r, rc.len()))
        })
        .max_by_key(|(_, _, n)| *n)
        .map(|(_, r, n)| (r.index, (r, n)))
        .ok_or_else(|| Refusal::OutsideRoots(shown.clone()))?;
    let (root, skip) = root;
    let rel = &comps[skip..];
    if rel.is_empty() {
        return Err(Refusal::NotAFile(shown));
    }
    let io_err = |e: io::Error| Refusal::Io {
        path: shown.clone(),
        error: e.to_string(),
    };
    let root_fd = open_dir(root.path).map_err(io_err)?;

    // The common case first: the whole path is the file. Otherwise walk down to the first
    // component that is not a directory.
    let (file_fd, used, st) = match open_checked(&root_fd, root.path, rel) {
        Ok((fd, st)) if is_reg(&st) => (fd, rel.len(), st),
        Ok(_) => return Err(Refusal::NotAFile(shown)),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            let mut found = None;
            for n in 1..rel.len() {
                let (fd, st) = open_checked(&root_fd, root.path, &rel[..n])
                    .map_err(|e| classify(e, &shown))?;
                if is_reg(&st) {
                    found = Some((fd, n, st));
                    break;
                }
                if !is_dir(&st) {
                    return Err(Refusal::NotAFile(shown));
                }
            }
            found.ok_or_else(|| Refusal::NotFound(shown.clone()))?
        }
        Err(e) => return Err(classify(e, &shown)),
    };
    if st.st_mode & 0o111 == 0 {
        return Err(Refusal::NotExecutable(shown));
    }
    let real = fd_path(&file_fd).map_err(io_err)?;
    let dir = real.parent().map(Path::to_path_buf).unwrap_or_default();
    if !root.allow_writable {
        let dir_st = stat_path(&dir).map_err(io_err)?;
        if st.st_mode & 0o022 != 0 || dir_st.st_mode & 0o022 != 0 {
            return Err(Refusal::Writable(shown));
        }
    }
    let mut filename = PathBuf::from("/");
    filename.extend(&comps[..skip + used]);
    let mut extra = String::new();
    for c in &rel[used..] {
        extra.push('/');
        extra.push_str(&c.to_string_lossy());
    }
    let nph = rel[used - 1].as_bytes().starts_with(b"nph-");
    Ok(Script {
        root: index,
        filename,
        real,
        dir,
        extra_path_info: extra,
        nph,
    })
}

fn classify(e: io::Error, shown: &str) -> Refusal {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR) => Refusal::NotFound(shown.to_owned()),
        Some(libc::EXDEV | libc::ELOOP) => Refusal::Escapes(shown.to_owned()),
        _ => Refusal::Io {
            path: shown.to_owned(),
            error: e.to_string(),
        },
    }
}

fn is_reg(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated string; open returns a new descriptor or -1.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` beneath `root_fd` (an `O_PATH` descriptor) and stats it.
fn open_checked(
    root_fd: &OwnedFd,
    root: &Path,
    rel: &[&OsStr],
) -> io::Result<(OwnedFd, libc::stat)> {
    let rel_path: PathBuf = rel.iter().collect();
    let fd = open_beneath(root_fd, root, &rel_path)?;
    let st = fstat(&fd)?;
    Ok((fd, st))
}

/// `openat2(root_fd, rel, O_PATH, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`; on a kernel
/// without openat2 (before 5.6), an `open` of the joined path whose real path must still lie
/// beneath `root` (checked after the fact; EXDEV otherwise).
fn open_beneath(root_fd: &OwnedFd, root: &Path, rel: &Path) -> io::Result<OwnedFd> {
    let c = cstring(rel)?;
    // SAFETY: an all-zero `open_how` is valid (no flags); the fields are set below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads `how` (of the size passed) and the NUL-terminated `c`; both live
    // across the call. It returns a new descriptor or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_fd.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd >= 0 {
        // SAFETY: a new descriptor from openat2, owned by nobody else.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
        return Err(err);
    }
    // No openat2 (old kernel, or a seccomp filter refusing it).
    let full = cstring(&root.join(rel))?;
    // SAFETY: as in `open_dir`.
    let fd = unsafe { libc::open(full.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as in `open_dir`.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let real_root = std::fs::canonicalize(root)?;
    if !fd_path(&fd)?.starts_with(real_root) {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    Ok(fd)
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of this plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open; fstat writes into `st`, which lives across the call.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn stat_path(path: &Path) -> io::Result<libc::stat> {
    let c = cstring(path)?;
    // SAFETY: as in `fstat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated; stat writes into `st`, which lives across the call.
    if unsafe { libc::stat(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// The path the kernel has for an open descriptor (every link resolved).
fn fd_path(fd: &OwnedFd) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::os::unix::fs::PermissionsExt;

    fn vars(filename: &str) -> CgiVars {
        let mut v = CgiVars::new();
        v.push(
            Bytes::from_static(b"SCRIPT_FILENAME"),
            Bytes::copy_from_slice(filename.as_bytes()),
        );
        v
    }

    /// A scratch tree (removed when the guard drops): `root/sub/run.cgi` and `outside.cgi`.
    fn setup(name: &str) -> tempfile::TempDir {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("rg-resolve-{name}-"))
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("root/sub")).unwrap();
        for d in [&dir, &dir.join("root"), &dir.join("root/sub")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let script = dir.join("root/sub/run.cgi");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("outside.cgi"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            dir.join("outside.cgi"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        tmp
    }

    fn run(dir: &Path, path: &str) -> Result<Script, Refusal> {
        let root = dir.join("root");
        let roots = [RootPath {
            index: 0,
            path: &root,
            allow_writable: false,
        }];
        resolve(&vars(path), &roots)
    }

    #[test]
    fn finds_the_script_and_splits_path_info() {
        let tmp = setup("split");
        let dir = tmp.path().to_path_buf();
        let p = dir.join("root/sub/run.cgi");
        let s = run(&dir, &format!("{}/a/b", p.display())).unwrap();
        assert_eq!(s.filename, p);
        assert_eq!(s.extra_path_info, "/a/b");
        assert_eq!(s.dir, dir.join("root/sub"));
        assert!(!s.nph);
        let s = run(
            &dir,
            &format!("{}//./sub/run.cgi", dir.join("root").display()),
        )
        .unwrap();
        assert_eq!(s.extra_path_info, "");
    }

    #[test]
    fn refuses_what_must_not_run() {
        let tmp = setup("refuse");
        let dir = tmp.path().to_path_buf();
        let root = dir.join("root");
        let r = |p: String| run(&dir, &p).unwrap_err();
        assert!(matches!(
            r(format!("{}/../outside.cgi", root.display())),
            Refusal::BadPath(_)
        ));
        assert!(matches!(
            r(format!("{}/outside.cgi", dir.display())),
            Refusal::OutsideRoots(_)
        ));
        assert!(matches!(
            r(format!("{}/nope.cgi", root.display())),
            Refusal::NotFound(_)
        ));
        assert!(matches!(
            r(format!("{}/sub", root.display())),
            Refusal::NotAFile(_)
        ));
        std::os::unix::fs::symlink(dir.join("outside.cgi"), root.join("link.cgi")).unwrap();
        assert!(matches!(
            r(format!("{}/link.cgi", root.display())),
            Refusal::Escapes(_)
        ));
        std::os::unix::fs::symlink("sub/run.cgi", root.join("inside.cgi")).unwrap();
        assert!(run(&dir, &format!("{}/inside.cgi", root.display())).is_ok());
        let plain = root.join("plain.cgi");
        std::fs::write(&plain, "x").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            r(plain.display().to_string()),
            Refusal::NotExecutable(_)
        ));
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            r(plain.display().to_string()),
            Refusal::Writable(_)
        ));
        assert_eq!(Refusal::NotFound(String::new()).status(), 404);
        assert_eq!(Refusal::Escapes(String::new()).status(), 403);
    }

    #[test]
    fn document_root_and_script_name_when_no_filename() {
        let mut v = CgiVars::new();
        v.push(
            Bytes::from_static(b"DOCUMENT_ROOT"),
            Bytes::from_static(b"/srv/www"),
        );
        v.push(
            Bytes::from_static(b"SCRIPT_NAME"),
            Bytes::from_static(b"/cgi-bin/x"),
        );
        assert_eq!(requested_path(&v).unwrap(), b"/srv/www/cgi-bin/x");
        assert_eq!(requested_path(&CgiVars::new()), Err(Refusal::NoScript));
    }
}
